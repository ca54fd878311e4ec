"""One SFT lever on the built-in tiny model, judged on validation tasks only.

Builds a ``builtin:tiny-qwen3`` variant (width, layers, heads, head size, digit tokens, query/key norm gain), warms
it up with SFT on the gold trajectories of the pipeline split's training tasks (optionally with id-renamed copies,
below), then reports two numbers on validation tasks (never on held-out ones):

- ``number_acc``: teacher-forced accuracy of the model on the number tokens of the gold assistant turns (the ids
  it must copy into tool calls: ``WO-1005``, ``T-1``; one token each with the built-in tokenizer);
- ``val_success``: greedy success of whole episodes.

``--renamed K`` adds K copies of each gold episode in which the keys of every map in the initial state (work order,
technician, part ids) are permuted, consistently over every message: in such a copy the id in a tool call cannot be
recalled from the training data, only copied from the conversation.

Run (compile first; ``--build`` is the compiled domain folder)::

    aqwen-compile specs/ -o /tmp/levers -q --tasks-per-branch 96
    python benchmarks/sft_levers.py base --build /tmp/levers/plant_maintenance --max-steps 192
    python benchmarks/sft_levers.py renamed --build /tmp/levers/plant_maintenance --renamed 2 --epochs 1

Each run appends one JSON line to ``--out``/results.jsonl. Results: docs/training.md ("Levers for copying ids").
"""

from __future__ import annotations

import argparse
import json
import random
import re
import time
import types
from pathlib import Path
from typing import Any

Renaming = dict[str, str]


def id_renaming(state: dict[str, Any], rng: random.Random) -> Renaming:
    """A permutation of the keys of each map (of two or more string keys) in ``state``; fixed points left out."""
    mapping: Renaming = {}
    for value in state.values():
        if isinstance(value, dict) and len(value) > 1 and all(isinstance(k, str) for k in value):
            keys = list(value)
            shuffled = keys[:]
            rng.shuffle(shuffled)
            mapping.update((a, b) for a, b in zip(keys, shuffled, strict=True) if a != b)
    return mapping


def rename(obj: Any, mapping: Renaming) -> Any:
    """``obj`` (text, or messages nested in lists and dicts) with every whole id in ``mapping`` replaced at once
    (``WO-100`` never matches inside ``WO-1005``)."""
    if not mapping:
        return obj
    alternatives = "|".join(map(re.escape, sorted(mapping, key=len, reverse=True)))
    pattern = re.compile(rf"(?<![\w-])({alternatives})(?!\w)")

    def walk(x: Any) -> Any:
        if isinstance(x, str):
            return pattern.sub(lambda m: mapping[m.group(0)], x)
        if isinstance(x, list):
            return [walk(v) for v in x]
        if isinstance(x, dict):
            return {walk(k): walk(v) for k, v in x.items()}
        return x

    return walk(obj)


def renamed_traces(bundle: Any, tasks: list[dict[str, Any]], fmt: Any, config: Any, copies: int,
                   seed: int) -> list[Any]:
    """The oracle's successful episodes of ``tasks``, each followed by ``copies`` id-renamed copies, tokenised as
    :func:`runtime.training.rollout.agent_traces` does."""
    from runtime.episodes.agents import OracleAgent
    from runtime.episodes.env import Environment
    from runtime.training.rollout import Rollout, TokenTrace

    rng = random.Random(seed)
    out = []
    for task in tasks:
        agent = OracleAgent()
        env = Environment(bundle, task, config=config)
        opening = env.reset()
        agent.start(task, bundle.tool_schemas)
        turns = []
        while not env.done:
            text = agent.act(env.messages)
            before = len(env.messages)
            step = env.step(text)
            turns.append((text, [] if step.done else list(env.messages[before + 1:])))
        result = env.result()
        env.close()
        if not result.success:
            continue
        state = bundle.initial_state(task)
        for copy in range(copies + 1):
            mapping = id_renaming(state, rng) if copy else {}
            trace = TokenTrace(fmt.prompt_ids(rename(opening, mapping)))
            for text, observations in turns:
                said = rename(text, mapping)
                trace.append(fmt.assistant_ids(said), True, [0.0] * (len(fmt.encode(said)) + 1))
                if observations:
                    trace.append(fmt.observation_ids(rename(observations, mapping)), False)
            out.append(Rollout(task, trace, result))
    return out


def number_accuracy(model: Any, tokenizer: Any, traces: list[Any]) -> float:
    """Teacher-forced argmax accuracy on the number tokens of the assistant turns."""
    import torch

    total = right = 0
    for r in traces:
        ids = r.trace.prompt_ids + r.trace.completion_ids
        mask = [0] * len(r.trace.prompt_ids) + r.trace.mask
        with torch.no_grad():
            predicted = model(torch.tensor([ids])).logits[0].argmax(-1).tolist()
        for i in range(1, len(ids)):
            if mask[i] and re.fullmatch(r"\d+", tokenizer.decode([ids[i]]).strip()):
                total += 1
                right += predicted[i - 1] == ids[i]
    return right / total if total else 0.0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("tag")
    ap.add_argument("--build", required=True, help="a compiled domain folder")
    ap.add_argument("--out", default="sft-levers")
    ap.add_argument("--hidden", type=int, default=128)
    ap.add_argument("--layers", type=int, default=4)
    ap.add_argument("--heads", type=int, default=4)
    ap.add_argument("--head-dim", type=int, default=None)
    ap.add_argument("--digits", action="store_true")
    ap.add_argument("--qk-gain", type=float, default=1.0)
    ap.add_argument("--id-prefixes", action="store_true", help="an id's letter prefix (WO- of WO-1016) its own token")
    ap.add_argument("--copy-pretraining", action="store_true",
                    help="train the model to copy on synthetic data first (runtime.training.copying)")
    ap.add_argument("--copy-short-steps", type=int, default=3000, help="copy pre-training: most short-sequence steps")
    ap.add_argument("--copy-long-steps", type=int, default=200, help="copy pre-training: long-sequence steps")
    ap.add_argument("--copy-lr", type=float, default=1e-3, help="copy pre-training: learning rate")
    ap.add_argument("--renamed", type=int, default=0, help="id-renamed copies of each gold episode")
    ap.add_argument("--epochs", type=float, default=3.0)
    ap.add_argument("--max-steps", type=int, default=None)
    ap.add_argument("--lr", type=float, default=3e-3)
    ap.add_argument("--batch-size", type=int, default=8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    import torch

    from runtime.episodes.agents import OracleAgent
    from runtime.episodes.bundle import Bundle
    from runtime.episodes.env import EpisodeConfig
    from runtime.pipeline.split import split_three
    from runtime.training.copying import CopyCurriculum
    from runtime.training.models import build_tiny_qwen3, domain_corpus, load
    from runtime.training.rollout import ChatFormat, HFPolicy, agent_traces, run_rollouts
    from runtime.training.sft_grpo import run_sft

    torch.set_num_threads(1)
    out = Path(args.out) / args.tag
    bundle = Bundle.load(args.build)
    split = split_three(bundle.tasks, 0.3, 0.15, 0)  # the default pipeline's split
    config = EpisodeConfig(max_turns=8, max_tokens=400)
    start = time.time()
    initial = build_tiny_qwen3(out / "init", domain_corpus(bundle, split.train), seed=args.seed, hidden=args.hidden,
                               layers=args.layers, heads=args.heads, head_dim=args.head_dim, digits=args.digits,
                               qk_gain=args.qk_gain, id_prefixes=args.id_prefixes,
                               copy_pretraining=CopyCurriculum(
                                   max_short_steps=args.copy_short_steps, long_steps=args.copy_long_steps,
                                   learning_rate=args.copy_lr) if args.copy_pretraining else None)
    stage = types.SimpleNamespace(batch_size=args.batch_size, epochs=args.epochs, max_steps=args.max_steps,
                                  learning_rate=args.lr, max_length=4096, lora=False)
    rows: list[dict[str, Any]] = []

    def make(fmt: Any) -> list[Any]:
        return renamed_traces(bundle, split.train, fmt, config, args.renamed, args.seed)

    trained = run_sft(initial, bundle, split.train, out / "sft", stage, config, rows.append, seed=args.seed,
                      make_traces=make if args.renamed else None,
                      trainer_args={"disable_tqdm": True, "save_strategy": "no"})
    trained_at = time.time()
    model, tokenizer = load(trained.checkpoint)
    fmt = ChatFormat(tokenizer, bundle.tool_schemas)
    gold = [t for t in agent_traces(bundle, split.validation, OracleAgent, fmt, config) if t.result.success]
    rollouts = run_rollouts(bundle, split.validation, HFPolicy(model, tokenizer, temperature=0.0, seed=0), fmt,
                            config, max_new_tokens=48, batch_size=8)
    result = {
        "tag": args.tag, "args": vars(args), "steps": max((r.get("step", 0) for r in rows), default=0),
        "params": sum(p.numel() for p in model.parameters()),
        "sft_seconds": round(trained_at - start), "eval_seconds": round(time.time() - trained_at),
        "number_acc": round(number_accuracy(model, tokenizer, gold), 3),
        "val_success": round(sum(r.result.success for r in rollouts) / len(rollouts), 3),
        "validation_tasks": len(rollouts),
        "copy_pretraining": json.loads((initial / "copy_pretraining.json").read_text())
        if (initial / "copy_pretraining.json").exists() else None,
    }
    print(json.dumps(result))
    with (Path(args.out) / "results.jsonl").open("a") as f:
        f.write(json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
