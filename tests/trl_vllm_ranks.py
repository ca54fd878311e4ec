"""One rank of ``tests/test_trl_vllm.py`` (run under ``torchrun --nproc_per_node 2``, gloo on CPU).

Runs rollouts through :class:`runtime.backends.trl_vllm.TRLVLLMPolicy` on TRL's own ``VLLMGeneration`` in server mode
(the gathering of every rank's prompts, the main rank's request, the broadcast and the per-rank slice are TRL's
code, run as they run on GPUs). The one thing a CPU has no room for is vLLM itself: on the main rank, the request
that would go over HTTP to ``trl vllm-serve`` is answered by the transformers model with greedy decoding
(:class:`GreedyServer`), in the response format of TRL's ``VLLMClient.generate``. The ranks get different numbers of
tasks, two at a time, so the ranks' calls differ in width and one rank is done while the other still generates: the
ranks must agree on each call's width and the rank that finishes first must keep taking part, or the collectives
hang or slice wrongly.

Writes ``rank<N>.json``: the rank's episodes (completion ids, mask, log-probs, reward) through TRL's engine and the
same tasks rolled out locally with ``HFPolicy`` (greedy), and the number of engine calls.

Usage: torchrun --nproc_per_node 2 tests/trl_vllm_ranks.py BUNDLE MODEL OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

MAX_NEW_TOKENS = 24
BATCH_SIZE = 2  # rank 0's first call has two prompts, rank 1's one: the ranks agree on two
TASKS_PER_RANK = (3, 1)  # rank 0 plays three episodes, two at a time, rank 1 one: rank 1 is done first


class GreedyServer:
    """Answers ``VLLMClient.generate(prompts=token_ids, n=1, max_tokens=..., logprobs=0, ...)`` with the
    transformers model, greedy, in the client's response format."""

    def __init__(self, policy: Any) -> None:
        self.policy = policy
        self.widths: list[int] = []

    def generate(self, prompts: list[list[int]], n: int = 1, max_tokens: int = 16, **sampling: Any) -> dict[str, Any]:
        assert n == 1 and sampling["logprobs"] == 0 and sampling["temperature"] == 0.0
        self.widths.append(len(prompts))
        out = self.policy.generate([list(p) for p in prompts], max_tokens)
        return {"prompt_ids": prompts, "completion_ids": [ids for ids, _ in out],
                "logprobs": [[[lp] for lp in lps] for _, lps in out],
                "logprob_token_ids": [[[t] for t in ids] for ids, _ in out]}


def main(bundle_dir: str, model_dir: str, out: str) -> None:
    import torch
    from accelerate import Accelerator
    from trl.generation.vllm_generation import VLLMGeneration

    from runtime.backends.trl_vllm import TRLVLLMPolicy
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import EpisodeConfig
    from runtime.training.models import load
    from runtime.training.rollout import ChatFormat, HFPolicy, run_rollouts

    torch.set_num_threads(1)
    accelerator = Accelerator(cpu=True)
    rank = accelerator.process_index
    bundle = Bundle.load(Path(bundle_dir))
    model, tokenizer = load(model_dir)
    model.eval()
    fmt = ChatFormat(tokenizer, bundle.tool_schemas)
    config = EpisodeConfig(max_turns=4, max_tokens=96)
    start = sum(TASKS_PER_RANK[:rank])
    tasks = bundle.tasks[start : start + TASKS_PER_RANK[rank]]

    # TRL's engine as GRPOTrainer builds it for vllm_mode="server", without connecting to a server (vLLM is not
    # installed here); the main rank's client is the greedy stand-in.
    VLLMGeneration._init_vllm = lambda self: None  # type: ignore[method-assign]
    generation = VLLMGeneration(model=model, accelerator=accelerator, processing_class=tokenizer, mode="server",
                                temperature=0.0, max_completion_length=256, logprobs=0)
    server = GreedyServer(HFPolicy(model, tokenizer, temperature=0.0)) if accelerator.is_main_process else None
    generation.vllm_client = server
    trainer = type("Trainer", (), {"use_vllm": True, "vllm_generation": generation, "accelerator": accelerator,
                                   "processing_class": tokenizer})()
    engine = TRLVLLMPolicy(trainer, MAX_NEW_TOKENS)
    assert engine.lockstep, "two ranks in server mode generate together"
    own_calls = [0]  # calls with episodes of this rank's own (the others are finish()'s, for the other rank)
    generate = engine.generate

    def counted(contexts: list[list[int]], max_new_tokens: int) -> list[Any]:
        own_calls[0] += bool(contexts)
        return generate(contexts, max_new_tokens)

    engine.generate = counted  # type: ignore[method-assign]
    remote = run_rollouts(bundle, tasks, engine, fmt, config, max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH_SIZE)
    engine.finish()
    local = run_rollouts(bundle, tasks, HFPolicy(model, tokenizer, temperature=0.0), fmt, config,
                         max_new_tokens=MAX_NEW_TOKENS, batch_size=BATCH_SIZE)

    def episodes(rollouts: list[Any]) -> list[dict[str, Any]]:
        return [{"task": r.result.task_id, "prompt_ids": r.trace.prompt_ids, "completion_ids": r.trace.completion_ids,
                 "mask": r.trace.mask, "logprobs": r.trace.logprobs, "reward": r.result.reward,
                 "turns": r.result.metrics["turns"]} for r in rollouts]

    report = {"rank": rank, "calls": engine.calls, "own_calls": own_calls[0],
              "missing_logprobs": engine.missing_logprobs, "server_widths": server.widths if server else None,
              "remote": episodes(remote), "local": episodes(local)}
    Path(out, f"rank{rank}.json").write_text(json.dumps(report))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


if __name__ == "__main__":
    main(*sys.argv[1:4])
