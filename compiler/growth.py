"""Growth operators: turn a workflow the model fails on into a richer, harder one, written as YAML a person can read.

An operator reads the documents of a workflow as written (its YAML mapping, its verifiers, the domain's tools and
personas) and returns new documents (a workflow, its verifiers, sometimes a persona or a tool) or ``None`` where it
does not apply. Operators edit specs, not tasks, and trust nothing they write: the flywheel lints and compiles the
grown spec tree, and keeps a growth only if it compiles and every task it yields has a gold trajectory scoring 1.0.

=================  =====================================================================================
operator           what it grows
=================  =====================================================================================
``error_branch``   a branch for a tool's failing precondition (the agent must check and refuse), with the
                   slot that fed the call widened so the failure can happen
``clarify``        a value the user's first message gave is held back; the agent must ask for it
``confirm_write``  the agent must confirm with the user before every write
``policy_branch``  a refusal or transfer branch of another workflow of the domain whose condition applies
``chain``          two workflows in one conversation (a longer chain of calls)
``distractor``     a look-alike tool the agent must not use
``harder_persona`` a persona who withholds ids, gives a wrong one first and (for policy branches) pushes
=================  =====================================================================================
"""

from __future__ import annotations

import copy
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from aqwen_spec.expr.parser import outside_strings
from aqwen_spec.resolved import SpecSet
from aqwen_spec.semantics.user import hold_back

USER_ACTIONS = ("ask_user", "inform_user", "confirm", "refuse", "transfer")
_CALL = re.compile(r"^\s*([A-Za-z_]\w*)\s*(?:\((.*)\))?\s*$", re.S)
_JINJA_VALUE = re.compile(r"\{\{\s*([A-Za-z_]\w*(?:\.\w+)*)\s*\}\}")
_IDENT = re.compile(r"(?<![\w.\"'])([A-Za-z_]\w*)")
_FREE = re.compile(r"(?<![\w.\"'])([A-Za-z_]\w*)(?!\w|\s*=(?!=))")  # not a field, not a keyword argument
_SHORT = {"error_branch": "err", "clarify": "ask", "confirm_write": "cnf", "policy_branch": "pol", "chain": "chn",
          "distractor": "dst", "harder_persona": "hp"}


@dataclass
class RawDoc:
    """One document as written: its kind, name, file and mapping."""

    kind: str
    name: str
    path: Path
    data: dict[str, Any]


def load_raw(specs: Path) -> dict[tuple[str, str], RawDoc]:
    """Every named document under ``specs`` by (kind, name), as plain YAML data."""
    out: dict[tuple[str, str], RawDoc] = {}
    files = [specs] if specs.is_file() else sorted(p for p in specs.rglob("*") if p.suffix in (".yaml", ".yml"))
    for path in files:
        try:
            docs = list(yaml.safe_load_all(path.read_text(encoding="utf-8")))
        except yaml.YAMLError:
            continue
        for data in docs:
            if isinstance(data, dict) and isinstance(data.get("kind"), str) and isinstance(data.get("name"), str):
                out[(data["kind"], data["name"])] = RawDoc(data["kind"], data["name"], path, data)
    return out


@dataclass
class Growth:
    """What one operator made from one workflow."""

    operator: str
    source: str  # the workflow it grew from
    workflow: str  # the new workflow's name
    documents: list[dict[str, Any]]
    note: str
    failed_task: str = ""  # the task whose failure it grew from (set by the flywheel)
    new_branches: list[str] = field(default_factory=list)

    def yaml(self) -> str:
        return yaml_documents(self.documents)


@dataclass
class GrowthContext:
    specs: SpecSet
    raw: dict[tuple[str, str], RawDoc]
    round: int
    taken: set[str] = field(default_factory=set)  # names already used by grown documents

    def workflow(self, name: str) -> dict[str, Any]:
        return copy.deepcopy(self.raw[("Workflow", name)].data)

    def verifiers(self, workflow: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(d.data) for (kind, _), d in sorted(self.raw.items())
                if kind == "Verifier" and d.data.get("for") == workflow]

    def fresh(self, base: str) -> str:
        base = base[:58]
        name, n = base, 1
        while name in self.taken or any(name == k[1] for k in self.raw):
            n += 1
            name = f"{base}_{n}"
        self.taken.add(name)
        return name


def yaml_documents(docs: list[dict[str, Any]]) -> str:
    return "---\n".join(yaml.safe_dump(d, sort_keys=False, allow_unicode=True, width=4096) for d in docs)


# --- reading trees as written ----------------------------------------------------------------------------------


def call_of(node: Any) -> tuple[str, str] | None:
    """(tool, argument text) of a call node, None for anything else (user actions included)."""
    text = node.get("call") if isinstance(node, dict) and "call" in node else node
    if not isinstance(text, str):
        return None
    m = _CALL.match(text)
    if not m or m.group(1) in USER_ACTIONS:
        return None
    return m.group(1), (m.group(2) or "").strip()


def split_args(text: str) -> dict[str, str]:
    """``a=x, b=f(y, z)`` -> {a: "x", b: "f(y, z)"} (top-level commas only; quotes and brackets respected)."""
    parts, start = [], 0
    for i, ch, depth in outside_strings(text):
        if ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    out = {}
    for part in parts:
        if "=" in part:
            key, value = part.split("=", 1)
            out[key.strip()] = value.strip()
    return out


def sequence_of(tree: Any) -> list[Any]:
    """The top-level sequence of a tree (a list, ``{sequence: [...]}`` or one node)."""
    if isinstance(tree, list):
        return tree
    if isinstance(tree, dict) and isinstance(tree.get("sequence"), list):
        return list(tree["sequence"])
    return [tree]


def sequences(node: Any) -> Iterator[list[Any]]:
    """Every sequence of a tree, nested ones in branches included (each a list that can be edited in place)."""
    if isinstance(node, list):
        yield node
        for item in node:
            yield from sequences(item)
    elif isinstance(node, dict):
        if isinstance(node.get("sequence"), list):
            yield from sequences(node["sequence"])
        for branch in node.get("select") or []:
            for key in ("then", "otherwise"):
                if isinstance(branch, dict) and key in branch:
                    if not isinstance(branch[key], list):
                        branch[key] = [branch[key]]
                    yield from sequences(branch[key])


def branch_names(node: Any) -> set[str]:
    names: set[str] = set()
    if isinstance(node, list):
        for item in node:
            names |= branch_names(item)
    elif isinstance(node, dict):
        names |= branch_names(node.get("sequence"))
        for branch in node.get("select") or []:
            if isinstance(branch, dict):
                if isinstance(branch.get("name"), str):
                    names.add(branch["name"])
                names |= branch_names(branch.get("then")) | branch_names(branch.get("otherwise"))
    return names


def rename(text: str, names: dict[str, str]) -> str:
    """Rename free identifiers of an expression (not fields after a dot, not text inside quotes, except inside the
    ``{...}`` of an f-string)."""
    out: list[str] = []
    for piece in re.split(r"(\"(?:[^\"\\]|\\.)*\"|'(?:[^'\\]|\\.)*')", text):
        if piece[:1] in "\"'" and len(piece) > 1:
            if out and re.search(r"(?<![\w.])f$", out[-1]):
                piece = re.sub(r"\{([^{}]*)\}", lambda m: "{" + rename(m.group(1), names) + "}", piece)
            out.append(piece)
        else:
            out.append(_FREE.sub(lambda m: names.get(m.group(1), m.group(1)), piece))
    return "".join(out)


def _substitute(expr: str, args: dict[str, str]) -> str:
    simple = re.compile(r"^[A-Za-z_][\w.]*$|^\"[^\"]*\"$|^-?\d+(\.\d+)?$")
    return rename(expr, {k: v if simple.match(v) else f"({v})" for k, v in args.items()})


def _humanize(name: str) -> str:
    return name.replace("_", " ")


def _new_workflow(ctx: GrowthContext, source: str, op: str, wf: dict[str, Any], note: str) -> dict[str, Any]:
    wf = dict(wf)
    wf["name"] = ctx.fresh(f"{source}_{_SHORT[op]}{ctx.round}")
    description = (wf.get("description") or "").strip()
    wf["description"] = f"{description} Grown by {op} in flywheel round {ctx.round}: {note}".strip()
    return wf


def _verifiers_for(ctx: GrowthContext, source: str, new: str, extra: list[dict[str, Any]] | None = None,
                   edit: Callable[[Any], Any] | None = None) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for v in ctx.verifiers(source):
        v["name"] = ctx.fresh(f"{new}_ok" if len(out) == 0 else f"{new}_ok{len(out) + 1}")
        v["for"] = new
        v.pop("description", None)
        checks = [edit(c) if edit else c for c in v.get("checks") or []]
        v["checks"] = checks + (extra or [])
        out.append(v)
    return out


# --- operators -------------------------------------------------------------------------------------------------


def confirm_write(ctx: GrowthContext, source: str) -> Growth | None:
    wf = ctx.workflow(source)
    added = 0
    for seq in list(sequences(wf["tree"])):
        i = 0
        while i < len(seq):
            call = call_of(seq[i])
            tool = ctx.specs.tools.get(call[0]) if call else None
            before = seq[i - 1] if i else None
            confirmed = isinstance(before, dict) and "confirm" in before
            if call and tool is not None and tool.access == "write" and not confirmed:
                seq.insert(i, {"confirm": {"about": f"{_humanize(call[0])} ({call[1]})" if call[1]
                                           else _humanize(call[0])}})
                added += 1
                i += 1
            i += 1
    if not added:
        return None
    note = f"confirms before {added} write(s)"
    new = _new_workflow(ctx, source, "confirm_write", wf, note)
    return Growth("confirm_write", source, new["name"], [new, *_verifiers_for(ctx, source, new["name"])], note)


def clarify(ctx: GrowthContext, source: str) -> Growth | None:
    wf = ctx.workflow(source)
    instruction = str(wf.get("instruction", ""))
    tree_text = yaml.safe_dump(wf["tree"])
    revealed = set(re.findall(r"reveals:\s*([\w.]+)", tree_text))
    slots = set((wf.get("slots") or {}).keys())
    for m in _JINJA_VALUE.finditer(instruction):
        expr = m.group(1)
        if expr.split(".")[0] not in slots or expr in revealed:
            continue
        param = None
        for seq in sequences(wf["tree"]):
            for node in seq:
                call = call_of(node)
                if call:
                    param = next((k for k, v in split_args(call[1]).items() if v == expr), param)
        if param is None:
            continue
        about = _humanize(param)
        wf["instruction"] = hold_back(instruction, m.group(0), about)
        seq = sequence_of(wf["tree"])
        seq.insert(0, {"ask_user": {"about": f"the {about}", "reveals": expr}})
        wf["tree"] = seq
        note = f"the user no longer gives {expr} up front; the agent must ask for the {about}"
        new = _new_workflow(ctx, source, "clarify", wf, note)
        return Growth("clarify", source, new["name"], [new, *_verifiers_for(ctx, source, new["name"])], note)
    return None


def _widen_slots(wf: dict[str, Any], roots: set[str]) -> None:
    """``sample(xs where cond)`` -> ``sample(xs)`` for the slots named in ``roots``."""
    for name, expr in list((wf.get("slots") or {}).items()):
        if name in roots and isinstance(expr, str):
            m = re.match(r"^\s*(sample|choice)\(\s*(\w+)\s+where\s+.*\)\s*$", expr, re.S)
            if m:
                wf["slots"][name] = f"{m.group(1)}({m.group(2)})"


def error_branch(ctx: GrowthContext, source: str) -> Growth | None:
    wf = ctx.workflow(source)
    if not (isinstance(wf["tree"], dict) and "sequence" in wf["tree"]):
        wf["tree"] = sequence_of(wf["tree"])
    taken = branch_names(wf["tree"])
    slots = set((wf.get("slots") or {}).keys())
    for seq in list(sequences(wf["tree"])):
        for i, node in enumerate(seq):
            call = call_of(node)
            tool = ctx.specs.tools.get(call[0]) if call else None
            if call is None or tool is None:
                continue
            raw_tool = ctx.raw.get(("Tool", tool.name))
            requires = (raw_tool.data.get("requires") or []) if raw_tool else []
            args = split_args(call[1])
            for k, req in enumerate(requires):
                cond = req.get("when") if isinstance(req, dict) else None
                if not isinstance(cond, str) or re.match(r"^\s*\w+\s+in\s+\w+\s*$", cond):
                    continue  # "id in records": a slot drawn from the state always passes it
                used = set(_IDENT.findall(cond)) & set(tool.params)
                if not used or not used <= set(args):
                    continue
                name, ok = f"{tool.name}_fails", f"{tool.name}_ok"
                if name in taken or ok in taken:
                    continue
                check = " ".join(_substitute(cond, args).split())
                _widen_slots(wf, {r for v in args.values() for r in _IDENT.findall(v)} & slots)
                seq[i:] = [{"select": [
                    {"name": name, "when": f"not ({check})",
                     "then": [{"refuse": {"reason": f"{_humanize(tool.name)} is not possible here"}}]},
                    {"name": ok, "otherwise": seq[i:]},
                ]}]
                note = f"branch {name}: {tool.name}'s precondition {k + 1} fails; the agent must refuse"
                new = _new_workflow(ctx, source, "error_branch", wf, note)
                gates = [{"forbid": tool.name, "when": f'branch == "{name}"', "gate": True},
                         *_outcome_gate(ctx, source, name)]
                return Growth("error_branch", source, new["name"],
                              [new, *_verifiers_for(ctx, source, new["name"], gates, edit=_unless_branch(name))], note)
    return None


def policy_branch(ctx: GrowthContext, source: str) -> Growth | None:
    """Transplant a refusal or transfer branch that guards a write tool in another workflow of the domain to where
    this workflow calls the same tool: the same policy, met in a new situation."""
    wf = ctx.workflow(source)
    if not (isinstance(wf["tree"], dict) and "sequence" in wf["tree"]):
        wf["tree"] = sequence_of(wf["tree"])
    domain = wf.get("domain")
    slots = set((wf.get("slots") or {}).keys())
    state = set(ctx.specs.domains[domain].state.fields) if domain in ctx.specs.domains else set()
    known = slots | state | {"true", "false", "null", "and", "or", "not", "in", "where", "len"}
    taken = branch_names(wf["tree"])
    for (kind, other), doc in sorted(ctx.raw.items()):
        if kind != "Workflow" or other == source or doc.data.get("domain") != domain:
            continue
        for guarded, name, cond, body in _policy_branches(ctx, doc.data.get("tree")):
            if not set(_IDENT.findall(cond)) <= known:
                continue
            name = f"{name}_{_SHORT['policy_branch']}"
            if name in taken or f"{name}_clear" in taken:
                continue
            for seq in list(sequences(wf["tree"])):
                at = next((i for i, n in enumerate(seq) if (c := call_of(n)) and c[0] in guarded), None)
                if at is None:
                    continue
                tool = call_of(seq[at])[0]  # type: ignore[index]
                seq[at:] = [{"select": [
                    {"name": name, "when": cond, "then": body},
                    {"name": f"{name}_clear", "otherwise": seq[at:]},
                ]}]
                note = f"branch {name} from {other}: when {cond}, {tool} must not go ahead"
                new = _new_workflow(ctx, source, "policy_branch", wf, note)
                gates = [{"forbid": tool, "when": f'branch == "{name}"', "gate": True},
                         *_outcome_gate(ctx, source, name)]
                return Growth("policy_branch", source, new["name"],
                              [new, *_verifiers_for(ctx, source, new["name"], gates, edit=_unless_branch(name))],
                              note)
    return None


def _policy_branches(ctx: GrowthContext, tree: Any, named_only: bool = True
                     ) -> Iterator[tuple[set[str], str, str, Any]]:
    """(write tools guarded, branch name, condition, body) of every refusal or transfer branch of a tree; an
    ``otherwise`` branch's condition is that no earlier branch of its select holds."""
    for select in _selects(tree):
        earlier: list[str] = []
        writes: set[str] = set()
        for branch in select:
            for seq in sequences(copy.deepcopy([branch.get("then"), branch.get("otherwise")])):
                writes |= {c[0] for n in seq if (c := call_of(n)) and c[0] in ctx.specs.tools
                           and ctx.specs.tools[c[0]].access == "write"}
        for index, branch in enumerate(select):
            if not isinstance(branch, dict):
                continue
            body = branch.get("then", branch.get("otherwise"))
            when = branch.get("when")
            cond = when if isinstance(when, str) else " and ".join(f"not ({c})" for c in earlier)
            if isinstance(when, str):
                earlier.append(when)
            if _ends_request(body) and (not named_only or (cond and writes)):
                yield writes, str(branch.get("name") or f"policy{index + 1}"), " ".join(cond.split()), \
                    copy.deepcopy(body)


def _selects(node: Any) -> Iterator[list[Any]]:
    for seq in sequences(copy.deepcopy(node)):
        for item in seq:
            if isinstance(item, dict) and isinstance(item.get("select"), list):
                yield item["select"]


def _ends_request(body: Any) -> bool:
    items = body if isinstance(body, list) else [body]
    for item in items:
        if isinstance(item, dict) and ("refuse" in item or "transfer" in item):
            return True
        if isinstance(item, str) and re.match(r"^\s*(refuse|transfer)\b", item):
            return True
    return False


def chain(ctx: GrowthContext, source: str) -> Growth | None:
    """``source`` then another workflow of the domain, in one conversation, when ``source`` always ends done."""
    first = ctx.workflow(source)
    ending = [b for _, b, _, _ in _policy_branches(ctx, first["tree"], named_only=False)]
    if _ends_request_anywhere(first["tree"]) and (not ending or any(b.startswith("policy") for b in ending)):
        return None  # a refusal the second part cannot be told apart from
    ran = " and ".join(f'not ("{b}" in path)' for b in ending)  # the second part runs unless the first ended it
    domain = first.get("domain")
    for (kind, other), doc in sorted(ctx.raw.items()):
        if kind != "Workflow" or other == source or doc.data.get("domain") != domain or "_" + _SHORT["chain"] in other:
            continue
        second = copy.deepcopy(doc.data)
        names = {s: f"b_{s}" for s in (second.get("slots") or {})}
        branches = {b: f"b_{b}" for b in branch_names(second["tree"])}
        if set(names.values()) & set(first.get("slots") or {}):
            continue
        slots = dict(first.get("slots") or {})
        slots.update({names[k]: rename(str(v), names) for k, v in (second.get("slots") or {}).items()})
        tree2 = _rename_tree(second["tree"], names, branches)
        wf = dict(first)
        wf["slots"] = slots
        wf["tree"] = sequence_of(first["tree"]) + sequence_of(tree2)
        opening = re.sub(r"\{\{\s*persona\.opening\s*\}\}\s*", "", str(second.get("instruction", "")))
        wf["instruction"] = f"{first.get('instruction', '')} After that: " + _rename_template(opening, names)
        wf["personas"] = sorted(set(first.get("personas") or []) & set(second.get("personas") or [])) or \
            first.get("personas") or second.get("personas") or []
        if not wf["personas"]:
            wf.pop("personas")
        note = f"{source}, then {other} in the same conversation"
        new = _new_workflow(ctx, source, "chain", wf, note)
        checks2 = [c for v in ctx.verifiers(other) for c in v.get("checks") or []
                   if not _is_gold_check(c)]
        extra = [_guard(_rename_check(c, names, branches), ran) for c in checks2]
        verifiers = _verifiers_for(ctx, source, new["name"], extra, edit=_branch_to_path)
        return Growth("chain", source, new["name"], [new, *verifiers], note)
    return None


def _rename_template(text: str, names: dict[str, str]) -> str:
    """Rename slots inside a template's ``{{ ... }}`` and ``{% ... %}``."""
    return re.sub(r"(\{\{|\{%)(.*?)(\}\}|%\})", lambda m: m.group(1) + rename(m.group(2), names) + m.group(3),
                  text, flags=re.S)


def _guard(check: Any, cond: str) -> Any:
    if not cond:
        return check
    check = {check: True} if isinstance(check, str) else dict(check)
    check["when"] = f"({check['when']}) and {cond}" if isinstance(check.get("when"), str) else cond
    return check


def _ends_request_anywhere(tree: Any) -> bool:
    return bool(re.search(r"\b(refuse|transfer)\b", yaml.safe_dump(tree)))


def _outcome_gate(ctx: GrowthContext, source: str, branch: str) -> list[dict[str, Any]]:
    """A new branch that refuses or transfers: the agent must end the request so (a gate), else doing nothing, which
    calls nothing forbidden, would pass its verifier (AQ615). Nothing when the verifiers check the outcome already."""
    def checks_outcome(check: Any) -> bool:
        return check == "same_outcome_as_gold" or (isinstance(check, dict) and "same_outcome_as_gold" in check
                                                   and "when" not in check)

    if any(checks_outcome(c) for v in ctx.verifiers(source) for c in v.get("checks") or []):
        return []
    return [{"same_outcome_as_gold": True, "when": f'branch == "{branch}"', "gate": True}]


def _is_gold_check(check: Any) -> bool:
    names = ("same_final_state_as_gold", "same_outcome_as_gold")
    return check in names or (isinstance(check, dict) and any(n in check for n in names))


def _branch_to_path(check: Any) -> Any:
    """In a chain the last branch is the second workflow's: ``branch == "x"`` becomes ``"x" in path``."""
    if isinstance(check, dict) and isinstance(check.get("when"), str):
        check = dict(check)
        check["when"] = re.sub(r"\bbranch\s*==\s*(\"[^\"]*\"|'[^']*')", r"\1 in path", check["when"])
    return check


def _unless_branch(name: str) -> Callable[[Any], Any]:
    """Checks of a workflow that gains a branch ending the request early: a check that always applied now applies
    unless that branch was taken; and as a new branch nested inside branch X changes the last branch taken,
    ``branch == "X"`` reads ``("X" in path and branch != "<new>")``, so it keeps applying to X's episodes only."""

    def edit(check: Any) -> Any:
        if _is_gold_check(check):
            return check
        if isinstance(check, dict) and "when" not in check:  # the new branch ends the request early
            return {**check, "when": f'branch != "{name}"'}
        if isinstance(check, dict) and isinstance(check.get("when"), str):
            check = dict(check)
            check["when"] = re.sub(r"\bbranch\s*==\s*(\"[^\"]*\"|'[^']*')",
                                   lambda m: f'({m.group(1)} in path and branch != "{name}")', check["when"])
        return check

    return edit


def _rename_check(check: Any, names: dict[str, str], branches: dict[str, str]) -> Any:
    if not isinstance(check, dict):
        return check
    out: dict[str, Any] = {}
    for key, value in check.items():
        if key in ("assert", "require", "forbid", "tells_user", "when") and isinstance(value, str):
            value = rename(value, names)
            for old, new in branches.items():
                value = value.replace(f'"{old}"', f'"{new}"').replace(f"'{old}'", f"'{new}'")
        out[key] = value
    return out


def _rename_tree(node: Any, names: dict[str, str], branches: dict[str, str]) -> Any:
    if isinstance(node, str):
        return rename(node, names)
    if isinstance(node, list):
        return [_rename_tree(n, names, branches) for n in node]
    if isinstance(node, dict):
        out: dict[str, Any] = {}
        for key, value in node.items():
            if key == "name" and isinstance(value, str):
                out[key] = branches.get(value, value)
            elif key == "as":
                out[key] = value
            elif key in ("about", "reason") and isinstance(value, str):  # text, possibly with template values
                out[key] = _rename_template(value, names)
            else:
                out[key] = _rename_tree(value, names, branches)
        return out
    return node


def distractor(ctx: GrowthContext, source: str) -> Growth | None:
    """A look-alike of a read tool the workflow calls, which the agent must leave alone."""
    wf = ctx.workflow(source)
    for seq in sequences(wf["tree"]):
        for node in seq:
            call = call_of(node)
            tool = ctx.specs.tools.get(call[0]) if call else None
            raw = ctx.raw.get(("Tool", tool.name)) if tool else None
            if tool is None or raw is None or tool.access != "read" or tool.implementation != "declarative":
                continue
            name = f"{tool.name}_archive"
            if ("Tool", name) in ctx.raw or name in ctx.taken:
                continue
            ctx.taken.add(name)
            fake = {"kind": "Tool", "name": name, "domain": tool.domain,
                    "description": f"{tool.description or _humanize(tool.name)} From the archive of the retired "
                                   "system: records there are out of date.".strip(),
                    "access": "read"}
            if raw.data.get("params"):
                fake["params"] = copy.deepcopy(raw.data["params"])
            fake["returns"] = '"archived: no current data"'
            note = f"distractor tool {name}, a look-alike of {tool.name}, must not be used"
            new = _new_workflow(ctx, source, "distractor", wf, note)
            forbid = {"forbid": name, "name": f"no_{name}"}
            return Growth("distractor", source, new["name"],
                          [fake, new, *_verifiers_for(ctx, source, new["name"], [forbid])], note)
    return None


def harder_persona(ctx: GrowthContext, source: str) -> Growth | None:
    """A persona who withholds ids, gives a wrong one first, and pushes where the workflow can refuse."""
    from aqwen_spec.tactics import TACTICS

    wf = ctx.workflow(source)
    current = wf.get("personas") or sorted(n for n, p in ctx.specs.personas.items()
                                          if not p.domains or wf.get("domain") in p.domains)
    if not current or ("Persona", current[0]) not in ctx.raw:
        return None
    base = copy.deepcopy(ctx.raw[("Persona", current[0])].data)
    tactics = list(base.get("tactics") or [])
    wanted = ["withholds_id_until_asked", "gives_wrong_id_first"]
    if _ends_request_anywhere(wf["tree"]):
        wanted += ["insists_after_refusal", "claims_prior_approval"]
    added = [t for t in wanted if t in TACTICS and t not in tactics]
    if not added:
        return None
    base["name"] = ctx.fresh(f"{base['name']}_hard{ctx.round}")
    base["tactics"] = tactics + added
    base["description"] = f"{base.get('description', '')} Harder: {', '.join(added)}.".strip()
    wf["personas"] = [base["name"]]
    note = f"played by {base['name']} ({', '.join(added)})"
    new = _new_workflow(ctx, source, "harder_persona", wf, note)
    return Growth("harder_persona", source, new["name"], [base, new, *_verifiers_for(ctx, source, new["name"])], note)


OPERATORS: dict[str, Callable[[GrowthContext, str], Growth | None]] = {
    "error_branch": error_branch,
    "clarify": clarify,
    "confirm_write": confirm_write,
    "policy_branch": policy_branch,
    "chain": chain,
    "distractor": distractor,
    "harder_persona": harder_persona,
}
