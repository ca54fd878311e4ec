"""Model rollouts and training on CPU with the built-in tiny model: exact tokens, masks and log-probs; the pipeline.

Needs the train extra (torch, transformers, trl); skipped without it.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("trl")

from compiler.cli import main as compile_main  # noqa: E402
from runtime.episodes.bundle import Bundle  # noqa: E402
from runtime.episodes.env import EpisodeConfig  # noqa: E402
from runtime.training.rollout import ChatFormat, HFPolicy, Rollout, agent_traces, run_rollouts  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(ROOT / "specs"), "-o", str(out), "-q"]) == 0
    return Bundle.load(out / "plant_maintenance")


@pytest.fixture(scope="module")
def tiny(bundle: Bundle) -> tuple:
    from runtime.training.models import domain_corpus, load, resolve_model

    torch.set_num_threads(1)
    return load(resolve_model("builtin:tiny-qwen3", domain_corpus(bundle)))


class RecordingPolicy(HFPolicy):
    """The real HF policy, remembering what it was given and what it produced."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.log: list[tuple[list[int], list[int], list[float]]] = []

    def generate(self, contexts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], list[float]]]:
        out = super().generate(contexts, max_new_tokens)
        self.log.extend((list(c), ids, lps) for c, (ids, lps) in zip(contexts, out, strict=True))
        return out


def _segments(mask: list[int]) -> list[tuple[int, int, int]]:
    out, start = [], 0
    for i in range(1, len(mask) + 1):
        if i == len(mask) or mask[i] != mask[start]:
            out.append((start, i, mask[start]))
            start = i
    return out


def test_multi_turn_rollout_keeps_exact_ids_masks_and_logprobs(bundle: Bundle, tiny: tuple) -> None:
    model, tokenizer = tiny
    fmt = ChatFormat(tokenizer, bundle.tool_schemas)
    policy = RecordingPolicy(model, tokenizer, temperature=1.0, seed=3)
    tasks = bundle.tasks[:2]
    rollouts = run_rollouts(bundle, tasks, policy, fmt, EpisodeConfig(max_turns=3), max_new_tokens=24)
    assert len(rollouts) == 2
    for r in rollouts:
        trace, context = r.trace, r.trace.context
        mine = [(c, ids, lps) for c, ids, lps in policy.log if c[: len(trace.prompt_ids)] == trace.prompt_ids
                and context[: len(c)] == c]
        assert len(mine) >= 2, "a multi-turn episode"
        generated = [(s, e) for s, e, m in _segments(trace.mask) if m == 1]
        assert len(generated) == len(mine) == len(trace.turns)
        for (c, ids, lps), (s, e) in zip(mine, trace.turns, strict=True):
            # the model saw exactly the recorded ids, and what it produced is recorded as is, with its log-probs
            start = len(c) - len(trace.prompt_ids)
            assert start == s and trace.completion_ids[s:e] == ids and trace.logprobs[s:e] == lps
        for s, e, m in _segments(trace.mask):
            if m == 0:
                assert all(lp == 0.0 for lp in trace.logprobs[s:e])
        # observations (tool results, user replies) are the mask-0 tokens, rendered by the chat template
        observed = fmt.decode([t for t, m in zip(trace.completion_ids, trace.mask, strict=True) if m == 0])
        replies = [m["content"] for m in r.result.messages[2:] if m["role"] in ("tool", "user")]
        assert replies and all(reply.split("\n")[0][:30] in observed for reply in replies[:-1])
        # recorded log-probs are the model's own: recompute them with one teacher-forced forward pass
        with torch.no_grad():
            logits = model(torch.tensor([context])).logits[0].float().log_softmax(-1)
        offset = len(trace.prompt_ids)
        for s, e in trace.turns:
            for j in range(s, e):
                token = trace.completion_ids[j]
                assert trace.logprobs[j] == pytest.approx(float(logits[offset + j - 1, token]), abs=2e-3)


def _rollouts(bundle: Bundle, tiny: tuple, policy: HFPolicy, batch_size: int, **kwargs: object) -> list:
    fmt = ChatFormat(tiny[1], bundle.tool_schemas)
    tasks = [t for t in bundle.tasks[:3] for _ in range(2)]
    return run_rollouts(bundle, tasks, policy, fmt, EpisodeConfig(max_turns=4, max_tokens=120), max_new_tokens=32,
                        batch_size=batch_size, **kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize("temperature", [0.0, 1.0])
def test_kv_cache_turns_match_generate_on_the_whole_context(bundle: Bundle, tiny: tuple, temperature: float) -> None:
    """Turn by turn, greedy and under a fixed seed, the cached policy draws exactly what ``model.generate`` draws on
    the whole context, while episodes leave the batch and new ones join it."""
    fmt = ChatFormat(tiny[1], bundle.tool_schemas)
    observation = fmt.observation_ids([{"role": "tool", "name": "get_work_order", "content": '{"id": "WO-1001"}'}])
    reply = fmt.observation_ids([{"role": "user", "content": "Yes, go ahead."}])
    prompts = [fmt.prompt_ids([{"role": "system", "content": "s"}, {"role": "user", "content": u}])
               for u in ("Assign T-4 to WO-1008.", "Close WO-1001.", "Hello", "Order parts for WO-1003.")]
    plain = HFPolicy(tiny[0], tiny[1], temperature=temperature, seed=5, kv_cache=False)
    cached = HFPolicy(tiny[0], tiny[1], temperature=temperature, seed=5)
    contexts = {i: list(p) for i, p in enumerate(prompts[:3])}
    for turn in range(4):
        if turn == 1:
            del contexts[1]  # an episode ends
        if turn == 2:
            contexts[3] = list(prompts[3])  # a new one starts beside episodes with long contexts
        order = sorted(contexts)
        batch = [contexts[i] for i in order]
        expected = plain.generate(batch, 12)
        got = cached.generate(batch, 12)
        assert [ids for ids, _ in got] == [ids for ids, _ in expected]
        for (_, lps), (_, want) in zip(got, expected, strict=True):
            assert lps == pytest.approx(want, abs=1e-4)
        for i, (ids, _) in zip(order, got, strict=True):
            contexts[i] += ids + ([] if ids and ids[-1] == fmt.eos_id else [fmt.eos_id])
            contexts[i] += observation if turn % 2 == 0 else reply
    assert cached.reused_tokens > plain.prefill_tokens / 2
    assert cached.prefill_tokens + cached.reused_tokens == plain.prefill_tokens


@pytest.mark.parametrize("batch_size", [6, 3])
def test_kv_cache_gives_the_same_episodes_as_encoding_every_turn(bundle: Bundle, tiny: tuple, batch_size: int) -> None:
    """Whole episodes under a fixed seed: the same tokens and log-probs with and without the kept caches. With
    batch_size 3, episodes join the batch while others are mid-episode (rows with and without a cache)."""
    temperature = 1.0
    plain_policy = HFPolicy(tiny[0], tiny[1], temperature=temperature, seed=11, kv_cache=False)
    cached_policy = HFPolicy(tiny[0], tiny[1], temperature=temperature, seed=11)
    plain = _rollouts(bundle, tiny, plain_policy, batch_size)
    cached = _rollouts(bundle, tiny, cached_policy, batch_size)
    assert sum(len(r.trace.turns) for r in cached) > len(cached), "some episodes have several turns"
    for a, b in zip(plain, cached, strict=True):
        assert a.trace.prompt_ids == b.trace.prompt_ids
        assert a.trace.completion_ids == b.trace.completion_ids and a.trace.mask == b.trace.mask
        assert b.trace.logprobs == pytest.approx(a.trace.logprobs, abs=1e-4)
    # later turns ran the model over the new tokens only
    assert cached_policy.reused_tokens > 0
    assert cached_policy.prefill_tokens + cached_policy.reused_tokens == plain_policy.prefill_tokens
    assert cached_policy.prefill_tokens < plain_policy.prefill_tokens / 1.5


def test_kv_cache_of_an_episode_is_freed_when_it_ends(bundle: Bundle, tiny: tuple) -> None:
    import gc
    import weakref

    class Watched(HFPolicy):
        """Weak references to the tensors of every cache kept after a call, by the tokens they cover."""

        def __init__(self, model: object, tokenizer: object) -> None:
            super().__init__(model, tokenizer, temperature=1.0, seed=11)
            self.refs: list[tuple[list[int], list[weakref.ref]]] = []

        def generate(self, contexts: list[list[int]], max_new_tokens: int) -> list[tuple[list[int], list[float]]]:
            out = super().generate(contexts, max_new_tokens)
            for kept in self._kept:
                self.refs.append((kept.ids, [weakref.ref(t) for layer in kept.layers for t in layer]))
            return out

    ended: list[int] = []

    def on_done(rollout: Rollout) -> None:
        context = rollout.trace.context
        assert not policy.holds(context)
        gc.collect()
        mine = [refs for ids, refs in policy.refs if context[: len(ids)] == ids]
        assert mine and all(ref() is None for refs in mine for ref in refs), "the episode's cache is freed"
        ended.append(policy.cached_tokens)

    policy = Watched(tiny[0], tiny[1])
    rollouts = _rollouts(bundle, tiny, policy, 3, on_done=on_done)
    assert len(ended) == len(rollouts) == 6
    assert ended[-1] == 0 and policy.cached_tokens == 0
    assert any(n > 0 for n in ended[:-1]), "caches of running episodes are kept meanwhile"


def test_grpo_stage_vllm_mode_has_trl_start_vllm(bundle: Bundle, tmp_path: Path) -> None:
    """A stage's vllm_mode reaches TRL's GRPOConfig (use_vllm, vllm_mode): TRL then builds its vLLM engine, which
    needs vLLM and a GPU; here (no vLLM) TRL refuses at that point, before any training."""
    import importlib.util

    from aqwen_spec.documents.pipeline import GRPOStage
    from runtime.training.models import domain_corpus, resolve_model
    from runtime.training.sft_grpo import run_grpo

    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vLLM is installed here: this test checks the refusal without it")
    stage = GRPOStage(stage="grpo", max_steps=1, num_generations=2, batch_size=2, vllm_mode="colocate")
    model = resolve_model("builtin:tiny-qwen3", domain_corpus(bundle))
    with pytest.raises(ImportError, match="vLLM is not available"):
        run_grpo(model, bundle, bundle.tasks[:2], tmp_path, stage, EpisodeConfig(max_turns=2), 8, lambda row: None)


@pytest.fixture(scope="module")
def partial_credit_bundle(tmp_path_factory: pytest.TempPathFactory) -> Bundle:
    """The example domain with its deciding checks ungated, so that an agent that fails still earns partial credit
    (the shipped verifiers gate them: doing nothing earns 0 there)."""
    import shutil

    specs = tmp_path_factory.mktemp("ungated") / "specs"
    shutil.copytree(ROOT / "specs", specs)
    workflows = specs / "plant_maintenance" / "workflows.yaml"
    text = workflows.read_text()
    for check in ("same_final_state_as_gold", "same_outcome_as_gold"):
        text = text.replace(f"{{{check}: true, gate: true}}", check)
    workflows.write_text(text)
    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(specs), "-o", str(out), "-q"]) == 0
    return Bundle.load(out / "plant_maintenance")


@pytest.mark.parametrize("objective", ["verifier", "success"])
def test_grpo_maximises_the_stages_reward(partial_credit_bundle: Bundle, tmp_path: Path, objective: str) -> None:
    """``reward: success`` makes success (1 or 0) GRPO's reward, ``verifier`` the verifier's partial credit; both
    stay logged."""
    bundle = partial_credit_bundle
    from aqwen_spec.documents.pipeline import GRPOStage
    from runtime.training.models import domain_corpus, resolve_model
    from runtime.training.sft_grpo import run_grpo

    stage = GRPOStage(stage="grpo", max_steps=2, num_generations=2, batch_size=4, reward=objective)
    model = resolve_model("builtin:tiny-qwen3", domain_corpus(bundle))
    rows: list[dict[str, Any]] = []
    run_grpo(model, bundle, bundle.tasks[:4], tmp_path, stage, EpisodeConfig(max_turns=2, max_tokens=32), 16,
             rows.append)
    logged = [r for r in rows if "rewards/reward/mean" in r]
    assert len(logged) == 2
    key = "rewards/success/mean" if objective == "success" else "rewards/reward/mean"
    for row in logged:
        assert row["reward"] == pytest.approx(row[key])
    if objective == "success":  # the random model earns partial credit but never succeeds
        assert any(r["rewards/reward/mean"] > 0 for r in logged) and all(r["reward"] == 0 for r in logged)


def test_sft_data_is_the_oracles_episodes_with_assistant_masks(bundle: Bundle, tiny: tuple) -> None:
    from runtime.episodes.agents import OracleAgent
    from runtime.training.sft_grpo import sft_dataset

    _, tokenizer = tiny
    fmt = ChatFormat(tokenizer, bundle.tool_schemas)
    traces = agent_traces(bundle, bundle.tasks[:3], OracleAgent, fmt, EpisodeConfig())
    assert all(t.result.success for t in traces)
    data = sft_dataset(traces)
    row, trace = data[0], traces[0]
    assert row["input_ids"] == trace.trace.prompt_ids + trace.trace.completion_ids
    trained = fmt.decode([t for t, m in zip(row["input_ids"], row["assistant_masks"], strict=True) if m])
    for message in trace.task["gold"]["messages"]:
        if message["role"] == "assistant" and message["content"]:
            assert message["content"] in trained
        if message["role"] == "tool":
            assert message["content"] not in trained  # tool results are never trained on


def _specs_with_default_pipeline(tmp_path: Path, budget: str, *stages: str) -> Path:
    """A copy of specs/ whose default pipeline is the built-in model with ``budget`` and ``stages`` (YAML lines)."""
    import shutil

    specs = tmp_path / "specs"
    shutil.copytree(ROOT / "specs", specs)
    (specs / "plant_maintenance" / "pipeline.yaml").write_text(
        "kind: Pipeline\nname: default\ndomain: plant_maintenance\nmodel: {name: 'builtin:tiny-qwen3'}\n"
        f"{budget}\nstages:\n" + "".join(f"{line}\n" for line in stages))
    return specs


def test_pipeline_runs_end_to_end_and_resumes(bundle: Bundle, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from runtime.cli import main as run_main

    specs = _specs_with_default_pipeline(
        tmp_path, "budget: {max_turns: 3, max_new_tokens: 16, max_tokens: 64}",
        "  - {stage: eval, name: before, max_tasks: 2}",
        "  - {stage: sft, name: warmup, max_steps: 2, batch_size: 2}",
        "  - {stage: grpo, name: grpo, max_steps: 1, num_generations: 2, batch_size: 2}",
        "  - {stage: eval, name: after, max_tasks: 2}")
    args = ["--specs", str(specs), "--build", str(tmp_path / "build"), "--runs", str(tmp_path / "runs"),
            "--no-progress", "--name", "t"]
    capsys.readouterr()
    assert run_main(args) == 0
    printed = capsys.readouterr()
    assert "it/s]" not in printed.err and "s/it]" not in printed.err  # --no-progress: no bars, ours or libraries'
    assert "'loss'" not in printed.out + printed.err  # nor the trainers' rows (they go to metrics.jsonl)
    run = tmp_path / "runs" / "t"
    assert (tmp_path / "runs" / "latest").resolve() == run.resolve()
    summary = json.loads((run / "summary.json").read_text())
    assert set(summary["before"]) == {"success_rate", "mean_reward"} and summary["after"]["mean_reward"] is not None
    assert [s["name"] for s in summary["stages"]] == ["before", "warmup", "grpo", "after"]
    assert (run / "checkpoints" / "grpo" / "model" / "config.json").exists()
    assert (run / "eval" / "after" / "report.json").exists() and (run / "config.json").exists()
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert any(r.get("stage") == "grpo" and "rewards/reward/mean" in r for r in rows)
    assert any(r.get("stage") == "warmup" and "loss" in r for r in rows)
    # an interrupted run resumes from its last finished stage
    state = json.loads((run / "state.json").read_text())
    state["done"] = state["done"][:-1]
    (run / "state.json").write_text(json.dumps(state))
    capsys.readouterr()
    assert run_main([*args[:-2], "--resume"]) == 0
    out = capsys.readouterr().out
    assert "[before] already done" in out and "[grpo] already done" in out and "[after] held-out success" in out


def test_a_budget_no_gold_fits_is_an_error_not_a_traceback(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from runtime.cli import main as run_main

    specs = _specs_with_default_pipeline(tmp_path, "budget: {max_turns: 1, max_new_tokens: 16, max_tokens: 64}",
                                         "  - {stage: sft, name: warmup, max_steps: 2, batch_size: 2}")
    capsys.readouterr()
    assert run_main(["--specs", str(specs), "--build", str(tmp_path / "build"), "--runs", str(tmp_path / "runs"),
                     "--no-progress", "--name", "t"]) == 1
    err = capsys.readouterr().err
    assert "aqwen-run: error:" in err and "tasks' gold trajectories succeeds within the episode budget" in err
    assert "max_turns 1" in err and "Traceback" not in err


def test_observation_tokens_do_not_depend_on_the_tool_schemas(bundle: Bundle, tiny: tuple) -> None:
    """Observations are rendered without the tool schemas (they only go into the system block): same tokens."""
    fmt = ChatFormat(tiny[1], bundle.tool_schemas)
    dummy = [{"role": "system", "content": "s"}, {"role": "user", "content": "u"},
             {"role": "assistant", "content": "\u2063AQWEN\u2063"}]
    for observations in (
        [{"role": "tool", "name": "get_work_order", "content": '{"id": "WO-1001"}'}],
        [{"role": "tool", "name": "a", "content": "1"}, {"role": "tool", "name": "b", "content": "2"}],
        [{"role": "user", "content": "Yes, go ahead."}],
    ):
        full = fmt.render(dummy + observations, True)
        end = fmt.tokenizer.decode([fmt.eos_id])
        delta = full[full.index("\u2063AQWEN\u2063" + end) + len("\u2063AQWEN\u2063" + end):]
        assert fmt.observation_ids(observations) == fmt.encode(delta)
    assert fmt.prompt_ids(dummy[:2]) == fmt.encode(fmt.render(dummy[:2], True))


@pytest.mark.parametrize("kv_cache", [True, False])
def test_a_model_with_non_finite_scores_stops_with_a_clear_error(bundle: Bundle, tiny: tuple, kv_cache: bool) -> None:
    """A diverged model (NaN weights) is a clear TrainingError before sampling, never a sampler's crash (on a GPU,
    a device-side assert that kills the process)."""
    import copy

    from runtime.training.rollout import TrainingError

    model = copy.deepcopy(tiny[0])
    with torch.no_grad():
        model.model.norm.weight.fill_(float("nan"))
    policy = HFPolicy(model, tiny[1], temperature=1.0, seed=3, kv_cache=kv_cache)
    with pytest.raises(TrainingError, match="not finite"):
        _rollouts(bundle, tiny, policy, batch_size=2)


def test_id_prefixes_make_an_ids_prefix_one_token_wherever_it_appears(tmp_path: Path) -> None:
    """The `id_prefixes` tokenizer lever: `WO-` of `WO-1016` is the same token in a sentence and in a tool call's
    JSON (the default tokenizer merges it with what precedes it), so an id can be copied token for token."""
    from transformers import AutoTokenizer

    from runtime.training.models import build_tiny_qwen3

    corpus = ["Please put Ben Okafor (T-2) on work order WO-1016.",
              '{"name": "get_work_order", "arguments": {"order_id": "WO-1016"}}'] * 30

    def pieces(folder: Path, text: str) -> list[str]:
        tok = AutoTokenizer.from_pretrained(str(folder))
        return [tok.decode([i]) for i in tok(text)["input_ids"]]

    split = build_tiny_qwen3(tmp_path / "split", corpus, vocab=600, id_prefixes=True, hidden=16, layers=1, heads=2)
    default = build_tiny_qwen3(tmp_path / "default", corpus, vocab=600, hidden=16, layers=1, heads=2)
    for text in corpus[:2]:
        tokens = pieces(split, text)
        assert tokens[tokens.index("WO-"):][:2] == ["WO-", "1016"]
    assert "WO-" not in pieces(default, corpus[0])
