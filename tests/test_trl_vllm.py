"""GRPO rollouts through TRL's vLLM engine in server mode, on two CPU ranks (gloo): ``TRLVLLMPolicy``'s agreement on
each call's width, the finished rank taking part until the other is done, and the per-rank slices of TRL's gathered
request. vLLM itself needs a GPU: the main rank answers the request with the transformers model (greedy), so each
rank's episodes must be token for token those of the same tasks rolled out locally. See tests/trl_vllm_ranks.py.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("torch")
pytest.importorskip("trl")
pytest.importorskip("accelerate")

from compiler import compile_specs, write_bundles

ROOT = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_two_ranks_generate_in_lockstep_through_trls_server_mode(tmp_path: Path) -> None:
    from runtime.episodes.bundle import Bundle
    from runtime.training.models import domain_corpus, resolve_model

    [folder] = write_bundles(compile_specs(ROOT / "specs"), tmp_path / "build")
    model = resolve_model("builtin:tiny-qwen3", domain_corpus(Bundle.load(folder)))
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "PYTHONPATH": str(ROOT)}
    command = [sys.executable, "-m", "torch.distributed.run", "--nproc_per_node", "2", "--master_port",
               str(_free_port()), str(ROOT / "tests" / "trl_vllm_ranks.py"), str(folder), str(model), str(tmp_path)]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=180)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in (0, 1)]

    # Both ranks made the same number of engine calls: rank 1's one episode ended first, and it kept taking part
    # (finish) until rank 0's three were done.
    assert ranks[0]["calls"] == ranks[1]["calls"] > 0
    assert ranks[0]["own_calls"] == ranks[0]["calls"] > ranks[1]["own_calls"] > 0
    # Every call reached the server with the same number of prompts from each rank (padded to the widest rank).
    widths = ranks[0]["server_widths"]
    assert len(widths) == ranks[0]["calls"] and all(w % 2 == 0 for w in widths)
    # Each rank got back its own slice: the episodes are exactly those of a local greedy rollout of its tasks.
    for r in ranks:
        assert [e["task"] for e in r["remote"]] == [e["task"] for e in r["local"]]
        for remote, local in zip(r["remote"], r["local"], strict=True):
            for key in ("prompt_ids", "completion_ids", "mask", "reward", "turns"):
                assert remote[key] == local[key], (r["rank"], remote["task"], key)
            assert remote["logprobs"] == pytest.approx(local["logprobs"], abs=1e-5)
        assert r["missing_logprobs"] == 0
    assert len(ranks[0]["remote"]) == 3 and len(ranks[1]["remote"]) == 1
