"""Reporting helpers shared by the per-kind checks: problems inside strings land at their file position."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from aqwen_spec.diagnostics import Diagnostic, Diagnostics, Pos, Severity
from aqwen_spec.loader import LoadedDocument
from aqwen_spec.source import YPath
from aqwen_spec.types import ANY, BOOL, OptionalT, Type, is_assignable


@dataclass
class DocChecker:
    """Checks inside one document; every problem is reported at a position in its file."""

    loaded: LoadedDocument
    diagnostics: Diagnostics
    clock: bool = False
    """Whether the document's expressions run with a clock (``today()``, ``now()``): set by the kind's check."""

    @property
    def path(self) -> str:
        return self.loaded.path

    def pos(self, ypath: YPath) -> Pos:
        return self.loaded.yaml.value_pos(ypath)

    def report(
        self,
        code: str,
        message: str,
        ypath: YPath,
        hint: str | None = None,
        *,
        key: bool = False,
        warning: bool = False,
        rel: Pos | None = None,
        at: Pos | None = None,
    ) -> None:
        ydoc = self.loaded.yaml
        if at is not None:  # a position already in the file (e.g. a word found in a folded string)
            pos = at
        elif rel is not None:
            pos = ydoc.text_pos(ypath, rel)
        else:
            pos = ydoc.key_pos(ypath) if key else ydoc.value_pos(ypath)
        severity = Severity.WARNING if warning else Severity.ERROR
        self.diagnostics.add(Diagnostic(code, message, self.path, pos, severity, hint))

    def parse_expr(self, text: Any, ypath: YPath) -> Any:
        """Parse an expression string; report a syntax error and return None on failure."""
        from aqwen_spec.expr import ExprSyntaxError, parse_expr

        if isinstance(text, bool):
            text = "true" if text else "false"
        elif isinstance(text, (int, float)):
            text = repr(text)
        elif text is None:
            text = "null"
        try:
            return parse_expr(text)
        except ExprSyntaxError as exc:
            self.report("AQ301", exc.message, ypath, exc.hint, rel=exc.pos)
            return None

    def check_expr(
        self, expr: Any, ypath: YPath, scope: Any, expect: Type | None = None, what: str = "this expression"
    ) -> Type:
        """Type-check an expression; report problems at their positions; return its type (ANY when unknown)."""
        from aqwen_spec.expr import ast as A
        from aqwen_spec.expr import check_expr
        from aqwen_spec.expr.checker import check_stored

        if expr is None:
            return ANY
        if self.clock and scope is not None:
            scope.clock = True
        typ, problems = check_expr(expr, scope)
        for p in problems:
            hint = self._text_hint(expr, ypath, p.hint) if p.code == "AQ302" and p.pos == expr.pos else p.hint
            self.report(p.code, p.message, ypath, hint, rel=p.pos, warning=p.warning)
        if any(not p.warning for p in problems):
            return ANY
        literal = (A.RecordLit, A.ListLit, A.Cond, A.Comp, A.MapComp)
        if expect is not None and isinstance(expr, literal) and expect != BOOL:
            for p in check_stored(expr, scope, expect, what):  # a literal's fields, each against the type's
                self.report(p.code, p.message, ypath, p.hint, rel=p.pos)
            return typ
        if expect is not None and not is_assignable(typ, expect) and not (expect == BOOL and _null_bool(typ)):
            if expect == BOOL:
                msg = f"{what} should be true or false, but it is {typ.render()}"
            else:
                msg = f"{what} should be {expect.render()}, but it is {typ.render()}"
            self.report("AQ304", msg, ypath, rel=getattr(expr, "pos", None))
        return typ

    def _text_hint(self, expr: Any, ypath: YPath, hint: str | None) -> str | None:
        """The hint for an unknown name that is the whole value: text was probably meant, so say how to write it."""
        from aqwen_spec.expr import ast as A

        info = self.loaded.yaml.scalars.get(ypath)
        if not isinstance(expr, A.Name) or info is None or expr.pos != Pos(1, 1):
            return hint
        how = f"""for the text '{expr.id}', quote it inside the YAML value: '"{expr.id}"'"""
        if info.style in ("'", '"'):  # quoted in YAML, and still a name: YAML took the quotes
            return how + " (YAML takes the outer quotes)"
        return f"{hint} F{how[1:]}" if hint else how

    def expr(self, text: Any, ypath: YPath, scope: Any, expect: Type | None = None, what: str = "it") -> Any:
        """Parse and check in one go; returns the parsed expression (or None)."""
        expr = self.parse_expr(text, ypath)
        if expr is not None:
            self.check_expr(expr, ypath, scope, expect, what)
        return expr

    def program(self, source: str | list[str], ypath: YPath, scope: Any) -> Any:
        """Parse and check an effects program written as one string or a list of statement strings."""
        from aqwen_spec.expr import ExprSyntaxError, check_program, parse_program

        if self.clock and scope is not None:
            scope.clock = True
        if isinstance(source, list):
            text = "\n".join(source)
            starts = []  # line in the joined text where item i begins
            line = 1
            for item in source:
                starts.append(line)
                line += item.count("\n") + 1
        else:
            text, starts = source, []

        def where(rel: Pos) -> tuple[YPath, Pos]:
            if not starts:
                return ypath, rel
            i = max(k for k, s in enumerate(starts) if s <= rel.line)
            return (*ypath, i), Pos(rel.line - starts[i] + 1, rel.col)

        try:
            program = parse_program(text)
        except ExprSyntaxError as exc:
            at, rel = where(exc.pos)
            self.report("AQ301", exc.message, at, exc.hint, rel=rel)
            return None
        for p in check_program(program, scope):
            at, rel = where(p.pos)
            self.report(p.code, p.message, at, p.hint, rel=rel, warning=p.warning)
        return program

    def text_locator(self, source: str | list[str], ypath: YPath) -> Callable[[Pos], Pos]:
        """Maps a position in an expression or program text (a list of statements joined by newlines) to the file."""
        ydoc = self.loaded.yaml
        starts: list[int] = []
        if isinstance(source, list):
            line = 1
            for item in source:
                starts.append(line)
                line += item.count("\n") + 1

        def locate(rel: Pos) -> Pos:
            if not starts:
                return ydoc.text_pos(ypath, rel)
            i = max(k for k, s in enumerate(starts) if s <= rel.line)
            return ydoc.text_pos((*ypath, i), Pos(rel.line - starts[i] + 1, rel.col))

        return locate

    def template(self, text: str, ypath: YPath, known: set[str], types: dict[str, Type] | None = None) -> None:
        from aqwen_spec.templates import check_template

        for p in check_template(text, known, types):
            self.report(p.code, p.message, ypath, p.hint, rel=p.pos)


def _null_bool(t: Type) -> bool:
    """A bool that may be null reads as false in a condition (``x and y`` with ``x`` a ``bool?``)."""
    return isinstance(t, OptionalT) and t.inner == BOOL
