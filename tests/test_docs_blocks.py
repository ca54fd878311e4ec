"""Every code block in ``docs/*.md`` is run or checked; a block that cannot run here says so, and why.

Conventions (``tests/test_docs.py`` lints the spec blocks and parses the expression blocks):

- ```` ```bash ````, ```` ```sh ```` and ```` ```shell ```` blocks are run as one script each (``bash -e -o
  pipefail``), in page order, in one working folder per page that holds copies of ``specs/``, ``examples/`` and
  ``docs/tutorial/`` (and a link to ``.venv``), with this Python's scripts first on ``PATH``. Each must exit 0;
- ```` ```console ```` blocks: a line starting with ``$ `` is a command (a line ending in ``\\`` continues on the
  next), the lines after it are its output (stdout and stderr together) and must match it. A line ``...`` stands for
  any number of lines; ``[N]`` as the last line of an output means the command exits with status N (else 0). Each
  command runs on its own in the page's folder: a ``cd`` or an ``export`` does not carry over to the next;
- ```` ```python ```` blocks are run with this Python, in the same folder;
- a ```` ```text output ```` block right after a bash or python block is that block's expected output (same rules);
- ```` ```LANG matches=PATH ```` (any language): the block is exactly the file ``PATH`` of the working folder, as it
  is at that point of the page; ```` ```LANG excerpt=PATH ````: the block is a run of whole lines of that file;
- ```` ```LANG file=PATH ````: the block is written to ``PATH`` in the working folder before the page's commands run;
- a ```` ```text usage ```` block is a command's synopsis (``aqwen-run eval BUILD [--k K] ...``, a statement per
  unindented line): every option it names must be one of the command's ``--help``, every option of ``--help`` must be
  in it (by its long or short name), and the values it lists (``--agent oracle|noop``) must be the choices;
- ```` ```yaml ````, ```` ```expr ````, ```` ```effects ```` blocks are checked by ``tests/test_docs.py``,
  ```` ```json ```` blocks must parse, other ```` ```text ```` blocks are output and diagrams, not code;
- any other block, and any block that cannot run here, has ``<!-- not run: REASON -->`` on the last non-blank line
  before it (a GPU, the network, minutes of training, a server that never exits). A marker without a reason, or a
  block of another language without a marker, fails; so does a command still running after ``TIMEOUT_S`` seconds
  (the whole docs suite should take about a minute on two cores).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from test_docs import DOCS, FENCE, ROOT

COPIED = ("specs", "examples", "docs/tutorial")

SHELLS = {"bash", "sh", "shell"}
RUN = SHELLS | {"console", "python"}
CHECKED = {"yaml", "expr", "effects", "json"}
NOT_CODE = {"text"}
TIMEOUT_S = 60

_MARKER = re.compile(r"^<!--\s*not run\b(.*?)-->\s*$")


@dataclass(frozen=True)
class Block:
    page: str
    line: int
    lang: str
    attrs: dict[str, str]
    flags: frozenset[str]
    body: str
    marker: str | None  # the text after "not run" in a marker before the block, or None

    @property
    def where(self) -> str:
        return f"docs/{self.page}:{self.line}"

    @property
    def reason(self) -> str:
        return self.marker.strip().removeprefix(":").strip() if self.marker is not None else ""


def page_blocks(page: Path) -> list[Block]:
    text = page.read_text(encoding="utf-8")
    out: list[Block] = []
    end = 0
    for m in FENCE.finditer(text):
        before = [ln.strip() for ln in text[end : m.start()].splitlines() if ln.strip()]
        marker = _MARKER.match(before[-1]) if before else None
        info = m.group(2).split()
        attrs = dict(w.split("=", 1) for w in info if "=" in w)
        flags = frozenset(w for w in info if "=" not in w)
        out.append(
            Block(page.name, text.count("\n", 0, m.start()) + 1, m.group(1), attrs, flags, m.group(3),
                  marker.group(1) if marker else None)
        )
        end = m.end()
    return out


# --- what every block must be -----------------------------------------------------------------------------------


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_every_block_is_run_checked_or_marked(page: Path) -> None:
    problems = []
    for b in page_blocks(page):
        if b.marker is not None:
            if not b.marker.strip().startswith(":") or not b.reason:
                problems.append(f"{b.where}: '<!-- not run -->' needs a reason: '<!-- not run: REASON -->'")
            continue
        known = b.lang in RUN | CHECKED | NOT_CODE or {"file", "matches", "excerpt"} & set(b.attrs)
        if not known:
            lang = b.lang or "(no language)"
            problems.append(
                f"{b.where}: a ```{lang} block is neither run nor checked: use a language that is (text for "
                "output and diagrams), or mark it '<!-- not run: REASON -->'"
            )
        if b.lang == "json":
            try:
                json.loads(b.body)
            except json.JSONDecodeError as exc:
                problems.append(f"{b.where}: not valid JSON: {exc}")
    assert not problems, "\n".join(problems)


def test_markers_stand_right_before_a_block() -> None:
    """A marker that no block follows (a typo in the fence, a paragraph in between) is a mistake."""
    problems = []
    for page in DOCS:
        text = page.read_text(encoding="utf-8")
        marked = {b.line for b in page_blocks(page) if b.marker is not None}
        lines = text.splitlines()
        for i, line in enumerate(lines):
            if _MARKER.match(line.strip()):
                nxt = next((j for j in range(i + 1, len(lines)) if lines[j].strip()), None)
                if nxt is None or not lines[nxt].startswith("```") or nxt + 1 not in marked:
                    problems.append(f"docs/{page.name}:{i + 1}: a 'not run' marker with no code block right after it")
    assert not problems, "\n".join(problems)


# --- running them -----------------------------------------------------------------------------------------------


def _env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in {"GITHUB_ACTIONS", "FORCE_COLOR", "CLICOLOR_FORCE"}}
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env.update(NO_COLOR="1", PYTHONUNBUFFERED="1", HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    # DeepSpeed, where installed, warns on import that it picked the CPU ("Setting accelerator to CPU ..."), before a
    # page's first output line when a model is built on a cold cache; naming the CPU tells it the same without a word
    env.setdefault("DS_ACCELERATOR", "cpu")
    return env


def _workdir(tmp_path: Path) -> Path:
    work = tmp_path / "work"
    for rel in COPIED:
        shutil.copytree(ROOT / rel, work / rel, ignore=shutil.ignore_patterns(".*", "__pycache__"))
    if (ROOT / ".venv").is_dir():
        (work / ".venv").symlink_to(ROOT / ".venv")
    return work


def _inside(work: Path, rel: str, where: str) -> Path:
    path = (work / rel).resolve()
    assert path.is_relative_to(work.resolve()), f"{where}: {rel} is outside the working folder"
    return path


def _run(args: list[str], work: Path, where: str) -> tuple[int, str]:
    # a session of its own, so that a command that runs too long is stopped with everything it started
    with subprocess.Popen(args, cwd=work, env=_env(), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                          start_new_session=True) as proc:
        try:
            output, _ = proc.communicate(timeout=TIMEOUT_S)
        except subprocess.TimeoutExpired:  # pragma: no cover - the message is the point
            os.killpg(proc.pid, signal.SIGKILL)
            proc.communicate()
            pytest.fail(f"{where}: still running after {TIMEOUT_S} s (mark it '<!-- not run: REASON -->')")
    return proc.returncode, output


def output_matches(expected: list[str], actual: str) -> bool:
    """Whether ``actual`` is ``expected`` line by line (trailing spaces aside), a line ``...`` matching any lines."""
    got = [ln.rstrip() for ln in actual.splitlines()]
    while got and not got[-1]:
        got.pop()
    want = [ln.rstrip() for ln in expected]
    while want and not want[-1]:
        want.pop()
    pattern = "".join(r"(?:[^\n]*\n)*?" if line == "..." else re.escape(line) + "\n" for line in want)
    return re.fullmatch(pattern, "".join(line + "\n" for line in got)) is not None


def _show(text: str, limit: int = 6000) -> str:
    return text if len(text) <= limit else f"...{text[-limit:]}"


def _console(block: Block) -> list[tuple[str, list[str], int]]:
    """(command, expected output lines, expected status) of each ``$ `` command of a console block."""
    out: list[tuple[str, list[str], int]] = []
    lines = block.body.splitlines()
    i = 0
    while i < len(lines):
        line = lines[i]
        if not line.startswith("$ "):
            assert not out or line.strip() == "", f"{block.where}: console output before the first '$ ' command"
            i += 1
            continue
        command = line[2:]
        while command.endswith("\\") and i + 1 < len(lines):
            i += 1
            command = command[:-1] + " " + lines[i].removeprefix("> ").strip()
        i += 1
        expected: list[str] = []
        while i < len(lines) and not lines[i].startswith("$ "):
            expected.append(lines[i])
            i += 1
        status = 0
        while expected and not expected[-1].strip():
            expected.pop()
        if expected and re.fullmatch(r"\[\d+\]", expected[-1].strip()):
            status = int(expected.pop().strip()[1:-1])
        out.append((command, expected, status))
    assert out, f"{block.where}: a console block with no '$ ' command"
    return out


def _check(where: str, what: str, status: int, want_status: int, output: str, expected: list[str] | None) -> None:
    if status != want_status:
        pytest.fail(f"{where}: {what} exited {status}, expected {want_status}; output:\n{_show(output)}")
    if expected is not None and not output_matches(expected, output):
        pytest.fail(
            f"{where}: {what}: output differs\n--- the page shows:\n" + "\n".join(expected)
            + f"\n--- the command printed:\n{_show(output)}"
        )


def _runnable(page: Path) -> bool:
    return any(
        b.marker is None and (b.lang in RUN or "usage" in b.flags or {"matches", "excerpt"} & set(b.attrs))
        for b in page_blocks(page)
    )


_OPTION = re.compile(r"(?<![\w<-])(--?[A-Za-z][\w-]*)")


def _usage_command(statement: str) -> list[str]:
    """The command a synopsis is about: ``aqwen-run [run] [--x]`` is ``aqwen-run run``."""
    words = statement.split()
    command = words[:3] if words[:2] == ["python", "-m"] else words[:1]
    for word in words[len(command) :]:
        if not re.fullmatch(r"\[?[a-z][\w.-]*\]?", word):
            break
        command.append(word.strip("[]"))
    return command


def _check_usage(block: Block, work: Path) -> None:
    for statement in re.split(r"\n(?=\S)", block.body.strip()):
        command = _usage_command(statement)
        status, help_text = _run([*command, "--help"], work, block.where)
        assert status == 0, f"{block.where}: {' '.join(command)} --help exited {status}:\n{_show(help_text)}"
        options = set(_OPTION.findall(help_text)) - {"-h", "--help"}
        short = {long: s for s, long in re.findall(r"(?<![\w-])(-\w)(?: [A-Z_]+)?, (--[\w-]+)", help_text)}
        shown = set(_OPTION.findall(statement))
        name = " ".join(command)
        assert shown <= options, f"{block.where}: {name} has no option {sorted(shown - options)}"
        missing = sorted(o for o in options if o.startswith("--") and o not in shown and short.get(o) not in shown)
        assert not missing, f"{block.where}: the synopsis of {name} lacks {missing}"
        helped = {o: set(v.split(",")) for o, v in re.findall(r"(--[\w-]+) \{([^}]*)\}", help_text)}
        for option, values in re.findall(r"(--[\w-]+) ([\w.-]+(?:\|[\w.-]+)+)", statement):
            if option in helped:
                assert set(values.split("|")) == helped[option], (
                    f"{block.where}: {name} {option} takes {sorted(helped[option])}, the synopsis says {values}"
                )


@pytest.mark.parametrize("page", DOCS, ids=lambda p: p.name)
def test_page_runs(page: Path, tmp_path: Path) -> None:
    """Run the page's commands in order, compare what it shows with what they print and with the files it names."""
    if not _runnable(page):
        pytest.skip("nothing to run on this page")
    work = _workdir(tmp_path)
    blocks = page_blocks(page)
    for b in blocks:
        if "file" in b.attrs and b.marker is None:
            target = _inside(work, b.attrs["file"], b.where)
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(b.body, encoding="utf-8")
    scripts = tmp_path / "scripts"
    scripts.mkdir()
    for n, b in enumerate(blocks):
        if b.marker is not None:
            continue
        if "matches" in b.attrs:
            path = _inside(work, b.attrs["matches"], b.where)
            assert path.is_file(), f"{b.where}: {b.attrs['matches']} does not exist"
            actual = path.read_text(encoding="utf-8")
            assert b.body == actual, f"{b.where}: the block is not the file {b.attrs['matches']}:\n{_show(actual)}"
        if "excerpt" in b.attrs:
            path = _inside(work, b.attrs["excerpt"], b.where)
            assert path.is_file(), f"{b.where}: {b.attrs['excerpt']} does not exist"
            text = "\n" + path.read_text(encoding="utf-8")
            assert "\n" + b.body in text, f"{b.where}: the block is not an excerpt of {b.attrs['excerpt']}"
        follows = blocks[n + 1] if n + 1 < len(blocks) else None
        expected = None
        if follows is not None and follows.lang == "text" and "output" in follows.flags and follows.marker is None:
            expected = follows.body.splitlines()
        if b.lang in SHELLS or b.lang == "python":
            script = scripts / f"block_{b.line:04d}.{'py' if b.lang == 'python' else 'sh'}"
            script.write_text(b.body, encoding="utf-8")
            shell = ["bash", "-e", "-o", "pipefail"]
            args = [sys.executable, str(script)] if b.lang == "python" else [*shell, str(script)]
            status, output = _run(args, work, b.where)
            _check(b.where, f"the {b.lang} block", status, 0, output, expected)
        elif b.lang == "console":
            for command, want, want_status in _console(b):
                status, output = _run(["bash", "-o", "pipefail", "-c", command], work, b.where)
                _check(b.where, f"$ {command}", status, want_status, output, want)
        elif "usage" in b.flags and b.lang == "text":
            _check_usage(b, work)
        elif "output" in b.flags and b.lang == "text":
            prev = blocks[n - 1] if n else None
            assert prev is not None and (prev.lang in SHELLS or prev.lang == "python"), (
                f"{b.where}: a ```text output block must follow a bash or python block"
            )


# --- the checker itself -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("expected", "actual", "ok"),
    [
        (["a", "b"], "a\nb\n", True),
        (["a", "b"], "a\nb  \n\n", True),
        (["a"], "a\nb\n", False),
        (["a", "...", "d"], "a\nb\nc\nd\n", True),
        (["a", "...", "d"], "a\nd\n", True),
        (["...", "c"], "a\nb\nc\n", True),
        (["...", "c"], "a\nc\nb\n", False),
        (["a", "..."], "a\n", True),
        (["b", "..."], "a\nb\n", False),
    ],
)
def test_output_matching(expected: list[str], actual: str, ok: bool) -> None:
    assert output_matches(expected, actual) is ok


def test_usage_names_its_command() -> None:
    assert _usage_command("aqwen-run [run] [--pipeline NAME]") == ["aqwen-run", "run"]
    assert _usage_command("aqwen-run eval BUILD/<domain> [--k K]") == ["aqwen-run", "eval"]
    assert _usage_command("aqwen-lint [PATH ...] [--strict]") == ["aqwen-lint"]
    assert _usage_command("python -m aqwen_spec.interop import FILE -o X") == ["python", "-m", "aqwen_spec.interop",
                                                                              "import"]


def test_blocks_and_markers_are_read(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "Text.\n\n<!-- not run: needs a GPU -->\n```bash\nvllm serve x\n```\n\n<!-- not run -->\n\n```bash\nx\n```\n"
        "\n```console\n$ echo a \\\n> b\na b\n$ false\n[1]\n```\n\n```yaml matches=a/b.yaml\nk: v\n```\n"
    )
    got = page_blocks(page)
    assert [(b.lang, b.line, b.marker is not None, b.reason) for b in got] == [
        ("bash", 4, True, "needs a GPU"), ("bash", 10, True, ""), ("console", 14, False, ""), ("yaml", 22, False, "")
    ]
    assert got[3].attrs == {"matches": "a/b.yaml"}
    assert _console(got[2]) == [("echo a  b", ["a b"], 0), ("false", [], 1)]
