"""Checking a Domain's ``constants`` and ``functions``: names, types, values, bodies, recursion."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from aqwen_spec.check.context import DocChecker
from aqwen_spec.check.scopes import state_scope
from aqwen_spec.documents.domain import Domain
from aqwen_spec.expr import ExprSyntaxError, parse_expr, parse_program
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.checker import Problem, Scope, check_program, check_stored
from aqwen_spec.expr.functions import FUNCTIONS
from aqwen_spec.expr.library import FunctionDef, Library, calls_in
from aqwen_spec.expr.places import always_fails
from aqwen_spec.expr.sampling import SAMPLING_FUNCTIONS
from aqwen_spec.source import YPath
from aqwen_spec.types import ANY, RecordT, Type
from aqwen_spec.values import check_value


def check_library(checker: DocChecker, doc: Domain, named: dict[str, Type], state: RecordT,
                  base_dir: Path) -> Library:
    """The domain's library: constants first (their values checked against their types), then the functions, whose
    bodies are checked callees first so that a return type left out is inferred before it is needed."""
    library = Library()
    _constants(checker, doc, named, state, base_dir, library)
    _functions(checker, doc, named, state, library)
    library.freeze()
    return library


def _clash(name: str, state: RecordT, library: Library, *, functions: bool = True) -> str | None:
    """What a new name would collide with: a state field, ``state``, a constant (or a function)."""
    if name == "state":
        return "the whole state ('state')"
    if name in state.fields:
        return f"the state field '{name}'"
    if name in library.constants:
        return f"the constant '{name}'"
    if functions and name in library.functions:
        return f"the function '{name}'"
    return None


def _constants(checker: DocChecker, doc: Domain, named: dict[str, Type], state: RecordT, base_dir: Path,
               library: Library) -> None:
    from aqwen_spec.check.domain import _apply_defaults, _read_data_file, type_from_yaml

    for name, spec in doc.constants.items():
        cpath: YPath = ("constants", name)
        clash = _clash(name, state, library)
        if clash is not None:
            checker.report("AQ111", f"constant '{name}' would hide {clash}", cpath, "rename the constant",
                           key=True)
            continue
        ctype = type_from_yaml(spec.type, named, checker, (*cpath, "type"))
        if ctype is None:
            continue
        given = "value" in spec.model_fields_set
        if given == (spec.file is not None):
            checker.report("AQ104", f"constant '{name}' needs either a 'value' or a 'file'", cpath,
                           "write {type: T, value: ...} or {type: T, file: data/NAME.csv, key: COLUMN}", key=True)
            continue
        if spec.file is not None:
            holder = RecordT("Constants", {name: ctype})
            loaded = _read_data_file(checker, base_dir / spec.file, name, spec.key, holder, (*cpath, "file"))
            if loaded is None:
                continue
            value = loaded[name]
            problems = check_value(value, ctype)
            for p in problems[:5]:
                where = ".".join(str(x) for x in (name, *p.path))
                checker.report("AQ203", f"{spec.file}: {where}: {p.message}", (*cpath, "file"))
            if problems:
                continue
        else:
            value = spec.value
            problems = check_value(value, ctype)
            for p in problems[:5]:
                at = (*cpath, "value", *p.path)
                checker.report("AQ203", p.message, at, checker.loaded.yaml.bool_hint(at))
            if problems:
                continue
        library.constants[name] = _apply_defaults(value, ctype)
        library.constant_types[name] = ctype


def _functions(checker: DocChecker, doc: Domain, named: dict[str, Type], state: RecordT, library: Library) -> None:
    from aqwen_spec.check.domain import type_from_yaml

    for name, spec in doc.functions.items():
        fpath: YPath = ("functions", name)
        clash = f"the builtin function '{name}'" if name in FUNCTIONS or name in SAMPLING_FUNCTIONS else \
            _clash(name, state, library)
        if clash is not None:
            checker.report("AQ111", f"function '{name}' would hide {clash}", fpath, "rename the function",
                           key=True)
            continue
        params: dict[str, Type] = {}
        for pname, ptext in spec.params.items():
            ppath = (*fpath, "params", pname)
            pclash = _clash(pname, state, library, functions=False)
            if pclash is not None:
                checker.report("AQ111", f"parameter '{pname}' of {name}() would hide {pclash}", ppath,
                               "rename the parameter", key=True)
            params[pname] = type_from_yaml(ptext, named, checker, ppath) or ANY
        returns = type_from_yaml(spec.returns, named, checker, (*fpath, "returns")) if spec.returns is not None \
            else None
        body = _parse_body(checker, spec.body, (*fpath, "body"))
        if body is None:
            continue
        declared = spec.returns is not None
        if isinstance(body, A.Program) and not declared:
            checker.report("AQ340", f"{name}() has a statement body, so its return type cannot be inferred", fpath,
                           "declare it: returns: TYPE (for example returns: int)", key=True)
            returns, declared = ANY, True
        library.functions[name] = FunctionDef(name, params, body, returns or ANY, declared, checker.pos(fpath))
    _check_bodies(checker, state, library, named)


_RETURN = re.compile(r"(^|[\s;{}])return\b")


def _parse_body(checker: DocChecker, text: Any, ypath: YPath) -> A.Expr | A.Program | None:
    """An expression, or (when it is none and has a ``return`` statement) statements; syntax errors reported."""
    if isinstance(text, str) and _RETURN.search(text):
        try:
            return parse_expr(text)  # 'return' inside a string: still an expression
        except ExprSyntaxError:
            pass
    else:
        return checker.parse_expr(text, ypath)
    try:
        return parse_program(text)
    except ExprSyntaxError as exc:
        checker.report("AQ301", exc.message, ypath, exc.hint, rel=exc.pos)
        return None


def statement_body_problems(f: FunctionDef, scope: Scope) -> list[Problem]:
    """The problems of a function's statement body in ``scope`` (its parameters, the state, the constants): it is
    pure (every outer name is read-only), each ``return`` fits the declared type, and no path ends without one."""
    assert isinstance(f.body, A.Program)
    for outer in scope.names():
        scope.mark_readonly(outer)
    scope.returns = f.returns
    problems = check_program(f.body, scope)
    if not always_fails(f.body.body):
        last = f.body.body[-1].pos if f.body.body else f.body.pos
        problems.append(Problem("AQ344", f"{f.name}() can reach the end of its body without a 'return'", last,
                                "end every path with 'return VALUE' (an 'if' needs an 'else' that returns too)"))
    return problems


def _check_statements(checker: DocChecker, f: FunctionDef, scope: Scope, ypath: YPath) -> None:
    for p in statement_body_problems(f, scope):
        checker.report(p.code, p.message, ypath, p.hint, rel=p.pos, warning=p.warning)


def _check_bodies(checker: DocChecker, state: RecordT, library: Library, named: dict[str, Type]) -> None:
    """Check each body once its callees' return types are known; a function that calls itself (directly or
    through others) must declare its return type (AQ340)."""
    functions = library.functions
    graph = {n: calls_in(f.body) & set(functions) for n, f in functions.items()}

    def reaches(start: str, goal: str) -> bool:
        seen: set[str] = set()
        stack = list(graph[start])
        while stack:
            n = stack.pop()
            if n == goal:
                return True
            if n not in seen:
                seen.add(n)
                stack.extend(graph[n])
        return False

    for name, f in functions.items():
        if not f.declared and reaches(name, name):
            checker.report("AQ340", f"{name}() calls itself (directly or through other functions), so its return "
                           "type cannot be inferred", ("functions", name),
                           "declare it: returns: TYPE (for example returns: int)", key=True)
            f.declared = True  # its value is 'any' from here on: no second report at each call
    done: set[str] = set()

    def check(name: str) -> None:
        if name in done:
            return
        done.add(name)
        f = functions[name]
        for callee in sorted(graph[name]):
            if not functions[callee].declared:
                check(callee)
        scope = state_scope(state, dict(f.params), strict=True, library=library)
        scope.types = named  # for locals declared with a type (let node: Node? = ...)
        ypath = ("functions", name, "body")
        if isinstance(f.body, A.Program):
            _check_statements(checker, f, scope, ypath)
            return
        before = len(checker.diagnostics.errors)
        t = checker.check_expr(f.body, ypath, scope, None, f"the value of {name}()")
        if not f.declared:
            f.returns = t
        elif len(checker.diagnostics.errors) == before:  # the value must fit, as a stored value would
            for p in check_stored(f.body, scope, f.returns, f"the value of {name}()"):
                checker.report(p.code, p.message, ypath, p.hint, rel=p.pos)

    for name in functions:
        check(name)
