"""Exporting a compiled bundle for other tools: ``python -m compiler.export BUNDLE_DIR [--tools OUT.json]
[--dataset OUT_DIR] [--chat OUT.jsonl] [--openenv OUT_DIR]``.

- ``--tools``: the tools as OpenAI function-calling JSON (``{"type": "function", "function": {...}}``, the transfer
  tool included), as the model is shown them;
- ``--dataset``: the tasks as a Hugging Face ``datasets`` dataset (``save_to_disk``), one row per task;
- ``--chat``: the gold trajectories as chat-format JSON lines, ``{"messages": [...], "tools": [...]}``, with OpenAI
  style tool calls (``id``, ``type``, ``function.arguments`` as a JSON string) and ``tool_call_id`` on tool
  results, which SFT trainers (TRL's ``SFTTrainer``, OpenAI-format fine-tuning) accept;
- ``--openenv``: an OpenEnv environment package (:mod:`compiler.envpack`), versioned by the bundle's content hash.

The bundle's files are read directly (the compiler does not import the runtime); the manifest's format version and
file hashes are checked as ``Bundle.load`` checks them.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

from aqwen_spec.semantics.user import opening
from compiler.reader import BundleError, BundleFiles, read_bundle


class ExportError(Exception):
    """Gold messages that cannot be converted."""


def openai_messages(gold: list[dict[str, Any]], task_id: str = "") -> list[dict[str, Any]]:
    """Gold messages with OpenAI-style tool calls: ids, ``type: function``, arguments as JSON text; each tool
    result carries the id of the call it answers."""
    out: list[dict[str, Any]] = []
    pending: list[tuple[str, str]] = []
    n = 0
    for m in gold:
        if m["role"] == "assistant" and m.get("tool_calls"):
            calls = []
            for call in m["tool_calls"]:
                n += 1
                call_id = f"call_{n}"
                pending.append((call["name"], call_id))
                calls.append({"id": call_id, "type": "function", "function": {
                    "name": call["name"], "arguments": json.dumps(call.get("arguments", {}), ensure_ascii=False)}})
            out.append({"role": "assistant", "content": m.get("content") or "", "tool_calls": calls})
        elif m["role"] == "tool":
            index = next((i for i, (name, _) in enumerate(pending) if name == m.get("name")), 0 if pending else None)
            if index is None:
                raise ExportError(f"task {task_id}: a tool result with no call before it")
            name, call_id = pending.pop(index)
            out.append({"role": "tool", "tool_call_id": call_id, "name": name, "content": m.get("content", "")})
        else:
            out.append({"role": m["role"], "content": m.get("content") or ""})
    return out


def chat_examples(bundle: BundleFiles) -> list[dict[str, Any]]:
    """One chat example per task: system prompt, the user's opening, the gold trajectory; and the tools."""
    system = bundle.system_prompt()
    tools = bundle.tool_schemas
    return [{"messages": [{"role": "system", "content": system}, {"role": "user", "content": opening(t)},
                          *openai_messages(t["gold"]["messages"], str(t["id"]))],
             "tools": tools} for t in bundle.tasks]


def _difficulty_columns(tasks: list[dict[str, Any]]) -> dict[str, str]:
    """``difficulty_<key>`` columns and their Arrow type: int64, bool, float64, else a JSON string."""
    kinds: dict[str, set[type]] = {}
    for t in tasks:
        for k, v in t.get("difficulty", {}).items():
            kinds.setdefault(k, set()).add(type(v))
    out = {}
    for k, seen in kinds.items():
        out[f"difficulty_{k}"] = ("bool" if seen == {bool} else "int64" if seen == {int} else
                                  "float64" if seen <= {int, float} else "string")
    return out


def task_rows(bundle: BundleFiles) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """One row per task (plain values; gold messages as a JSON string) and the difficulty columns' types."""
    diff = _difficulty_columns(bundle.tasks)
    rows = []
    for t in bundle.tasks:
        row: dict[str, Any] = {
            "id": str(t["id"]), "domain": str(t.get("domain", bundle.domain)), "workflow": str(t["workflow"]),
            "path": [str(p) for p in t.get("path", [])], "branch": str(t.get("branch", "")),
            "persona": None if t.get("persona") is None else str(t["persona"]),
            "instruction": str(t.get("user", {}).get("instruction", "")), "opening": opening(t),
            "gold_messages": json.dumps(t["gold"]["messages"], ensure_ascii=False),
            "gold_outcome": str(t["gold"].get("outcome", "")),
            "verifiers": [str(v) for v in t.get("verifiers", [])],
            "request": None if t.get("request") is None else str(t["request"]),
            "adversarial": bool(t.get("adversarial", False)),
        }
        for col, kind in diff.items():
            value = t.get("difficulty", {}).get(col[len("difficulty_"):])
            row[col] = json.dumps(value) if kind == "string" and value is not None else value
        rows.append(row)
    return rows, diff


def write_dataset(bundle: BundleFiles, out_dir: Path) -> int:
    """Save the tasks as a ``datasets`` dataset at ``out_dir``; returns the number of rows."""
    import datasets  # lazily: the training extra

    rows, diff = task_rows(bundle)
    string = datasets.Value("string")
    strings = datasets.List(string)
    features = datasets.Features({
        "id": string, "domain": string, "workflow": string, "path": strings, "branch": string, "persona": string,
        "instruction": string, "opening": string, "gold_messages": string, "gold_outcome": string,
        "verifiers": strings, "request": string, "adversarial": datasets.Value("bool"),
        **{col: datasets.Value(kind) for col, kind in diff.items()},
    })
    dataset = datasets.Dataset.from_list(rows, features=features)
    dataset.save_to_disk(str(out_dir))
    return len(rows)


def _write_text(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m compiler.export",
                                     description="Export a compiled bundle: tools as OpenAI JSON, tasks as a "
                                     "Hugging Face dataset, gold trajectories as chat JSON lines.")
    parser.add_argument("bundle", type=Path, help="a bundle folder (build/<domain>)")
    parser.add_argument("--tools", type=Path, metavar="OUT.json", help="write the tools as OpenAI tools JSON")
    parser.add_argument("--dataset", type=Path, metavar="OUT_DIR", help="save the tasks as a datasets dataset")
    parser.add_argument("--chat", type=Path, metavar="OUT.jsonl", help="write the gold trajectories as chat JSONL")
    parser.add_argument("--openenv", type=Path, metavar="OUT_DIR", help="write an OpenEnv environment package")
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    if not (args.tools or args.dataset or args.chat or args.openenv):
        parser.print_usage(sys.stderr)
        sys.stderr.write(f"{parser.prog}: error: give at least one of --tools, --dataset, --chat, --openenv\n")
        return 2
    try:
        bundle = read_bundle(args.bundle)
        if args.tools:
            _write_text(args.tools, json.dumps(bundle.tool_schemas, indent=2, ensure_ascii=False) + "\n")
            print(f"{args.tools}: {len(bundle.tool_schemas)} tools")
        if args.chat:
            examples = chat_examples(bundle)
            _write_text(args.chat, "".join(json.dumps(e, ensure_ascii=False) + "\n" for e in examples))
            print(f"{args.chat}: {len(examples)} conversations")
        if args.dataset:
            n = write_dataset(bundle, args.dataset)
            print(f"{args.dataset}: {n} tasks")
        if args.openenv:
            from compiler.envpack import content_version, write_openenv_env

            write_openenv_env(bundle, args.openenv)
            print(f"{args.openenv}: OpenEnv environment {bundle.domain} version {content_version(bundle.manifest)}")
    except (BundleError, ExportError, FileExistsError) as exc:
        sys.stderr.write(f"{parser.prog}: error: {exc}\n")
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
