"""The pre-commit hook: a valid manifest, and a hook that checks the whole spec tree of the files it is given.

pre-commit passes the hook only the staged files. The test stages a tool file whose change breaks a workflow in
another, unstaged file, and expects the hook to fail with the diagnostic in the workflow file.

The shipped hook (``.pre-commit-hooks.yaml``) is ``language: python``: pre-commit builds a virtualenv and pip-installs
this repository into it, which needs the build dependency (setuptools) from a package index. Tests run without
network, so the main test mirrors the shipped hook as a ``repo: local`` hook with ``language: system`` that runs the
``aqwen-lint`` of the test's own environment; the same entry, files and exclude patterns, the same behaviour. The
install path itself runs with ``AQWEN_TEST_PRECOMMIT_INSTALL=1`` (it needs a package index, or a local mirror).
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
MANIFEST = ROOT / ".pre-commit-hooks.yaml"
BIN = Path(sys.executable).parent
PRE_COMMIT = BIN / "pre-commit"

pytestmark = pytest.mark.skipif(shutil.which("git") is None, reason="git is not installed")


def test_manifest_is_valid() -> None:
    from pre_commit.clientlib import load_manifest

    hooks = load_manifest(str(MANIFEST))
    (hook,) = [h for h in hooks if h["id"] == "aqwen-lint"]
    assert hook["language"] == "python"
    assert hook["entry"] == "aqwen-lint"
    assert hook["require_serial"] is True
    # the entry is the console script this package installs
    pyproject = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert 'aqwen-lint = "aqwen_spec.lint.cli:main"' in pyproject


def _git(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True, check=True, timeout=60)


def _pre_commit(cwd: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "PRE_COMMIT_HOME": str(cwd.parent / "pre-commit-home"),
        "PRE_COMMIT_COLOR": "never",
        "SKIP": "",
    }
    env.pop("GITHUB_ACTIONS", None)
    return subprocess.run([str(PRE_COMMIT), *args], cwd=cwd, capture_output=True, text=True, env=env, timeout=300)


def _repo_with_specs(tmp_path: Path, config: dict[str, object] | None) -> Path:
    repo = tmp_path / "repo"
    repo.mkdir()
    _git(repo, "init", "-q")
    _git(repo, "config", "user.name", "test")
    _git(repo, "config", "user.email", "test@example.com")
    _git(repo, "config", "commit.gpgsign", "false")
    shutil.copytree(ROOT / "specs", repo / "specs", ignore=shutil.ignore_patterns("__pycache__"))
    (repo / "README.md").write_text("specs for a test\n", encoding="utf-8")
    if config is not None:
        (repo / ".pre-commit-config.yaml").write_text(yaml.safe_dump(config, sort_keys=False), encoding="utf-8")
    _git(repo, "add", "-A")
    _git(repo, "commit", "-q", "-m", "specs")
    return repo


def _local_config() -> dict[str, object]:
    """The shipped hook as a local one: same entry, files, exclude; run from this environment (no install)."""
    (shipped,) = yaml.safe_load(MANIFEST.read_text(encoding="utf-8"))
    hook = {k: v for k, v in shipped.items() if k not in ("language", "entry", "description")}
    hook.update(language="system", entry=str(BIN / shipped["entry"]))
    return {"repos": [{"repo": "local", "hooks": [hook]}]}


def _break_tool_rename(repo: Path) -> None:
    """Rename a tool that a workflow calls; only tools.yaml changes (and only it is staged)."""
    tools = repo / "specs" / "plant_maintenance" / "tools.yaml"
    text = tools.read_text(encoding="utf-8")
    assert "name: close_work_order\n" in text
    tools.write_text(text.replace("name: close_work_order\n", "name: finish_work_order\n"), encoding="utf-8")
    _git(repo, "add", str(tools.relative_to(repo)))
    staged = _git(repo, "diff", "--cached", "--name-only").stdout.split()
    assert staged == ["specs/plant_maintenance/tools.yaml"]


def _assert_fails_in_workflow_file(proc: subprocess.CompletedProcess[str]) -> None:
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out
    assert "aqwen-lint" in out and "Failed" in out, out
    assert "specs/plant_maintenance/workflows.yaml:" in out, out
    assert "error[AQ403] unknown tool 'close_work_order'" in out, out
    # every error is where a broken reference is: in the workflow file, which the hook was not given
    errors = [line for line in out.splitlines() if "error[" in line]
    assert errors and all(line.startswith("specs/plant_maintenance/workflows.yaml:") for line in errors), errors


def test_local_hook_checks_the_whole_tree(tmp_path: Path) -> None:
    repo = _repo_with_specs(tmp_path, _local_config())
    clean = _pre_commit(repo, "run", "--all-files")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    assert "Passed" in clean.stdout

    _break_tool_rename(repo)
    broken = _pre_commit(repo, "run")  # staged files only: just tools.yaml
    _assert_fails_in_workflow_file(broken)


def test_local_hook_ignores_non_yaml_and_hidden_files(tmp_path: Path) -> None:
    repo = _repo_with_specs(tmp_path, _local_config())
    (repo / "README.md").write_text("changed\n", encoding="utf-8")
    (repo / ".hidden.yaml").write_text("not: [a spec\n", encoding="utf-8")
    _git(repo, "add", "README.md", ".hidden.yaml")
    proc = _pre_commit(repo, "run")
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "no files to check" in proc.stdout.lower() or "Skipped" in proc.stdout, proc.stdout


@pytest.mark.skipif(
    os.environ.get("AQWEN_TEST_PRECOMMIT_INSTALL") != "1",
    reason="installs this repository into a pre-commit virtualenv: needs a package index for setuptools",
)
def test_shipped_python_hook(tmp_path: Path) -> None:
    """``pre-commit try-repo`` with this repository (its working tree, uncommitted changes included)."""
    if not (ROOT / ".git").exists():
        pytest.skip("not a git checkout")
    repo = _repo_with_specs(tmp_path, None)
    clean = _pre_commit(repo, "try-repo", str(ROOT), "aqwen-lint", "--all-files")
    assert clean.returncode == 0, clean.stdout + clean.stderr
    _break_tool_rename(repo)
    _assert_fails_in_workflow_file(_pre_commit(repo, "try-repo", str(ROOT), "aqwen-lint"))
