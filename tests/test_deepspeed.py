"""The DeepSpeed ZeRO-2 path on CPU: ``accelerate launch`` with examples/deepspeed/zero2_cpu.yaml runs the project's
GRPO stage (examples/deepspeed/train_grpo.py → runtime.training.sft_grpo.run_grpo) for two optimizer steps with the
built-in tiny model.

Checks the wiring only: accelerate's DeepSpeed plugin, the GRPOConfig agreeing with the DeepSpeed config, the
DeepSpeed engine and its optimizer stepping, metrics reaching the sink, a DeepSpeed (ZeRO) checkpoint and the final
model written. What needs GPUs (bf16, sharding across 8 ranks, ZeRO-3 gathering for generation, vLLM, memory) is
listed in docs/training.md. Skipped without deepspeed (``DS_BUILD_OPS=0 pip install "deepspeed>=0.18.6"``).

The first run on a machine JIT-compiles DeepSpeed's shared-memory communication op for the CPU accelerator (needs a
C++ compiler; ~45 s on 2 cores, then cached under ~/.cache/torch_extensions); later runs take ~20 s.
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
pytest.importorskip("deepspeed")

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "deepspeed"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
def bundle_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from compiler.cli import main as compile_main

    out = tmp_path_factory.mktemp("build")
    assert compile_main([str(ROOT / "specs"), "-o", str(out), "-q"]) == 0
    return out / "plant_maintenance"


def test_zero2_cpu_grpo_two_steps(bundle_dir: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "TOKENIZERS_PARALLELISM": "false", "TRL_EXPERIMENTAL_SILENCE": "1",
           "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    cmd = [sys.executable, "-m", "accelerate.commands.launch", "--config_file", str(EXAMPLES / "zero2_cpu.yaml"),
           "--main_process_port", str(_free_port()), str(EXAMPLES / "train_grpo.py"),
           "--bundle", str(bundle_dir), "--model", "builtin:tiny-qwen3", "--out", str(out),
           "--max-steps", "2", "--batch-size", "4", "--num-generations", "2", "--max-tasks", "8",
           "--max-turns", "4", "--max-tokens", "384", "--max-new-tokens", "64", "--max-completion-length", "384"]
    try:
        proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, timeout=240)
    except subprocess.TimeoutExpired as exc:  # pragma: no cover - a hang is a failure, with its output
        pytest.fail(f"accelerate launch timed out\n{exc.stdout}\n{exc.stderr}")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-8000:]

    summary = json.loads((out / "summary.json").read_text())
    assert summary["zero_stage"] == "2" and summary["world_size"] == 1
    assert summary["trainer_args"]["gradient_accumulation_steps"] == 1  # copied from the accelerate config
    assert summary["steps"] == 2

    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    steps = [r for r in rows if "loss" in r]
    assert [r["step"] for r in steps] == [1, 2]
    for r in steps:
        assert {"grad_norm", "learning_rate", "reward", "rewards/success/mean"} <= r.keys()
        assert r["completions/mean_length"] > 0

    checkpoint = out / "trainer" / "checkpoint-2"
    zero = checkpoint / "global_step2"  # DeepSpeed's own checkpoint: the engine, not a plain Trainer, trained
    assert (checkpoint / "latest").read_text().strip() == "global_step2"
    assert any(p.name.endswith("optim_states.pt") for p in zero.iterdir())
    assert (checkpoint / "trainer_state.json").exists()

    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(out / "model")
    assert sum(p.numel() for p in model.parameters()) > 0
    assert json.loads((out / "model" / "aqwen.json").read_text()) == {"format": "transformers"}
