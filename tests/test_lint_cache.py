"""The lint result cache: identical output on a hit, no heavy imports, invalidated by any change."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

PROBE = (
    "import sys; from aqwen_spec.lint.cli import main; code = main(sys.argv[1:]); "
    "heavy = [m for m in ('pydantic', 'lark', 'jinja2') if m in sys.modules]; "
    "print('HEAVY=' + ','.join(heavy)); raise SystemExit(code)"
)


def _lint(tmp: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp / "cache"), "NO_COLOR": "1"}
    env.pop("AQWEN_LINT_CACHE", None)
    return subprocess.run([sys.executable, "-c", PROBE, *args], cwd=tmp, env=env, capture_output=True, text=True,
                          timeout=120)


def test_a_hit_replays_the_result_without_heavy_imports(tmp_path: Path) -> None:
    shutil.copytree(ROOT / "specs", tmp_path / "specs")
    tools = tmp_path / "specs" / "plant_maintenance" / "tools.yaml"
    tools.write_text(tools.read_text().replace("returns: work_orders[order_id]", "returns: work_order[order_id]", 1))
    first = _lint(tmp_path, "specs")
    second = _lint(tmp_path, "specs")
    assert first.returncode == second.returncode == 1
    assert "HEAVY=pydantic" in first.stdout and "HEAVY=\n" in second.stdout
    strip = lambda out: out.rsplit("HEAVY=", 1)[0]  # noqa: E731
    assert strip(first.stdout) == strip(second.stdout)
    assert "error[AQ302]" in second.stdout and "^" in second.stdout and "did you mean 'work_orders'" in second.stdout
    # any change to a spec (or data) file is a miss, and the new result is right
    tools.write_text(tools.read_text().replace("returns: work_order[order_id]", "returns: work_orders[order_id]"))
    third = _lint(tmp_path, "specs")
    assert third.returncode == 0 and "HEAVY=pydantic" in third.stdout
    data = tmp_path / "specs" / "plant_maintenance" / "data" / "parts.csv"
    data.write_text(data.read_text().replace("P-10,hydraulic seal kit,12,48.5", "P-10,hydraulic seal kit,lots,48.5"))
    fourth = _lint(tmp_path, "specs")
    assert fourth.returncode == 1 and "AQ204" in fourth.stdout
    assert "HEAVY=pydantic" in _lint(tmp_path, "--no-cache", "specs").stdout
