"""Python source from the checked IR: expressions and effect statements as the body of one generated function.

The source is made from IR nodes only, never from spec text: names become generated identifiers, every value a spec
wrote (a literal, an error message, a position) enters as a named constant of the function's namespace (a ``str``,
``int``, ``bool`` or ``None`` literal may be written as its ``repr``). The generated code does what the closures of
:mod:`aqwen_spec.expr.evaluator` do, node for node: same order of evaluation, same checks and errors (through the
helpers of :mod:`aqwen_spec.expr.coderuntime`), the same step budget and the same undo entries. A node without
generated code runs its closure from :func:`~aqwen_spec.expr.evaluator.compile_expr` on an env made where it runs
(the locals it names, the state, the library, the budget), so every expression has code from the start.

Names the generated function uses: ``S`` the state, ``B`` the step budget, ``U`` the undo log, ``RO`` the constants'
read-only ids, ``LIB`` the library; spec names become ``v_<name>`` (the tool's names) and ``c<n>_<name>`` (a
comprehension's).
"""

from __future__ import annotations

import ast
import builtins
import math
import operator
import re
from typing import Any

from aqwen_spec.expr import ast as A
from aqwen_spec.expr import coderuntime as R
from aqwen_spec.expr.episode import CLOCK_FUNCTIONS, DRAW_FUNCTIONS
from aqwen_spec.expr.evaluator import compile_expr
from aqwen_spec.expr.formatting import _bounded
from aqwen_spec.expr.functions import FUNCTIONS, MAX_SIZE
from aqwen_spec.expr.library import Library, calls_in
from aqwen_spec.expr.sampling import SAMPLING_FUNCTIONS

_ORDER = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}
_SAFE = (str, int, bool, type(None))
_SIMPLE = re.compile(r"[A-Za-z_]\w*|-?\d+|'[^'\\]*'")


class Unsupported(Exception):
    """A node this generator leaves to the closures where no env can stand in (inside a comprehension's scope), or
    a program whose locals it cannot follow; the caller falls back to a larger unit."""


class Emitter:
    """Generates the source of one function: :meth:`expr` gives a Python expression, :meth:`block` statements."""

    def __init__(self, library: Library | None = None) -> None:
        self.library = library
        """The domain's library the code is made for (its constants are read where they are used)."""
        self.ns: dict[str, Any] = {"R": R, "NUMBERS": R.NUMBERS, "ABSENT": R.ABSENT, "SUM": FUNCTIONS["sum"].impl}
        self._ids: dict[tuple[type, Any], str] = {}
        self.uses_budget = False
        self.scope: dict[str, str] = {}
        """Spec name -> Python identifier, for the names bound where the code runs."""
        self.types: dict[str, type] = {}
        """Python identifier -> the type its value surely has (``str``, ``int``, ``bool``) where the code runs: a
        tool's checked parameters. Checks of that type are then left out (the same value passes them anyway)."""
        self.keys_of: dict[str, str] = {}
        """A comprehension's name over the keys of a state entry looked up once (see :meth:`hoisted`) -> that entry's
        local: indexing it with the name needs no ``in`` test, as nothing writes the state while the code runs."""
        self.hashable: set[str] = set()
        """Python identifiers whose value is surely hashable (a comprehension's name for a map's keys): a map lookup
        with it needs no type test first."""
        self.maybe: set[str] = set()
        """Names a program binds somewhere but not surely before the code being generated."""
        self.hoist: dict[str, list[str] | None] | None = None
        """While an expression with :meth:`hoisted` is made: the names whose state entry is looked up once, before
        it (name -> its local and what the lookup gives when the state has no such entry, once used)."""
        self.frames: list[tuple[bool, Any]] = []
        """The scopes inside an expression, innermost last: ``(False, {name: ident})`` for a comprehension's names,
        ``(True, ident)`` for an element's scope (``it``, then the element's fields, then the names around)."""
        self._strict = 0  # > 0 inside a comprehension's or an element's scope: no fallback there
        self._iterable = 0  # > 0 in a comprehension's source: Python allows no ``:=`` there
        self._n = 0
        self.functions: dict[str, str | None] = {}
        """Domain function -> the generated function that runs it (None: its closure does)."""
        self._in_function = False
        self.episode_local = False
        """Whether a draw at the step's own level takes the episode from the step's local ``E`` (see
        :mod:`aqwen_spec.semantics.toolcode`) rather than from the installed one."""
        self.definitions: list[str] = []
        self.definitions_names: set[str] = set()
        """The names of the functions made for comprehensions (see :meth:`_loop`)."""
        self._head: tuple[str, str, str | None] = ("", "", None)
        self._inline: tuple[str, str, tuple[str, ...]] = ("", "", ())
        """How the last comprehension's source is taken: the helper (``loop_items``, ``keys``, ...), the source of its
        argument, its positions (see :meth:`_loop`)."""
        self._loop_call: tuple[str, str, str] = ("", "", "")  # the last function made by _loop, its call's parts
        self._arith: tuple[str, str, str] = ("", "", "")  # the last + - * made: its test, its result, its helper
        """The source of those functions, defined before the code that calls them."""

    # ------------------------------------------------------------------------------------------- constants

    def const(self, value: Any) -> str:
        """The source naming ``value``: its repr for plain literals, else a constant of the namespace."""
        if type(value) in _SAFE:
            return repr(value)
        if type(value) is float and math.isfinite(value):
            return repr(value)
        key = (type(value), id(value))
        ident = self._ids.get(key)
        if ident is None:
            ident = self._ids[key] = f"K{len(self._ids)}"
            self.ns[ident] = value
        return ident

    def temp(self) -> str:
        self._n += 1
        return f"t{self._n}"

    def hold(self, src: str) -> tuple[str, str] | None:
        """``(first use, later uses)`` of a value read more than once: a plain name as it is, anything else kept in a
        temporary (None where none can be: in a comprehension's source)."""
        if _SIMPLE.fullmatch(src):
            return src, src
        if self._iterable:
            return None
        t = self.temp()
        return f"({t} := {src})", t

    def _source(self, n: A.Expr) -> str:
        """A comprehension's source, computed in the enclosing scope."""
        self._iterable += 1
        try:
            return self.expr(n)
        finally:
            self._iterable -= 1

    # ----------------------------------------------------------------------------------------- expressions

    def expr(self, n: A.Expr) -> str:
        method = getattr(self, "_e_" + type(n).__name__, None)
        if method is not None:
            try:
                return str(method(n))
            except Unsupported:
                if self._strict:
                    raise
        return self.fallback(n)

    def hoisted(self, n: A.Expr, pad: str) -> tuple[list[str], str]:
        """``n`` as :meth:`expr` makes it, and the statements to run just before it: each name it reads more than
        once (or in a comprehension) whose value may come from the state, looked up there once
        (``S.get(name, ...)``), where nothing ``n`` calls can write the state in between (no domain function);
        where the value is indexed or tested with ``in``, whether it is a map, tested once too."""
        builtins = {*FUNCTIONS, *SAMPLING_FUNCTIONS, *DRAW_FUNCTIONS, *CLOCK_FUNCTIONS}
        if self.hoist is not None or self._in_function or self._strict or calls_in(n) - builtins:
            return [], self.expr(n)
        reads = _reads(n)
        self.hoist = {name: None for name, k in reads.items()
                      if k > 1 and name not in self.scope and name not in self.maybe and name != "state"}
        try:
            src = self.expr(n)
        finally:
            taken, self.hoist = self.hoist, None
        lines = []
        for name, h in taken.items():
            if h is not None:
                lines.append(f"{pad}{h[0]} = S.get({name!r}, {h[1]})")
                if h[2]:
                    lines.append(f"{pad}{h[2]} = type({h[0]}) is dict")
        return lines, src

    def _hoisted_entry(self, name: str) -> list[str] | None:
        """``[local, what S.get gives without an entry, the local telling whether it is a map ('' until asked)]`` of
        a name :meth:`hoisted` looks up once (None: it does not)."""
        if self.hoist is None or name not in self.hoist:
            return None
        held = self.hoist[name]
        if held is None:  # a constant: the state's entry of that name, else the constant (as the env reads it, and
            # as R.elem_name gives it in an element's scope)
            constants = self.library.constants if self.library is not None else {}
            default = self.const(constants[name]) if name in constants else "ABSENT"
            held = self.hoist[name] = [self.temp(), default, ""]
        return held

    def _hoisted_read(self, name: str, elems: list[str], pos: Any) -> str | None:
        """The read of the state's entry ``name`` where :meth:`hoisted` looks it up once (None: it does not)."""
        held = self._hoisted_entry(name)
        if held is None:
            return None
        h, default, _ = held
        if default != "ABSENT":
            return h
        key = repr(name)
        if elems:
            scopes = "".join(e + ", " for e in elems)
            return f"({h} if {h} is not ABSENT else R.elem_name(S, LIB, {key}, {self.const(pos)}, ({scopes})))"
        return f"({h} if {h} is not ABSENT else R.name(S, LIB, {key}, {self.const(pos)}))"

    def _hoisted_map(self, n: A.Expr) -> tuple[str, str, str] | None:
        """``(local, is-a-map local, the read)`` where ``n`` is a bare name outside every comprehension's and
        element's names whose entry :meth:`hoisted` looks up once (None: anything else)."""
        if not isinstance(n, A.Name) or n.id in self.scope or n.id in self.maybe or n.id == "state":
            return None
        if any(is_elem or n.id in data for is_elem, data in self.frames):
            return None
        held = self._hoisted_entry(n.id)
        if held is None:
            return None
        if not held[2]:
            held[2] = self.temp()
        return held[0], held[2], self.expr(n)

    def fallback(self, n: A.Expr) -> str:
        """``n``'s closure, on an env made where it runs: the locals it names, the state, the library, the budget."""
        if self._strict:
            raise Unsupported(type(n).__name__)
        names = _names(n)
        if names & self.maybe:
            raise Unsupported(f"{sorted(names & self.maybe)} may be unbound here")
        self.uses_budget = True
        local = "".join(f"{name!r}: {self.scope[name]}, " for name in sorted(names) if name in self.scope)
        return f"{self.const(compile_expr(n))}(R.env(S, LIB, B, {{{local}}}))"

    def _e_Lit(self, n: A.Lit) -> str:
        return self.const(n.value)

    def _e_Name(self, n: A.Name) -> str:
        key = repr(n.id)
        elems: list[str] = []  # the element scopes passed on the way out, innermost first
        found = None
        for is_elem, data in reversed(self.frames):
            if not is_elem:
                found = data.get(n.id)
            elif n.id == "it":
                found = data
            else:
                elems.append(data)
            if found is not None:
                break
        if found is None:
            found = self._outer_name(n, key, elems)
        for e in reversed(elems):  # the innermost element's field is tried first
            found = f"({e}[{key}] if type({e}) is dict and {key} in {e} else {found})"
        return found

    def _outer_name(self, n: A.Name, key: str, elems: list[str]) -> str:
        """A name outside every comprehension and element: a local of the tool, the state, a field, a constant."""
        if n.id in self.maybe:
            raise Unsupported(f"'{n.id}' may be unbound here")
        local = self.scope.get(n.id)
        if local is not None:
            return local
        if n.id == "state":  # the state itself, before any field of that name
            return "S"
        hoisted = self._hoisted_read(n.id, elems, n.pos)
        if hoisted is not None:
            return hoisted
        constants = self.library.constants if self.library is not None else {}
        if n.id in constants and not elems:  # after the state, as the env reads it; constants never change
            return f"(S[{key}] if {key} in S else {self.const(constants[n.id])})"
        if elems:  # a name found nowhere reads as null in the scope of an element that is a record
            scopes = "".join(e + ", " for e in elems)
            return f"(S[{key}] if {key} in S else R.elem_name(S, LIB, {key}, {self.const(n.pos)}, ({scopes})))"
        return f"(S[{key}] if {key} in S else R.name(S, LIB, {key}, {self.const(n.pos)}))"

    def _e_Field(self, n: A.Field) -> str:
        obj, pos = self.expr(n.obj), self.const(n.name_pos)
        held = self.hold(obj)
        if held is None:
            return f"R.field({obj}, {n.name!r}, {pos})"
        return f"({held[1]}.get({n.name!r}) if type({held[0]}) is dict else R.field({held[1]}, {n.name!r}, {pos}))"

    def _e_Index(self, n: A.Index) -> str:
        obj, key, pos = self.expr(n.obj), self.expr(n.index), self.const(n.pos)
        at = n.index.value if isinstance(n.index, A.Lit) and type(n.index.value) is int else None
        if at is not None and (held := self.hold(obj)) is not None:  # a list's element at a constant index
            o, k = held[1], repr(at)
            bounds = f"{k} < len({o})" if at >= 0 else f"{-at} <= len({o})"
            return f"({o}[{k}] if type({held[0]}) is list and {bounds} else R.index({o}, {k}, {pos}))"
        mapped = self._hoisted_map(n.obj) if _SIMPLE.fullmatch(key) else None
        if mapped is not None:  # a state entry looked up once, known then whether it is a map
            h, is_map, read = mapped
            if self.keys_of.get(key) == h:  # a name over that map's keys: in it (the map is as it was)
                return f"({h}[{key}] if {is_map} else R.index({read}, {key}, {pos}))"
            is_str = "" if self._hashable(key) else f" and type({key}) is str"
            return f"({h}[{key}] if {is_map}{is_str} and {key} in {h} else R.index({read}, {key}, {pos}))"
        held = self.hold(obj) if _SIMPLE.fullmatch(key) else None  # the key read twice: only a plain one
        if held is None:
            return f"R.index({obj}, {key}, {pos})"
        o = held[1]
        is_str = "" if self._hashable(key) else f" and type({key}) is str"
        return (f"({o}[{key}] if type({held[0]}) is dict{is_str} and {key} in {o} "
                f"else R.index({o}, {key}, {pos}))")

    def _hashable(self, src: str) -> bool:
        """Whether the value of ``src`` (a plain name) is surely hashable: ``key in m`` and ``m[key]`` of a map then
        do what the closures' ``try`` does, without a type test."""
        return src in self.hashable or self.types.get(src) in (str, int, bool)

    def _e_Unary(self, n: A.Unary) -> str:
        return f"R.negate({self.expr(n.operand)}, {self.const(n.pos)})"

    def _e_Binary(self, n: A.Binary) -> str:
        op, left, right, pos = self.const(R.ARITH[n.op]), self.expr(n.left), self.expr(n.right), self.const(n.pos)
        if n.op not in ("+", "-", "*") or self._iterable:
            return f"{op}({left}, {right}, {pos})"
        # two numbers: Python's operator, where the result is a float or an int in range (else the checked helper);
        # both operands are computed (``&``) before either is tested, as the helper gets them
        a, b, c = self.temp(), self.temp(), self.temp()
        self._arith = (f"(type({a} := {left}) in NUMBERS) & (type({b} := {right}) in NUMBERS) and "
                       f"(type({c} := {a} {n.op} {b}) is float or {-R.MAX_INT} < {c} < {R.MAX_INT})", c,
                       f"{op}({a}, {b}, {pos})")
        return f"({c} if {self._arith[0]} else {self._arith[2]})"

    def _e_Compare(self, n: A.Compare) -> str:
        if n.op in ("==", "!="):
            return f"({self.expr(n.left)} {n.op} {self.expr(n.right)})"
        if n.op in ("in", "not in"):  # the container first, as the closure computes them
            right, left = self.expr(n.right), self.expr(n.left)
            mapped = self._hoisted_map(n.right) if _SIMPLE.fullmatch(left) else None
            held = self.hold(right) if _SIMPLE.fullmatch(left) and mapped is None else None
            if mapped is not None:  # a state entry looked up once, known then whether it is a map
                h, is_map, read = mapped
                is_str = "" if self._hashable(left) else f" and type({left}) is str"
                test = f"({left} in {h} if {is_map}{is_str} else R.contains({read}, {left}, {self.const(n.pos)}))"
            elif held is None:
                test = f"R.contains({right}, {left}, {self.const(n.pos)})"
            else:  # a str in a map, without a call
                c = held[1]
                is_str = "" if self._hashable(left) else f" and type({left}) is str"
                test = (f"({left} in {c} if type({held[0]}) is dict{is_str} "
                        f"else R.contains({c}, {left}, {self.const(n.pos)}))")
            return test if n.op == "in" else f"(not {test})"
        cmp, left, right, pos = self.const(_ORDER[n.op]), self.expr(n.left), self.expr(n.right), self.const(n.pos)
        if self._iterable:
            return f"R.order({cmp}, {n.op!r}, {left}, {right}, {pos})"
        if _num_lit(n.right) and _gives_int(n.left):  # len() gives an int (or raises)
            return f"({left} {n.op} {right})"
        if _num_lit(n.right) and (held := self.hold(left)) is not None:  # a number against a constant one
            return (f"({held[1]} {n.op} {right} if type({held[0]}) in NUMBERS "
                    f"else R.order({cmp}, {n.op!r}, {held[1]}, {right}, {pos}))")
        a, b = self.temp(), self.temp()  # two numbers compare with Python's operator
        return (f"({a} {n.op} {b} if (type({a} := {left}) in NUMBERS) & (type({b} := {right}) in NUMBERS) "
                f"else R.order({cmp}, {n.op!r}, {a}, {b}, {pos}))")

    def _e_BoolOp(self, n: A.BoolOp) -> str:
        if n.op not in ("and", "or"):
            raise Unsupported(n.op)
        return f"({self.expr(n.left)} {n.op} {self.expr(n.right)})"

    def _e_Not(self, n: A.Not) -> str:
        return f"(not {self.expr(n.operand)})"

    def _e_Cond(self, n: A.Cond) -> str:
        return f"({self.expr(n.then)} if {self.expr(n.cond)} else {self.expr(n.orelse)})"

    def _e_ListLit(self, n: A.ListLit) -> str:
        return "[" + "".join(self.expr(x) + ", " for x in n.items) + "]"

    def _e_RecordLit(self, n: A.RecordLit) -> str:
        return "{" + "".join(f"{self.const(k)}: {self.expr(v)}, " for k, v in n.entries) + "}"

    def _e_FString(self, n: A.FString) -> str:
        parts = [self.const(p) if isinstance(p, str) else self.expr(p) if _gives_str(p)
                 else self._to_str(self.expr(p), p) for p in n.parts]
        joined = f"''.join(({''.join(p + ', ' for p in parts)}))"
        held = self.hold(joined)
        if held is None:
            return f"R.fstring({joined}, {self.const(n.pos)})"
        return f"({held[1]} if len({held[0]}) <= {MAX_SIZE} else R.fstring({held[1]}, {self.const(n.pos)}))"

    def _to_str(self, src: str, n: A.Expr | None = None) -> str:
        """``to_str``: a str as it is, an int or a float as its ``repr`` (a bool, null or container: the helper)."""
        if _gives_int(n):
            return f"repr({src})"
        known = self.types.get(src)
        if known is str:
            return src
        if known is int:
            return f"repr({src})"
        held = self.hold(src)
        if held is None:
            return f"R.to_str({src})"
        t = held[1]
        return (f"({t} if type({held[0]}) is str else repr({t}) if type({t}) is int or type({t}) is float "
                f"else R.to_str({t}))")

    def _e_Formatted(self, n: A.Formatted) -> str:
        value, spec, pos = self.expr(n.value), self.const(n.spec), self.const(n.pos)
        held = self.hold(value)
        if held is None or not _float_spec(n.spec):
            return f"R.formatted({value}, {spec}, {pos})"
        return f"(format({held[1]}, {spec}) if type({held[0]}) is float else R.formatted({held[1]}, {spec}, {pos}))"

    def _e_Call(self, n: A.Call) -> str:
        builtin = FUNCTIONS.get(n.func) or SAMPLING_FUNCTIONS.get(n.func) or DRAW_FUNCTIONS.get(n.func) \
            or CLOCK_FUNCTIONS.get(n.func)
        if builtin is None:  # a domain function
            return self._user_call(n)
        own_fn = builtin is FUNCTIONS.get(n.func)
        if builtin is DRAW_FUNCTIONS.get(n.func) and R.DRAWS.get(n.func) == len(n.args) and not n.kwargs:
            args = "".join(self.expr(a) + ", " for a in n.args)
            if self.episode_local and not self._in_function and not self._strict and not self.frames:
                return f"R.{n.func}_in(E, {args}{self.const(n.pos)})"  # the step's episode, passed in
            return f"R.{n.func}({args}{self.const(n.pos)})"
        if own_fn and n.func == "sum" and len(n.args) == 1 and not n.kwargs:
            self.uses_budget = True
            if isinstance(n.args[0], A.Comp):  # the sum made in the comprehension's own loop
                self._comp(n.args[0], "[", "]", then="sum")
                ident, params, src = self._loop_call
                return f"{ident}({params}{src}, B, {self.const(n.pos)})"
            return f"R.sum_of(B, {self.expr(n.args[0])}, {self.const(n.pos)})"
        if own_fn and n.func == "join" and len(n.args) == 2 and not n.kwargs and isinstance(n.args[0], A.Comp) and \
                isinstance(n.args[1], A.Lit) and type(n.args[1].value) is str:  # joined in the comprehension's loop
            self.uses_budget = True
            self._comp(n.args[0], "[", "]", then="join")
            ident, params, src = self._loop_call
            return f"{ident}({params}{src}, B, {self.const(n.pos)}, {self.const(n.args[1].value)})"
        by = len(n.args) == 1 and len(n.kwargs) == 1 and n.kwargs[0][0] == "by"
        if own_fn and n.func == "group_by" and ((len(n.args) == 2 and not n.kwargs) or by):
            self.uses_budget = True
            fn = n.args[1] if len(n.args) == 2 else n.kwargs[0][1]
            field = fn.value if isinstance(fn, A.Lit) and isinstance(fn.value, str) else \
                fn.id if isinstance(fn, A.Name) else None
            if field is not None and field != "it":  # an element's field (where it is a record with it)
                xs = n.args[0]
                if isinstance(xs, A.Call) and xs.func == "values" and len(xs.args) == 1 and not xs.kwargs and \
                        FUNCTIONS.get("values") is not None:  # group_by(values(m), ...): the values taken there
                    return (f"R.group_by_field(B, {self.expr(xs.args[0])}, {field!r}, {self._elem_fn(fn)}, "
                            f"{len(n.args)}, {self.const(n.pos)}, {self.const(xs.pos)})")
                return (f"R.group_by_field(B, {self.expr(xs)}, {field!r}, {self._elem_fn(fn)}, "
                        f"{len(n.args)}, {self.const(n.pos)})")
            return (f"R.group_by(B, {self.expr(n.args[0])}, {self._elem_fn(fn)}, {len(n.args)}, "
                    f"{self.const(n.pos)})")
        lazy = n.func in ("any", "all")
        args = "".join(
            (self._elem_fn(a) if i in builtin.elem_args
             else self._comp(a, "(", ")") if lazy and isinstance(a, A.Comp) and a.lazy
             else self.expr(a)) + ", "
            for i, a in enumerate(n.args))
        kwargs = "".join(
            f"{k!r}: {self._elem_fn(v) if k in builtin.elem_kwargs else self.expr(v)}, " for k, v in n.kwargs)
        own = R.INTRINSICS.get(n.func)
        if own is not None and len(n.args) == own[1] and not n.kwargs and builtin is FUNCTIONS.get(n.func):
            self.uses_budget = True
            return f"R.{n.func}(B, {args}{self.const(n.pos)})"
        if n.func == "len" and len(n.args) == 1 and not n.kwargs and builtin is FUNCTIONS.get("len"):
            mapped = self._hoisted_map(n.args[0])
            if mapped is not None:  # a state entry looked up once, known then whether it is a map
                h, is_map, read = mapped
                return (f"(len({h}) if {is_map} else R.call({self.const(builtin.impl)}, 'len', {self.const(n.pos)}, "
                        f"{read}))")
            held = self.hold(args[:-2])
            if held is not None:
                t = held[1]
                return (f"(len({t}) if type({held[0]}) is dict or type({t}) is list or type({t}) is str "
                        f"else R.call({self.const(builtin.impl)}, 'len', {self.const(n.pos)}, {t}))")
        self.uses_budget = self.uses_budget or bool(builtin.collection or kwargs)  # R.call charges nothing
        if not kwargs:
            call = "R.collect(B, " if builtin.collection else "R.call("
            return f"{call}{self.const(builtin.impl)}, {n.func!r}, {self.const(n.pos)}, {args})"
        return (f"R.builtin(B, {self.const(builtin.impl)}, {n.func!r}, {self.const(n.pos)}, "
                f"{bool(builtin.collection)}, [{args}], {{{kwargs}}})")

    def _user_call(self, n: A.Call) -> str:
        """A call of a domain function with its arguments in order: a generated function of its own (``fn_<n>``,
        made once per function, recursion included); any other call (keywords, a body it cannot follow), the
        closure's."""
        functions = self.library.functions if self.library is not None else {}
        f = functions.get(n.func)
        if f is None or n.kwargs or len(n.args) != len(f.params):
            raise Unsupported(n.func)  # its closure reports what is wrong, where it runs
        if n.func not in self.functions:
            self._function(n.func, f)
        ident = self.functions[n.func]
        if ident is None:
            raise Unsupported(n.func)
        self.uses_budget = True
        args = "".join(self.expr(a) + ", " for a in n.args)
        return f"R.user(B, S, {ident}, {n.func!r}, {self.const(n.pos)}, {args})"

    def _function(self, name: str, f: Any) -> None:
        """``def fn_<n>(B, S, <params>)``: the body in a scope of its parameters (then the state, the constants); a
        statement body's ``return`` is Python's, and its end gives ``R.NO_RETURN``. Where the body cannot be made,
        the function and any made while trying are forgotten (``None``: its calls run as closures)."""
        ident = f"fn_{len(self.definitions)}_{len(self.functions)}"
        if not all(p.isascii() and p.isidentifier() for p in f.params):
            self.functions[name] = None
            return
        before = (dict(self.functions), len(self.definitions))
        self.functions[name] = ident
        saved = (self.scope, self.types, self.maybe, self.frames, self._strict, self._iterable, self._in_function)
        self.scope = {p: f"v_{p}" for p in f.params}
        self.types = {}
        self.maybe, self.frames, self._strict, self._iterable, self._in_function = set(), [], 0, 0, True
        try:
            if isinstance(f.body, A.Program):
                lines = ["    U = []", "    RO = LIB.readonly if LIB is not None else ()"]
                lines += self.block(f.body.body, "    ")
                lines.append("    return R.NO_RETURN")
            else:
                lines = [f"    return {self.expr(f.body)}"]
        except Unsupported:
            self.functions = before[0]
            self.functions[name] = None
            del self.definitions[before[1]:]
            return
        finally:
            self.scope, self.types, self.maybe, self.frames, self._strict, self._iterable, self._in_function = saved
        params = "".join(f", v_{p}" for p in f.params)
        self.definitions.append(f"def {ident}(B, S{params}):\n" + "\n".join(lines) + "\n")

    def _elem_fn(self, expr: A.Expr) -> str:
        """An element-scoped argument: a function of one element (``by="price"`` names a field)."""
        if isinstance(expr, A.Lit) and isinstance(expr.value, str):
            expr = A.Name(expr.value, expr.pos)
        self._strict += 1
        var = f"e{self._strict}_{self.temp()}"
        self.frames.append((False, {expr.name: var}) if isinstance(expr, A.Each) else (True, var))
        try:
            body = self.expr(expr.body if isinstance(expr, A.Each) else expr)
        finally:
            self.frames.pop()
            self._strict -= 1
        return f"(lambda {var}: {body})"

    def _e_Slice(self, n: A.Slice) -> str:
        self.uses_budget = True
        pos = self.const(n.pos)
        bounds = ", ".join("None" if b is None else repr(b.value) if isinstance(b, A.Lit) and (
            type(b.value) is int or b.value is None) else f"R.bound({self.expr(b)}, {pos})"
                           for b in (n.start, n.stop, n.step))
        return f"R.slice(B, {self.expr(n.obj)}, {bounds}, {pos})"

    def _e_Comp(self, n: A.Comp) -> str:  # a lazy one outside any/all runs as a list, as its closure does
        return self._comp(n, "[", "]")

    def _comp(self, n: A.Comp, open_: str, close: str, then: str = "list") -> str:
        """A comprehension as a list (made by a function of its own, see :meth:`_loop`), or (``any``/``all``) a
        generator that stops where Python's does."""
        head, _ = self._comp_head(n.names, n.iter, n.pos, "loop_items")
        parts, inline = self._head, self._inline
        try:
            cond = self.expr(n.cond) if n.cond is not None else None
            self._arith = ("", "", "")
            elem = self.expr(n.elem)
        finally:
            self._comp_end()
        arith = self._arith if then == "sum" and isinstance(n.elem, A.Binary) and self._arith[1] and \
            elem == f"({self._arith[1]} if {self._arith[0]} else {self._arith[2]})" else None
        if open_ == "[":
            return self._loop(parts, cond, elem, then, inline, arith)
        return f"{open_}{elem} {head}{f' if {cond}' if cond is not None else ''}{close}"

    def _loop(self, head: tuple[str, str, str | None], cond: str | None, elem: str, then: str,
              inline: tuple[str, str, tuple[str, ...]], arith: tuple[str, str, str] | None = None) -> str:
        """A list comprehension as a call of a function made for it, its loop a ``for`` statement: the names the
        element computes once (``:=``) are that function's locals, not cells of the enclosing one as a
        comprehension's are. The names it reads from around it are its parameters, its source the last one.

        ``then``: what the function gives, ``list`` the list; ``sum`` (the ``sum`` of that list: the elements added
        as they come while all are ints and floats, then the list charged as :func:`R.sum_of` charges it);
        ``join`` (``join`` of that list with the parameter ``sep_``, as :func:`R.join` joins it). ``inline``: the
        helper that takes the source (``R.loop_items`` and the like), done by the function itself where the source is
        a list (or a map), the same charges and errors, the helper called for anything else."""
        target, _, unpack = head
        kind, src, at = inline
        body = [f"    for {target} in {'it_' if then == 'sum' else 'src_'}:"]
        if unpack is not None:
            body.append(f"        {unpack}")
        if cond is not None:
            body.append(f"        if not ({cond}):")
            body.append("            continue")
        fresh = kind not in ("loop_items", "where_items")  # the source a list made here: nothing else holds it
        counted = then == "sum" and (cond is not None or not fresh)
        if counted:
            body.append("        k_ += 1")
        if then == "sum":
            # added as the elements come while they are ints and floats; at the first that is not, the rest are
            # computed (for their errors) without a sum, and the list's charge and sum()'s error are as they were
            if arith is not None:  # an element of + - *: its fast path gives a number, added as is
                test, result, helper = arith
                body += [f"        if {test}:", f"            total += {result}", "            continue",
                         f"        v_ = {helper}"]
            else:
                body.append(f"        v_ = {elem}")
            body += ["        if type(v_) is float or type(v_) is int:", "            total += v_",
                     "            continue", "        numbers = False", "        break"]
            rest = [f"        for {target} in it_:"] + ([f"            {unpack}"] if unpack is not None else [])
            if cond is not None:
                rest += [f"            if not ({cond}):", "                continue"]
            rest += (["            k_ += 1"] if counted else []) + [f"            {elem}"]
            body += ["    if not numbers:", *rest]
        else:
            body.append(f"        out.append({elem})")  # a call Python specialises
        free = _free_names("\n".join(line[4:] for line in body),
                           {*self.ns, *self.definitions_names, "out", "src_", "total", "numbers", "v_", "n_", "k_",
                            "it_"})
        ident = f"lc{len(self.definitions)}_{self.temp()}"
        self.definitions_names.add(ident)
        params = "".join(f"{name}, " for name in free)
        if kind in ("loop_items", "where_items"):
            start = ["    if type(src_) is list:", "        B_.left -= len(src_)", "        if B_.left < 0:",
                     f"            raise R.EvalLimitError(R.LIMIT, {at[0]})", "    else:",
                     f"        src_ = R.{kind}(B_, src_, {at[0]})"]
        else:
            taken = {"keys": "list(src_)", "values": "list(src_.values())", "pairs": "list(src_.items())"}[kind]
            helper = "pairs" if kind == "pairs" else f"{kind}_loop"
            # both charges at once (the map's, then the loop's), the one that ran out named as the helper names it
            start = ["    if type(src_) is dict:", "        n_ = len(src_)", "        B_.left -= (n_ or 1) + n_",
                     "        if B_.left < 0:", "            if B_.left + n_ < 0:", "                B_.left += n_",
                     f"                raise R.EvalLimitError(R.LIMIT, {at[0]})",
                     f"            raise R.EvalLimitError(R.LIMIT, {at[1]})",
                     f"        src_ = {taken}", "    else:", f"        src_ = R.{helper}(B_, src_, {at[0]}, {at[1]})"]
        if then == "list":
            start += ["    out = []"]
            tail = ["    return out"]
        elif then == "sum":  # no list: its length counted, the first element that is no number kept (in v_)
            start += ["    it_ = iter(src_)", "    total = 0", "    numbers = True"]
            start += ["    k_ = 0"] if counted else []
            tail = [f"    B_.left -= {'k_' if counted else 'len(src_)'} or 1", "    if B_.left < 0:",
                    "        raise R.EvalLimitError(R.LIMIT, pos_)",
                    "    return total if numbers else R.call(SUM, 'sum', pos_, [v_])"]
        else:
            start += ["    out = []"]
            tail = ["    n = len(out)", "    B_.left -= n if n > 2 else 2", "    if B_.left < 0:",
                    "        raise R.EvalLimitError(R.LIMIT, pos_)", "    try:", "        text_ = sep_.join(out)",
                    "    except TypeError:", "        return R.joined(out, sep_)",
                    f"    return text_ if len(text_) <= {MAX_SIZE} else R.joined(out, sep_)"]
        extra = ", B_" if then == "list" else ", B_, pos_" + (", sep_" if then == "join" else "")
        self.definitions.append(f"def {ident}({params}src_{extra}):\n" + "\n".join(start + body + tail) + "\n")
        self._loop_call = (ident, params, src)
        return f"{ident}({params}{src}, B)"

    def _e_MapComp(self, n: A.MapComp) -> str:
        head, _ = self._comp_head(n.names, n.iter, n.pos, "loop_items")
        try:
            cond = f" if {self.expr(n.cond)}" if n.cond is not None else ""
            key = f"R.map_key({self.expr(n.key)}, {self.const(n.pos)})"
            value = self.expr(n.value)
        finally:
            self._comp_end()
        return f"{{{key}: {value} {head}{cond}}}"

    def _e_Where(self, n: A.Where) -> str:
        if isinstance(n.pred, A.Each):  # ``xs where name: pred``
            _, var = self._comp_head((n.pred.name,), n.source, n.pos, "where_items")
            parts, inline = self._head, self._inline
            try:
                pred = self.expr(n.pred.body)
            finally:
                self._comp_end()
            return self._loop(parts, pred, var, "list", inline)
        self.uses_budget = True  # where_items charges the source
        arg = self._source(n.source)
        src = f"R.where_items(B, {arg}, {self.const(n.pos)})"
        inline = ("where_items", arg, (self.const(n.pos),))
        self._strict += 1
        var = f"e{self._strict}_{self.temp()}"
        self.frames.append((True, var))
        try:
            pred = self.expr(n.pred)
        finally:
            self.frames.pop()
            self._strict -= 1
        return self._loop((var, src, None), pred, var, "list", inline)

    def _comp_head(self, names: tuple[str, ...], source: A.Expr, pos: Any, items: str) -> tuple[str, str]:
        """``for ... in ...`` of a comprehension (its source computed in the enclosing scope) and its element's
        variable; its names are in scope until :meth:`_comp_end`."""
        self.uses_budget = True
        if items == "loop_items" and len(names) == 2 and isinstance(source, A.Call) and source.func == "items" and \
                len(source.args) == 1 and not source.kwargs and FUNCTIONS.get("items") is not None:
            arg = self._source(source.args[0])
            src = f"R.pairs(B, {arg}, {self.const(source.pos)}, {self.const(pos)})"
            self._inline = ("pairs", arg, (self.const(source.pos), self.const(pos)))
            self._strict += 1
            tag = f"c{self._strict}_{self.temp()}"
            idents = {name: f"{tag}_{i}" for i, name in enumerate(names)}
            self.frames.append((False, idents))
            self.hashable.add(idents[names[0]])  # a map's key
            self._head = (", ".join(idents.values()), src, None)
            return f"for {', '.join(idents.values())} in {src}", ""
        own = None
        if isinstance(source, A.Call) and source.func in ("keys", "values") and len(source.args) == 1 and \
                not source.kwargs and FUNCTIONS.get(source.func) is not None and items == "loop_items":
            own = source.func  # keys(m) / values(m): the list made and charged once
            mapped = self._hoisted_map(source.args[0]) if own == "keys" else None
            arg = self._source(source.args[0])
            src = f"R.{own}_loop(B, {arg}, {self.const(source.pos)}, {self.const(pos)})"
            self._inline = (own, arg, (self.const(source.pos), self.const(pos)))
        else:
            arg = self._source(source)
            src = f"R.{items}(B, {arg}, {self.const(pos)})"
            self._inline = (items, arg, (self.const(pos),))
        self._strict += 1
        tag = f"c{self._strict}_{self.temp()}"
        idents = {name: f"{tag}_{i}" for i, name in enumerate(names)}
        self.frames.append((False, idents))
        if len(names) == 1 and own == "keys":
            self.hashable.add(idents[names[0]])  # a map's key: a lookup with it raises no TypeError
            if mapped is not None:  # a key of a state entry looked up once: in it, while nothing writes the state
                self.keys_of[idents[names[0]]] = mapped[0]
        if len(names) == 1:
            self._head = (idents[names[0]], src, None)
            return f"for {idents[names[0]]} in {src}", idents[names[0]]
        targets = ", ".join(idents.values())
        self._head = (tag, src, f"{targets} = R.unpack({tag}, {len(names)}, {self.const(pos)})")
        return f"for {tag} in {src} for {targets} in (R.unpack({tag}, {len(names)}, {self.const(pos)}),)", ""

    def _comp_end(self) -> None:
        self.frames.pop()
        self._strict -= 1

    # ------------------------------------------------------------------------------------------ statements

    def bind(self, name: str, value: str, lines: list[str], pad: str) -> None:
        """``name = value`` for a local of the tool (kept in ``E`` too where closures read it)."""
        ident = self.scope.setdefault(name, f"v_{name}")
        self.types.pop(ident, None)
        lines.append(f"{pad}{ident} = {value}")
        self.maybe.discard(name)

    def block(self, body: tuple[A.Stmt, ...], pad: str) -> list[str]:
        lines: list[str] = []
        for s in body:
            method = getattr(self, "_s_" + type(s).__name__, None)
            if method is None:
                raise Unsupported(type(s).__name__)
            method(s, lines, pad)
        if not lines:
            lines.append(pad + "pass")
        return lines

    def _s_Let(self, s: A.Let, lines: list[str], pad: str) -> None:
        self.bind(s.name, self.expr(s.value), lines, pad)

    def _target(self, target: A.Expr) -> tuple[str, str]:
        if isinstance(target, A.Field):
            return self.expr(target.obj), repr(target.name)
        if isinstance(target, A.Index):
            return self.expr(target.obj), self.expr(target.index)
        raise Unsupported("an assignment target")

    def _s_Assign(self, s: A.Assign, lines: list[str], pad: str) -> None:
        pos = self.const(s.target.pos)
        if isinstance(s.target, A.Name):
            name = s.target.id
            if name in self.maybe:
                raise Unsupported(f"'{name}' may be unbound here")
            if name in self.scope:
                self.bind(name, self.expr(s.value), lines, pad)
            else:  # a top-level state field, written into the state (undo-logged)
                lines.append(f"{pad}R.store(U, RO, S, {name!r}, {self.expr(s.value)}, {pos})")
            return
        container, key = self._target(s.target)
        lines.append(f"{pad}R.store(U, RO, {container}, {key}, {self.expr(s.value)}, {pos})")

    def _s_AugAssign(self, s: A.AugAssign, lines: list[str], pad: str) -> None:
        op, pos = self.const(R.ARITH["+" if s.op == "+" else "-"]), self.const(s.pos)
        if isinstance(s.target, A.Name):
            name = s.target.id
            read = self.expr(s.target)
            new = f"{op}({read}, {self.expr(s.value)}, {pos})"
            if name in self.scope:
                self.bind(name, new, lines, pad)
            else:
                lines.append(f"{pad}R.store(U, RO, S, {name!r}, {new}, {pos})")
            return
        container, key = self._target(s.target)
        c, k = self.temp(), self.temp()
        lines.append(f"{pad}{c} = {container}")
        lines.append(f"{pad}{k} = {key}")
        lines.append(f"{pad}R.store(U, RO, {c}, {k}, {op}(R.read_for_aug({c}, {k}, {pos}), "
                     f"{self.expr(s.value)}, {pos}), {pos})")

    def _branch(self, body: tuple[A.Stmt, ...], pad: str) -> list[str]:
        """A block whose bindings are not sure to happen: its new names are 'maybe' after it."""
        before = set(self.scope)
        lines = self.block(body, pad)
        for name in set(self.scope) - before:
            del self.scope[name]
            self.maybe.add(name)
        return lines

    def _s_If(self, s: A.If, lines: list[str], pad: str) -> None:
        for i, (cond, body) in enumerate(s.branches):
            lines.append(f"{pad}{'if' if i == 0 else 'elif'} {self.expr(cond)}:")
            lines += self._branch(body, pad + "    ")
        if s.orelse is not None:
            lines.append(f"{pad}else:")
            lines += self._branch(s.orelse, pad + "    ")

    def _s_For(self, s: A.For, lines: list[str], pad: str) -> None:
        self.uses_budget = True
        item = self.temp()
        lines.append(f"{pad}for {item} in R.for_items(B, {self.expr(s.iter)}, {self.const(s.pos)}):")
        inner = pad + "    "
        before = set(self.scope)
        if len(s.names) == 1:
            self.bind(s.names[0], item, lines, inner)
        else:
            lines.append(f"{inner}R.unpack({item}, {len(s.names)}, {self.const(s.pos)})")
            for i, name in enumerate(s.names):
                self.bind(name, f"{item}[{i}]", lines, inner)
        lines += self.block(s.body, inner)
        for name in set(self.scope) - before:
            del self.scope[name]
            self.maybe.add(name)

    def _s_While(self, s: A.While, lines: list[str], pad: str) -> None:
        self.uses_budget = True
        lines.append(f"{pad}while {self.expr(s.cond)}:")
        lines.append(f"{pad}    R.charge(B, 1, {self.const(s.pos)})")
        lines += self._branch(s.body, pad + "    ")

    def _s_Break(self, s: A.Break, lines: list[str], pad: str) -> None:
        lines.append(pad + "break")

    def _s_Continue(self, s: A.Continue, lines: list[str], pad: str) -> None:
        lines.append(pad + "continue")

    def _s_Return(self, s: A.Return, lines: list[str], pad: str) -> None:
        if not self._in_function:
            raise Unsupported("return outside a function")
        lines.append(f"{pad}return {self.expr(s.value)}")

    def _s_Fail(self, s: A.Fail, lines: list[str], pad: str) -> None:
        lines.append(f"{pad}R.fail({self.expr(s.message)})")

    def _s_Delete(self, s: A.Delete, lines: list[str], pad: str) -> None:
        d, k = self.temp(), self.temp()
        lines.append(f"{pad}{d} = {self.expr(s.target.obj)}")
        lines.append(f"{pad}{k} = {self.expr(s.target.index)}")
        lines.append(f"{pad}R.delete(U, RO, {d}, {k}, {self.const(s.pos)})")

    def _s_CallStmt(self, s: A.CallStmt, lines: list[str], pad: str) -> None:
        call = s.call
        fname, pos = call.func, self.const(call.pos)
        if len(call.args) != 2 or call.kwargs or fname not in ("append", "extend", "remove", "add", "discard"):
            raise Unsupported(fname)  # the closure compiler reports it, at run time
        t = self.temp()
        target = self.expr(call.args[0])
        if fname in ("add", "discard"):
            adding = fname == "add"
            lines.append(f"{pad}{t} = R.set_of({target}, {adding}, {pos})")
            lines.append(f"{pad}R.add_to_set(U, {adding}, {t}, {self.expr(call.args[1])}, {pos})")
            return
        lines.append(f"{pad}{t} = R.readonly(RO, R.list_of({target}, {fname!r}, {pos}), {pos})")
        if fname == "append":
            lines.append(f"{pad}R.append(U, {t}, {self.expr(call.args[1])}, {pos})")
        else:
            self.uses_budget = True
            lines.append(f"{pad}R.{fname}(U, B, {t}, {self.expr(call.args[1])}, {pos})")


def _free_names(src: str, known: set[str]) -> list[str]:
    """The names the generated statements ``src`` read and never bind, other than the namespace's (``known``),
    the generated functions' and Python's built-ins, in order of first use."""
    tree = ast.parse(src)
    bound = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and not isinstance(n.ctx, ast.Load)}
    bound |= {a.arg for n in ast.walk(tree) if isinstance(n, ast.Lambda) for a in n.args.args}
    out: list[str] = []
    for n in ast.walk(tree):
        if isinstance(n, ast.Name) and n.id not in bound and n.id not in known and n.id not in out and \
                n.id not in _BUILTINS and not n.id.startswith("fn_"):
            out.append(n.id)
    return out


_BUILTINS = frozenset(dir(builtins))


def _reads(n: Any) -> dict[str, int]:
    """How often ``n`` reads each bare name, a read inside a comprehension or an element's scope counted twice."""
    counts: dict[str, int] = {}

    def walk(node: Any, weight: int) -> None:
        if isinstance(node, tuple):
            for item in node:
                walk(item, weight)
        elif hasattr(node, "__dataclass_fields__"):
            if isinstance(node, A.Name):
                counts[node.id] = counts.get(node.id, 0) + weight
            inner = 2 if isinstance(node, (A.Comp, A.MapComp, A.Where, A.Each)) else weight
            for name in node.__dataclass_fields__:
                if name not in ("pos", "name_pos"):
                    walk(getattr(node, name), inner)

    walk(n, 1)
    return counts


def _gives_str(n: Any) -> bool:
    """Whether ``n``'s value is a str whenever it has one (``to_str`` then gives it as it is): a formatted value, an
    f-string, a call of the built-in ``join``."""
    return isinstance(n, (A.Formatted, A.FString)) or (
        isinstance(n, A.Call) and n.func == "join" and FUNCTIONS.get("join") is not None)


def _gives_int(n: Any) -> bool:
    """Whether ``n``'s value is an int whenever it has one: a call of the built-in ``len``."""
    return isinstance(n, A.Call) and n.func == "len" and FUNCTIONS.get("len") is not None


def _num_lit(n: A.Expr) -> bool:
    return isinstance(n, A.Lit) and (type(n.value) is int or (type(n.value) is float and math.isfinite(n.value)))


def _float_spec(spec: str) -> bool:
    """Whether ``format(x, spec)`` gives ``format_value``'s text for every float ``x`` (the spec is within bounds and
    fits a float; what a float formats as depends on the spec alone)."""
    try:
        _bounded(spec)
        format(0.0, spec)
    except (ValueError, TypeError):
        return False
    return True


def _names(n: Any) -> set[str]:
    from aqwen_spec.expr.library import names_in

    return names_in(n)
