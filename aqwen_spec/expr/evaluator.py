"""Evaluation: each IR node is compiled once into a Python closure; no eval/exec, no per-run type dispatch.

``evaluate(expr, env)`` computes an expression; ``execute(program, env, state)`` runs an effect
all-or-nothing:
every change to the state is recorded in an undo log and rolled back when the effect fails or errs.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from aqwen_spec.diagnostics import Pos
from aqwen_spec.expr import ast as A
from aqwen_spec.expr.episode import CLOCK_FUNCTIONS, DRAW_FUNCTIONS
from aqwen_spec.expr.errors import EffectFailed, EvalError, EvalLimitError
from aqwen_spec.expr.formatting import format_value
from aqwen_spec.expr.functions import FUNCTIONS, MAX_SIZE, FunctionError, to_str
from aqwen_spec.expr.library import MAX_CALL_DEPTH, Library
from aqwen_spec.expr.sampling import SAMPLING_FUNCTIONS
from aqwen_spec.expr.timefunctions import date_add, date_sub

__all__ = [
    "DEFAULT_MAX_STEPS",
    "EffectFailed",
    "EvalError",
    "EvalLimitError",
    "compile_expr",
    "compile_program",
    "evaluate",
    "execute",
    "make_env",
    "state_env",
]

EPISODE_FUNCTIONS: Mapping[str, Any] = {**CLOCK_FUNCTIONS, **DRAW_FUNCTIONS}
DEFAULT_MAX_STEPS = 100_000
"""Default step budget: loop, filter and comprehension iterations plus elements handled by builtins."""
MAX_INT = 2**63
"""Integers must stay below this in magnitude (keeps arithmetic in loops cheap)."""

# Reserved env keys: not identifiers, so no spec name can collide with them.
_BUDGET = "\x00budget"
_UNDO = "\x00undo"
_LIB = "\x00library"
"""The domain's functions and constants (:class:`~aqwen_spec.expr.library.Library`), where the env has them."""
_STATE = "\x00state"
"""The state itself, whatever a parameter or slot called ``state`` hides: what a domain function reads."""

Env = Mapping[str, Any]
Fn = Callable[[Any], Any]
StmtFn = Callable[[dict[str, Any]], None]


class _Budget:
    __slots__ = ("depth", "left")

    def __init__(self, left: int) -> None:
        self.left = left
        self.depth = 0  # calls of domain functions in progress


def _charge(env: Any, n: int, pos: Pos) -> None:
    try:
        budget = env[_BUDGET]
    except KeyError:
        # Called outside evaluate()/execute(): each operation gets its own budget rather than none.
        budget = _Budget(DEFAULT_MAX_STEPS)
    budget.left -= n
    if budget.left < 0:
        raise EvalLimitError("evaluation takes too many steps (a loop or filter over too much data?)", pos)


def make_env(values: Mapping[str, Any], max_steps: int = DEFAULT_MAX_STEPS) -> dict[str, Any]:
    """An env for compiled closures: ``values`` plus a step budget shared by every evaluation that uses it."""
    env = dict(values)
    env[_BUDGET] = _Budget(max_steps)
    return env


class StateEnv(dict[str, Any]):
    """An env whose names not set in it read the live state: its fields, and ``state``, the state itself.

    Reads go to the state at the moment they happen, so an expression evaluated after an effect (``returns``)
    sees what the effect wrote, ``state.counter += 1`` included. A name set in the env (a parameter called
    ``state``, say) hides the state's.
    """

    __slots__ = ("state",)

    def __init__(self, state: Mapping[str, Any], values: Mapping[str, Any] = {}, library: Library | None = None
                 ) -> None:
        super().__init__(values)
        self.state = state
        if library is not None:
            self[_LIB] = library

    def __missing__(self, key: str) -> Any:
        if key == "state" or key == _STATE:
            return self.state
        try:
            return self.state[key]
        except KeyError:
            library = dict.get(self, _LIB)
            if library is not None and key in library.constants:  # after the state: a constant is no state field
                return library.constants[key]
            raise


def state_env(
    state: Mapping[str, Any], values: Mapping[str, Any] = {}, max_steps: int = DEFAULT_MAX_STEPS,
    library: Library | None = None,
) -> StateEnv:
    """An env over a live state (see :class:`StateEnv`) with ``values`` (parameters, slots) and a step budget;
    with a ``library``, the domain's functions may be called and its constants read."""
    env = StateEnv(state, values, library)
    env[_BUDGET] = _Budget(max_steps)
    return env


class _ElemEnv:
    """The scope of a filter predicate: ``it``, then the element's fields, then the enclosing names."""

    __slots__ = ("elem", "outer")

    def __init__(self, outer: Any) -> None:
        self.elem: Any = None
        self.outer = outer

    def __getitem__(self, key: str) -> Any:
        if key == "it":
            return self.elem
        elem = self.elem
        if type(elem) is dict and key in elem:
            return elem[key]
        try:
            return self.outer[key]
        except KeyError:
            if type(elem) is dict:
                return None  # a field this element leaves out (an optional one, another case's) reads as null
            raise


class _VarEnv:
    """The scope of a comprehension: its loop names, then the enclosing names."""

    __slots__ = ("outer", "vars")

    def __init__(self, outer: Any) -> None:
        self.vars: dict[str, Any] = {}
        self.outer = outer

    def __getitem__(self, key: str) -> Any:
        v = self.vars
        if key in v:
            return v[key]
        return self.outer[key]


def _kind(v: Any) -> str:
    if v is None:
        return "null"
    if v is True or v is False:
        return "bool"
    return {int: "int", float: "float", str: "str", list: "list", dict: "record"}.get(
        type(v), type(v).__name__
    )


def _items(v: Any, pos: Pos, what: str) -> list[Any]:
    if type(v) is list:
        return v
    if type(v) is dict:
        return list(v.values())
    if type(v) is str:
        return list(v)  # its characters
    raise EvalError(f"{what} needs a list, a map or a str, got {_kind(v)}", pos)


def _bind(scope: dict[str, Any], names: tuple[str, ...], value: Any, pos: Pos) -> None:
    if len(names) == 1:
        scope[names[0]] = value
        return
    if type(value) is not list or len(value) != len(names):
        raise EvalError(f"cannot unpack {_kind(value)} into {len(names)} names", pos)
    for name, v in zip(names, value, strict=True):
        scope[name] = v


def _check_int(v: Any, pos: Pos) -> Any:
    if type(v) is int and not -MAX_INT < v < MAX_INT:
        raise EvalError("integer overflow", pos)
    return v


def _check_len(v: Any, pos: Pos) -> Any:
    if len(v) > MAX_SIZE:
        raise EvalLimitError(f"result too large ({len(v)} elements or characters, at most {MAX_SIZE})", pos)
    return v


def _add(a: Any, b: Any, pos: Pos) -> Any:
    ta, tb = type(a), type(b)
    if (ta is int or ta is float) and (tb is int or tb is float):
        return _check_int(a + b, pos)
    if (ta is str and tb is str) or (ta is list and tb is list):
        return _check_len(a + b, pos)
    if ta is str and (tb is int or tb is float) and _moment(a):  # a date or datetime plus a duration (seconds)
        return _timed(date_add, a, b, 1, pos)
    if tb is str and (ta is int or ta is float) and _moment(b):
        return _timed(date_add, b, a, 1, pos)
    raise EvalError(f"cannot add {_kind(a)} and {_kind(b)}", pos)


def _moment(text: str) -> bool:
    """Whether a str is meant as a date or datetime (it starts with a year; it is parsed when used)."""
    return len(text) >= 7 and text[:4].isdigit()


def _timed(fn: Callable[..., Any], *args: Any) -> Any:
    pos = args[-1]
    try:
        return fn(*args[:-1])
    except FunctionError as e:
        raise EvalError(str(e), pos) from None


def builtin_error(e: Exception, fname: str, pos: Pos) -> EvalError:
    """The run-time error a built-in's failure becomes: its own message for a :class:`FunctionError`, else the
    exception's text after the function's name (the closures and generated code raise it alike)."""
    if isinstance(e, FunctionError):
        return EvalError(str(e), pos)
    if isinstance(e, RecursionError):
        return EvalError(f"{fname}(): value nested too deeply", pos)
    return EvalError(f"{fname}(): {e}", pos)


def _num(a: Any, b: Any, op: str, pos: Pos) -> None:
    ta, tb = type(a), type(b)
    if not ((ta is int or ta is float) and (tb is int or tb is float)):
        raise EvalError(f"cannot apply '{op}' to {_kind(a)} and {_kind(b)}", pos)


def _sub(a: Any, b: Any, pos: Pos) -> Any:
    ta, tb = type(a), type(b)
    if ta is str and tb is str and _moment(a) and _moment(b):  # two dates or datetimes: the time between them
        return _timed(date_sub, a, b, pos)
    if ta is str and (tb is int or tb is float) and _moment(a):
        return _timed(date_add, a, b, -1, pos)
    _num(a, b, "-", pos)
    return _check_int(a - b, pos)


def _mul(a: Any, b: Any, pos: Pos) -> Any:
    ta, tb = type(a), type(b)
    if (ta is str or ta is list) and tb is int:
        if len(a) * max(b, 0) > MAX_SIZE:
            raise EvalLimitError(f"result too large (more than {MAX_SIZE} elements or characters)", pos)
        return a * b
    _num(a, b, "*", pos)
    return _check_int(a * b, pos)


def _div(a: Any, b: Any, pos: Pos) -> Any:
    _num(a, b, "/", pos)
    if b == 0:
        raise EvalError("division by zero", pos)
    return a / b


def _floordiv(a: Any, b: Any, pos: Pos) -> Any:
    _num(a, b, "//", pos)
    if b == 0:
        raise EvalError("division by zero", pos)
    return a // b


def _mod(a: Any, b: Any, pos: Pos) -> Any:
    _num(a, b, "%", pos)
    if b == 0:
        raise EvalError("modulo by zero", pos)
    return a % b


_ARITH: dict[str, Callable[[Any, Any, Pos], Any]] = {
    "+": _add,
    "-": _sub,
    "*": _mul,
    "/": _div,
    "//": _floordiv,
    "%": _mod,
}


def _contains(container: Any, x: Any, pos: Pos) -> bool:
    t = type(container)
    if t is dict or t is list:
        try:
            return x in container
        except TypeError:
            return False  # an unhashable value is never a map key
    if t is str:
        if type(x) is not str:
            raise EvalError(f"'in' a str needs a str, got {_kind(x)}", pos)
        return x in container
    raise EvalError(f"'in' needs a list, map or str, got {_kind(container)}", pos)


# --------------------------------------------------------------------------------------------- expressions


def _c_lit(n: A.Lit) -> Fn:
    value = n.value
    return lambda env: value


def _c_name(n: A.Name) -> Fn:
    name, pos = n.id, n.pos

    def name_fn(env: Any) -> Any:
        try:
            return env[name]
        except KeyError:
            raise EvalError(f"unknown name '{name}'", pos) from None

    return name_fn


def _c_field(n: A.Field) -> Fn:
    if type(n.obj) is A.Name:
        return _c_name_field(n.obj, n)
    if type(n.obj) is A.Field and type(n.obj.obj) is A.Name:
        return _c_name_field2(n.obj.obj, n.obj, n)
    obj, name, pos = _compile(n.obj), n.name, n.name_pos

    def field_fn(env: Any) -> Any:
        o = obj(env)
        if type(o) is dict:
            return o.get(name)  # an omitted optional field reads as null; the checker rejects unknown ones
        if o is None:
            raise EvalError(f"cannot read field '{name}' of null", pos)
        raise EvalError(f"cannot read field '{name}' of {_kind(o)}", pos)

    return field_fn


def _field_error(o: Any, name: str, pos: Pos) -> EvalError:
    """What ``field_fn`` raises when ``o`` (no dict) has no field ``name``."""
    if o is None:
        return EvalError(f"cannot read field '{name}' of null", pos)
    return EvalError(f"cannot read field '{name}' of {_kind(o)}", pos)


def _c_name_field(base: A.Name, n: A.Field) -> Fn:
    """``a.b``: ``_c_name`` and ``_c_field`` in one closure (the same values and errors, one call less)."""
    var, var_pos, name, pos = base.id, base.pos, n.name, n.name_pos

    def name_field_fn(env: Any) -> Any:
        try:
            o = env[var]
        except KeyError:
            raise EvalError(f"unknown name '{var}'", var_pos) from None
        if type(o) is dict:
            return o.get(name)
        raise _field_error(o, name, pos)

    return name_field_fn


def _c_name_field2(base: A.Name, inner: A.Field, n: A.Field) -> Fn:
    """``a.b.c`` in one closure, as :func:`_c_name_field`."""
    var, var_pos, name1, pos1, name2, pos2 = base.id, base.pos, inner.name, inner.name_pos, n.name, n.name_pos

    def name_field2_fn(env: Any) -> Any:
        try:
            o = env[var]
        except KeyError:
            raise EvalError(f"unknown name '{var}'", var_pos) from None
        if type(o) is not dict:
            raise _field_error(o, name1, pos1)
        o = o.get(name1)
        if type(o) is dict:
            return o.get(name2)
        raise _field_error(o, name2, pos2)

    return name_field2_fn


def _index(o: Any, k: Any, pos: Pos) -> Any:
    t = type(o)
    if t is dict:
        try:
            return o[k]
        except (KeyError, TypeError):
            raise EvalError(f"no entry {to_str(k)[:60]!r} in the map", pos) from None
    if t is list or t is str:
        if type(k) is not int:
            raise EvalError(f"a {_kind(o)} index must be an int, got {_kind(k)}", pos)
        try:
            return o[k]
        except IndexError:
            raise EvalError(f"index {k} out of range ({_kind(o)} of length {len(o)})", pos) from None
    if o is None:
        raise EvalError("cannot index null", pos)
    raise EvalError(f"cannot index {_kind(o)}", pos)


def _c_index(n: A.Index) -> Fn:
    obj, idx, pos = _compile(n.obj), _compile(n.index), n.pos

    def index_fn(env: Any) -> Any:
        o = obj(env)
        k = idx(env)
        if type(o) is dict:
            try:
                return o[k]
            except (KeyError, TypeError):
                pass
        return _index(o, k, pos)

    return index_fn


def _bound(v: Any, pos: Pos) -> int | None:
    if v is None or type(v) is int:
        return v
    raise EvalError(f"slice bounds must be ints (or null), got {_kind(v)}", pos)


def _c_slice(n: A.Slice) -> Fn:
    obj, pos = _compile(n.obj), n.pos
    parts = [_compile(p) if p is not None else None for p in (n.start, n.stop, n.step)]

    def slice_fn(env: Any) -> Any:
        o = obj(env)
        start, stop, step = (_bound(f(env), pos) if f is not None else None for f in parts)
        if type(o) is not list and type(o) is not str:
            raise EvalError(f"cannot slice {_kind(o)}" + (" (null)" if o is None else ""), pos)
        if step == 0:
            raise EvalError("slice step cannot be zero", pos)
        out = o[start:stop:step]
        _charge(env, max(len(out), 1), pos)
        return out

    return slice_fn


def _elem_fn(expr: A.Expr) -> Callable[[Any], Callable[[Any], Any]]:
    """Compile an element-scoped argument: given the caller's env, a function of one element."""
    if isinstance(expr, A.Lit) and isinstance(expr.value, str):
        expr = A.Name(expr.value, expr.pos)  # sorted(xs, by="price") names a field
    if isinstance(expr, A.Each):
        return _each_fn(expr)
    fn = _compile(expr)

    def bind(env: Any) -> Callable[[Any], Any]:
        scope = _ElemEnv(env)

        def per_elem(x: Any) -> Any:
            scope.elem = x
            return fn(scope)

        return per_elem

    return bind


def _each_fn(each: A.Each) -> Callable[[Any], Callable[[Any], Any]]:
    """Compile ``name: body`` (``count(name in xs: body)``): the element is bound to ``name`` only."""
    fn, name = _compile(each.body), each.name

    def bind(env: Any) -> Callable[[Any], Any]:
        scope = _VarEnv(env)

        def per_elem(x: Any) -> Any:
            scope.vars[name] = x
            return fn(scope)

        return per_elem

    return bind


def _c_each(n: A.Each) -> Fn:
    name, pos = n.name, n.pos

    def misplaced(env: Any) -> Any:  # the checker reports it; a bundle built without checking still fails cleanly
        raise EvalError(f"'{name} in ...: ...' names an element only in count, sum, any, all and 'where'", pos)

    return misplaced


def _c_call(n: A.Call) -> Fn:
    name, pos = n.func, n.pos
    builtin = FUNCTIONS.get(name) or SAMPLING_FUNCTIONS.get(name) or EPISODE_FUNCTIONS.get(name)
    if builtin is None:
        return _c_user_call(n)
    impl = builtin.impl
    # An element-scoped argument compiles to a binder: given this call's env, a function of one element.
    args = [
        _elem_fn(a)
        if i in builtin.elem_args
        else _c_lazy(a)
        if isinstance(a, A.Comp) and a.lazy and name in ("any", "all")
        else _compile(a)
        for i, a in enumerate(n.args)
    ]
    kwargs = [(k, _elem_fn(v) if k in builtin.elem_kwargs else _compile(v)) for k, v in n.kwargs]
    collection = builtin.collection

    def call_fn(env: Any) -> Any:
        vals: list[Any] = [f(env) for f in args]
        kw = {k: f(env) for k, f in kwargs} if kwargs else {}
        if collection and vals:
            first = vals[0]
            size = len(first) if type(first) in (list, dict, str) else 1
            _charge(env, max(size, len(vals)), pos)
        try:
            return impl(*vals, **kw)
        except (EvalError, EffectFailed):
            raise
        except Exception as e:
            raise builtin_error(e, name, pos) from None

    return call_fn


def _c_user_call(n: A.Call) -> Fn:
    """A call of a domain function, found in the env's library when it runs: the body is evaluated in a frame of
    its own (its parameters, the state, the constants), sharing the caller's step budget."""
    name, pos = n.func, n.pos
    args = [_compile(a) for a in n.args]
    kwargs = [(k, _compile(v)) for k, v in n.kwargs]
    linked: list[Any] = [(None, (), None)]  # (the library last seen, its function's parameters, compiled body)

    def user_call(env: Any) -> Any:
        try:
            library = env[_LIB]  # an element's scope reads a name it lacks as null
        except KeyError:
            library = None
        entry = linked[0]  # one tuple, read and replaced whole: envs of other libraries may run in other threads
        if library is not entry[0] or library is None:
            f = library.functions.get(name) if library is not None else None
            if f is None:
                raise EvalError(f"unknown function '{name}'", pos)
            entry = linked[0] = (library, tuple(f.params), _function_body(f, pos))
        _, params, body = entry
        try:
            state = env[_STATE]
        except KeyError:
            state = None
        frame = StateEnv(state if state is not None else {})
        for p, a in zip(params, args, strict=False):  # too many arguments: counted below
            frame[p] = a(env)
        for k, v in kwargs:
            frame[k] = v(env)
        if len(frame) != len(params) or len(args) + len(kwargs) != len(params):  # a missing, extra or twice-given one
            raise EvalError(f"{name}() takes {len(params)} arguments, got {len(args) + len(kwargs)}", pos)
        try:
            budget = env[_BUDGET]
        except KeyError:
            budget = None
        if budget is None:  # called outside evaluate()/execute(): a budget of its own rather than none
            budget = _Budget(DEFAULT_MAX_STEPS)
        budget.left -= 1
        if budget.left < 0:
            raise EvalLimitError("evaluation takes too many steps (a loop or filter over too much data?)", pos)
        if budget.depth >= MAX_CALL_DEPTH:
            raise EvalLimitError(f"calls of domain functions nest more than {MAX_CALL_DEPTH} deep (at {name}(): a "
                                 "recursion that does not end, or data nested too deeply?)", pos)
        frame[_LIB] = library
        frame[_BUDGET] = budget
        budget.depth += 1
        try:
            return body(frame)
        except RecursionError:
            raise EvalLimitError(f"calls of {name}() nest too deeply for the evaluator", pos) from None
        finally:
            budget.depth -= 1

    return user_call


class _Returned(Exception):
    """``return value`` in a function's statement body: carries the value out of its blocks and loops."""

    def __init__(self, value: Any) -> None:
        self.value = value


def _function_body(f: Any, pos: Pos) -> Fn:
    """A function's body as a closure of its frame: an expression, or statements that end in ``return``."""
    if not isinstance(f.body, A.Program):
        return compile_expr(f.body)
    block, name = compile_program(f.body), f.name

    def run(frame: Any) -> Any:
        frame[_UNDO] = []  # writes go only into the body's own locals: nothing to undo
        try:
            block(frame)
        except _Returned as r:
            return r.value
        raise EvalError(f"{name}() ended without returning a value", pos)

    return run


def _c_unary(n: A.Unary) -> Fn:
    operand, pos = _compile(n.operand), n.pos

    def neg(env: Any) -> Any:
        v = operand(env)
        if type(v) is int or type(v) is float:
            return -v
        raise EvalError(f"cannot negate {_kind(v)}", pos)

    return neg


def _c_binary(n: A.Binary) -> Fn:
    left, right, pos = _compile(n.left), _compile(n.right), n.pos
    op = _ARITH[n.op]
    if n.op == "+":

        def add(env: Any) -> Any:
            a = left(env)
            b = right(env)
            if type(a) is float and type(b) is float:
                return a + b
            return _add(a, b, pos)

        return add
    return lambda env: op(left(env), right(env), pos)


def _c_compare(n: A.Compare) -> Fn:
    left, right, pos, op = _compile(n.left), _compile(n.right), n.pos, n.op
    if op == "==":
        return lambda env: left(env) == right(env)
    if op == "!=":
        return lambda env: left(env) != right(env)
    if op == "in":
        return lambda env: _contains(right(env), left(env), pos)
    if op == "not in":
        return lambda env: not _contains(right(env), left(env), pos)
    import operator

    cmp = {"<": operator.lt, "<=": operator.le, ">": operator.gt, ">=": operator.ge}[op]

    def order(env: Any) -> Any:
        a = left(env)
        b = right(env)
        try:
            return cmp(a, b)
        except TypeError:
            raise EvalError(f"cannot compare {_kind(a)} and {_kind(b)} with '{op}'", pos) from None

    return order


def _c_boolop(n: A.BoolOp) -> Fn:
    left, right = _compile(n.left), _compile(n.right)
    if n.op == "and":
        return lambda env: left(env) and right(env)
    return lambda env: left(env) or right(env)


def _c_not(n: A.Not) -> Fn:
    operand = _compile(n.operand)
    return lambda env: not operand(env)


def _c_cond(n: A.Cond) -> Fn:
    then, cond, orelse = _compile(n.then), _compile(n.cond), _compile(n.orelse)
    return lambda env: then(env) if cond(env) else orelse(env)


def _c_where(n: A.Where) -> Fn:
    source, pos = _compile(n.source), n.pos
    if isinstance(n.pred, A.Each):
        return _c_where_named(source, n.pred, pos)
    pred = _compile(n.pred)

    def where_fn(env: Any) -> list[Any]:
        items = _items(source(env), pos, "'where'")
        _charge(env, len(items), pos)
        scope = _ElemEnv(env)
        out = []
        for x in items:
            scope.elem = x
            if pred(scope):
                out.append(x)
        return out

    return where_fn


def _c_where_named(source: Fn, each: A.Each, pos: Pos) -> Fn:
    """``xs where name: pred``: the element is bound to ``name`` only."""
    pred = _each_fn(each)

    def where_fn(env: Any) -> list[Any]:
        items = _items(source(env), pos, "'where'")
        _charge(env, len(items), pos)
        holds = pred(env)
        return [x for x in items if holds(x)]

    return where_fn


def _c_comp(n: A.Comp) -> Fn:
    elem, names, source, pos = _compile(n.elem), n.names, _compile(n.iter), n.pos
    cond = _compile(n.cond) if n.cond is not None else None

    def comp_fn(env: Any) -> list[Any]:
        items = _items(source(env), pos, "'for'")
        _charge(env, len(items), pos)
        scope = _VarEnv(env)
        out = []
        for x in items:
            _bind(scope.vars, names, x, pos)
            if cond is None or cond(scope):
                out.append(elem(scope))
        return out

    return comp_fn


def _c_lazy(n: A.Comp) -> Fn:
    """``any(x > 0 for x in xs)``: the elements one at a time, so ``any`` and ``all`` stop where Python's do."""
    elem, names, source, pos = _compile(n.elem), n.names, _compile(n.iter), n.pos
    cond = _compile(n.cond) if n.cond is not None else None

    def lazy_fn(env: Any) -> Any:
        items = _items(source(env), pos, "'for'")
        _charge(env, len(items), pos)
        scope = _VarEnv(env)

        def gen() -> Any:
            for x in items:
                _bind(scope.vars, names, x, pos)
                if cond is None or cond(scope):
                    yield elem(scope)

        return gen()

    return lazy_fn


def _c_formatted(n: A.Formatted) -> Fn:
    value, spec, pos = _compile(n.value), n.spec, n.pos  # spec_pos is not kept in bundles

    def formatted_fn(env: Any) -> str:
        try:
            return format_value(value(env), spec)
        except ValueError as e:
            raise EvalError(str(e), pos) from None

    return formatted_fn
def _c_mapcomp(n: A.MapComp) -> Fn:
    key, value, names, source, pos = _compile(n.key), _compile(n.value), n.names, _compile(n.iter), n.pos
    cond = _compile(n.cond) if n.cond is not None else None

    def mapcomp_fn(env: Any) -> dict[Any, Any]:
        items = _items(source(env), pos, "'for'")
        _charge(env, len(items), pos)
        scope = _VarEnv(env)
        out: dict[Any, Any] = {}
        for x in items:
            _bind(scope.vars, names, x, pos)
            if cond is None or cond(scope):
                k = key(scope)
                if type(k) is not str and type(k) is not int:
                    raise EvalError(f"a map key must be a str or an int, got {_kind(k)}", pos)
                out[k] = value(scope)
        return out

    return mapcomp_fn


def _c_list(n: A.ListLit) -> Fn:
    items = [_compile(x) for x in n.items]
    return lambda env: [f(env) for f in items]


def _c_record(n: A.RecordLit) -> Fn:
    entries = [(k, _compile(v)) for k, v in n.entries]
    return lambda env: {k: f(env) for k, f in entries}


def _c_fstring(n: A.FString) -> Fn:
    parts: list[Any] = [p if isinstance(p, str) else _compile(p) for p in n.parts]
    pos = n.pos

    def fstring_fn(env: Any) -> str:
        out = "".join(p if type(p) is str else to_str(p(env)) for p in parts)
        if len(out) > MAX_SIZE:
            _check_len(out, pos)
        return out

    return fstring_fn


_COMPILERS: dict[type, Callable[[Any], Fn]] = {
    A.Lit: _c_lit,
    A.Name: _c_name,
    A.Field: _c_field,
    A.Index: _c_index,
    A.Slice: _c_slice,
    A.Call: _c_call,
    A.Unary: _c_unary,
    A.Binary: _c_binary,
    A.Compare: _c_compare,
    A.BoolOp: _c_boolop,
    A.Not: _c_not,
    A.Cond: _c_cond,
    A.Where: _c_where,
    A.Each: _c_each,
    A.Comp: _c_comp,
    A.MapComp: _c_mapcomp,
    A.ListLit: _c_list,
    A.RecordLit: _c_record,
    A.Formatted: _c_formatted,
    A.FString: _c_fstring,
}


def _compile(n: A.Expr) -> Fn:
    return _COMPILERS[type(n)](n)


_CACHE: dict[int, tuple[Any, Any]] = {}
_CACHE_LIMIT = 50_000


def compile_expr(expr: A.Expr) -> Fn:
    """The closure computing ``expr`` from an env (cached per node object).

    Call it with an env from :func:`make_env` so that the step budget is shared across the evaluation.
    """
    entry = _CACHE.get(id(expr))
    if entry is not None and entry[0] is expr:
        return entry[1]
    fn = _compile(expr)
    _remember(expr, fn)
    return fn


def _remember(node: Any, fn: Any) -> None:
    if len(_CACHE) >= _CACHE_LIMIT:
        _CACHE.clear()  # keeps memory bounded when many throwaway trees are evaluated
    _CACHE[id(node)] = (node, fn)  # the node is kept alive so its id cannot be reused


def evaluate(expr: A.Expr, env: Env, *, max_steps: int = DEFAULT_MAX_STEPS) -> Any:
    """Evaluate ``expr`` with the names in ``env``. Raises :class:`EvalError` (or :class:`EvalLimitError`)."""
    entry = _CACHE.get(id(expr))
    fn = entry[1] if entry is not None and entry[0] is expr else compile_expr(expr)
    if _BUDGET in env:
        frame: Any = env
    else:
        frame = StateEnv(env.state, env) if isinstance(env, StateEnv) else dict(env)
        frame[_BUDGET] = _Budget(max_steps)
    try:
        return fn(frame)
    except EvalError:
        raise
    except RecursionError:
        raise EvalError("value nested too deeply", getattr(expr, "pos", None)) from None
    except Exception as e:  # a bug or an exotic value must still surface as EvalError
        raise EvalError(f"internal error: {type(e).__name__}: {e}", getattr(expr, "pos", None)) from None


# ---------------------------------------------------------------------------------------------- statements


def copy_value(v: Any) -> Any:
    """A deep copy of JSON-like data: what the evaluator stores into a state, so records never alias."""
    return _copy(v)


def _copy(v: Any) -> Any:
    t = type(v)
    if t is dict:
        return {k: _copy(x) for k, x in v.items()}
    if t is list:
        return [_copy(x) for x in v]
    return v


def rollback(journal: list[tuple[Any, ...]]) -> None:
    """Undo every change recorded in ``journal`` (newest first) and empty it."""
    _undo(journal)


def _undo(log: list[tuple[Any, ...]]) -> None:
    for entry in reversed(log):
        kind = entry[0]
        if kind == "set":
            _, container, key, had, old = entry
            if had:
                container[key] = old
            else:
                del container[key]
        elif kind == "append":
            entry[1].pop()
        elif kind == "insert":
            del entry[1][entry[2]]
        elif kind == "extend":
            del entry[1][len(entry[1]) - entry[2] :]
        elif kind == "remove":
            entry[1].insert(entry[2], entry[3])
        elif kind == "delete":
            _, d, key, value, index = entry
            items = list(d.items())
            items.insert(index, (key, value))
            d.clear()
            d.update(items)  # restores key order, so a rolled-back state is byte-identical
    log.clear()


def _readonly(frame: Any, container: Any, pos: Pos) -> None:
    """Constants are shared by every episode: a write into one (through a local that holds it) is an error."""
    library = dict.get(frame, _LIB)
    if library is not None and id(container) in library.readonly:
        raise EvalError("cannot write into a constant: constants are read-only", pos)


def _store(frame: dict[str, Any], container: Any, key: Any, value: Any, pos: Pos) -> None:
    _readonly(frame, container, pos)
    t = type(container)
    if t is dict:
        if type(key) is not str and type(key) is not int:  # int: a map[int, T]
            raise EvalError(f"map keys and field names are str, got {_kind(key)}", pos)
        had = key in container
        frame[_UNDO].append(("set", container, key, had, container.get(key)))
        container[key] = _copy(value)
    elif t is list:
        if type(key) is not int:
            raise EvalError(f"a list index must be an int, got {_kind(key)}", pos)
        if not -len(container) <= key < len(container):
            raise EvalError(f"index {key} out of range (list of length {len(container)})", pos)
        frame[_UNDO].append(("set", container, key, True, container[key]))
        container[key] = _copy(value)
    elif container is None:
        raise EvalError("cannot assign into null", pos)
    else:
        raise EvalError(f"cannot assign into {_kind(container)}", pos)


def _state_of(frame: Any, name: str, pos: Pos) -> Any:
    """The state a name that is not a local is written into (effects run on a :class:`StateEnv`)."""
    state = getattr(frame, "state", None)
    if state is None:
        raise EvalError(f"'{name}' cannot be assigned: it is not a local and there is no state", pos)
    return state


def _target(target: A.Expr) -> tuple[Fn | None, Fn, Callable[[Any], Any]]:
    """(container fn or None for a local name, key fn, reader of the current value)."""
    if isinstance(target, A.Name):
        name = target.id
        return None, (lambda env: name), _compile(target)
    if isinstance(target, A.Field):
        fname = target.name
        return _compile(target.obj), (lambda env: fname), _compile(target)
    if isinstance(target, A.Index):
        return _compile(target.obj), _compile(target.index), _compile(target)
    raise EvalError("invalid assignment target", target.pos)


def _s_let(s: A.Let) -> StmtFn:
    name, value = s.name, _compile(s.value)

    def let_fn(frame: dict[str, Any]) -> None:
        frame[name] = value(frame)

    return let_fn


def _s_assign(s: A.Assign) -> StmtFn:
    container, key, _ = _target(s.target)
    value, pos = _compile(s.value), s.target.pos
    if container is None:
        name = key(None)

        def set_local(frame: dict[str, Any]) -> None:
            v = value(frame)
            if name in frame:
                frame[name] = v
            else:  # not a local: a top-level state field, written into the state (undo-logged)
                _store(frame, _state_of(frame, name, pos), name, v, pos)

        return set_local

    def assign_fn(frame: dict[str, Any]) -> None:
        c = container(frame)
        _store(frame, c, key(frame), value(frame), pos)

    return assign_fn


def _s_aug(s: A.AugAssign) -> StmtFn:
    container, key, read = _target(s.target)
    value, pos = _compile(s.value), s.pos
    op = _add if s.op == "+" else _sub
    if container is None:
        name = key(None)

        def aug_local(frame: dict[str, Any]) -> None:
            v = op(read(frame), value(frame), pos)
            if name in frame:
                frame[name] = v
            else:  # a top-level state field
                _store(frame, _state_of(frame, name, pos), name, v, pos)

        return aug_local

    def aug_fn(frame: dict[str, Any]) -> None:
        c = container(frame)
        k = key(frame)
        _store(
            frame, c, k, op(_index(c, k, pos) if type(c) is not dict else c.get(k), value(frame), pos), pos
        )

    return aug_fn


def _s_if(s: A.If) -> StmtFn:
    branches = [(_compile(c), _block(body)) for c, body in s.branches]
    orelse = _block(s.orelse) if s.orelse is not None else None

    def if_fn(frame: dict[str, Any]) -> None:
        for cond, body in branches:
            if cond(frame):
                body(frame)
                return
        if orelse is not None:
            orelse(frame)

    return if_fn


class _Break(Exception):
    """``break``, on its way to the innermost loop."""


class _Continue(Exception):
    """``continue``, on its way to the innermost loop."""


def _exits(body: tuple[A.Stmt, ...]) -> bool:
    """Whether ``break`` or ``continue`` in ``body`` (not in a nested loop) can reach this loop."""
    for s in body:
        if isinstance(s, (A.Break, A.Continue)):
            return True
        if isinstance(s, A.If) and any(_exits(b) for b in [*(b for _, b in s.branches), s.orelse or ()]):
            return True
    return False


def _loop_body(stmts: tuple[A.Stmt, ...]) -> Callable[[dict[str, Any]], bool]:
    """A loop's body as one pass runs it: True to go on, False after a ``break`` (``continue`` ends the pass)."""
    body = _block(stmts)
    if not _exits(stmts):
        def plain(frame: dict[str, Any]) -> bool:
            body(frame)
            return True

        return plain

    def guarded(frame: dict[str, Any]) -> bool:
        try:
            body(frame)
        except _Continue:
            pass
        except _Break:
            return False
        return True

    return guarded


def _s_for(s: A.For) -> StmtFn:
    names, source, step, pos = s.names, _compile(s.iter), _loop_body(s.body), s.pos

    def for_fn(frame: dict[str, Any]) -> None:
        items = list(_items(source(frame), pos, "'for'"))  # a snapshot: the body may change the collection
        _charge(frame, len(items), pos)
        for x in items:
            _bind(frame, names, x, pos)
            if not step(frame):
                break

    return for_fn


def _s_while(s: A.While) -> StmtFn:
    cond, step, pos = _compile(s.cond), _loop_body(s.body), s.pos

    def while_fn(frame: dict[str, Any]) -> None:
        while cond(frame):
            _charge(frame, 1, pos)  # a runaway loop stops at the step limit
            if not step(frame):
                break

    return while_fn


def _s_break(s: A.Break) -> StmtFn:
    def break_fn(frame: dict[str, Any]) -> None:
        raise _Break

    return break_fn


def _s_continue(s: A.Continue) -> StmtFn:
    def continue_fn(frame: dict[str, Any]) -> None:
        raise _Continue

    return continue_fn


def _list_of(v: Any, fn: str, pos: Pos) -> list[Any]:
    if type(v) is not list:
        raise EvalError(f"{fn}() needs a list, got {_kind(v)}", pos)
    return v


def _s_call(s: A.CallStmt) -> StmtFn:
    call = s.call
    name, pos = call.func, call.pos
    if len(call.args) != 2 or call.kwargs:
        raise EvalError(f"{name}() takes a list and a value", pos)
    target, arg = _compile(call.args[0]), _compile(call.args[1])
    if name == "append":

        def append_fn(frame: dict[str, Any]) -> None:
            lst = _list_of(target(frame), name, pos)
            _readonly(frame, lst, pos)
            v = _copy(arg(frame))
            if len(lst) >= MAX_SIZE:
                _check_len([*lst, v], pos)
            frame[_UNDO].append(("append", lst))
            lst.append(v)

        return append_fn
    if name == "extend":

        def extend_fn(frame: dict[str, Any]) -> None:
            lst = _list_of(target(frame), name, pos)
            _readonly(frame, lst, pos)
            vs = [_copy(v) for v in _items(arg(frame), pos, "extend()")]
            _charge(frame, len(vs), pos)
            if len(lst) + len(vs) > MAX_SIZE:
                _check_len(lst + vs, pos)
            frame[_UNDO].append(("extend", lst, len(vs)))
            lst.extend(vs)

        return extend_fn
    if name == "remove":

        def remove_fn(frame: dict[str, Any]) -> None:
            lst = _list_of(target(frame), name, pos)
            _readonly(frame, lst, pos)
            v = arg(frame)
            _charge(frame, len(lst), pos)
            for i, x in enumerate(lst):
                if x == v:
                    frame[_UNDO].append(("remove", lst, i, x))
                    del lst[i]
                    return
            raise EvalError(f"remove(): {to_str(v)[:60]!r} is not in the list", pos)

        return remove_fn
    if name in ("add", "discard"):
        return _set_stmt(name, target, arg, pos)
    raise EvalError(f"a call of '{name}' cannot be a statement", pos)


def _set_stmt(name: str, target: Fn, arg: Fn, pos: Pos) -> StmtFn:
    """``add(s, x)`` / ``discard(s, x)`` on a set: a list kept sorted without repeats, changed in place."""
    import bisect

    adding = name == "add"

    def set_fn(frame: dict[str, Any]) -> None:
        items = target(frame)
        if type(items) is not list:
            raise EvalError(f"{name}() needs a set, got {_kind(items)}", pos)
        v = arg(frame)
        try:
            i = bisect.bisect_left(items, v)
        except TypeError:
            raise EvalError(f"{name}(): a {_kind(v)} does not fit this set", pos) from None
        present = i < len(items) and items[i] == v
        if adding and not present:
            if len(items) >= MAX_SIZE:
                _check_len([*items, v], pos)
            frame[_UNDO].append(("insert", items, i))
            items.insert(i, v)
        elif not adding and present:
            frame[_UNDO].append(("remove", items, i, items[i]))
            del items[i]

    return set_fn


def _s_delete(s: A.Delete) -> StmtFn:
    container, key, pos = _compile(s.target.obj), _compile(s.target.index), s.pos

    def delete_fn(frame: dict[str, Any]) -> None:
        d = container(frame)
        k = key(frame)
        if type(d) is not dict:
            raise EvalError(f"'delete' works on map entries, not on a {_kind(d)}", pos)
        _readonly(frame, d, pos)
        if k not in d:
            raise EvalError(f"no entry {to_str(k)[:60]!r} to delete", pos)
        index = list(d).index(k)
        frame[_UNDO].append(("delete", d, k, d[k], index))
        del d[k]

    return delete_fn


def _s_return(s: A.Return) -> StmtFn:
    value = _compile(s.value)

    def return_fn(frame: dict[str, Any]) -> None:
        raise _Returned(value(frame))

    return return_fn


def _s_fail(s: A.Fail) -> StmtFn:
    message = _compile(s.message)

    def fail_fn(frame: dict[str, Any]) -> None:
        raise EffectFailed(to_str(message(frame)))

    return fail_fn


_STMT_COMPILERS: dict[type, Callable[[Any], StmtFn]] = {
    A.Let: _s_let,
    A.Assign: _s_assign,
    A.AugAssign: _s_aug,
    A.If: _s_if,
    A.For: _s_for,
    A.While: _s_while,
    A.Break: _s_break,
    A.Continue: _s_continue,
    A.CallStmt: _s_call,
    A.Delete: _s_delete,
    A.Fail: _s_fail,
    A.Return: _s_return,
}


def _block(body: tuple[A.Stmt, ...]) -> StmtFn:
    fns = [_STMT_COMPILERS[type(s)](s) for s in body]
    if len(fns) == 1:
        return fns[0]

    def block_fn(frame: dict[str, Any]) -> None:
        for f in fns:
            f(frame)

    return block_fn


def compile_program(program: A.Program) -> StmtFn:
    """The closure running ``program`` on a frame (cached per node); :func:`execute` is the safe API."""
    entry = _CACHE.get(id(program))
    if entry is not None and entry[0] is program:
        return entry[1]
    fn = _block(program.body)
    _remember(program, fn)
    return fn


def execute(
    program: A.Program,
    env: Env,
    state: dict[str, Any],
    *,
    max_steps: int = DEFAULT_MAX_STEPS,
    journal: list[tuple[Any, ...]] | None = None,
    locals_out: dict[str, Any] | None = None,
) -> None:
    """Run an effect: names resolve to ``let`` locals, then ``env`` (parameters), then ``state`` fields and
    ``state`` itself (read live, see :class:`StateEnv`).

    Changes go through to the dicts and lists inside ``state``. On ``fail`` or any error every change is
    undone, then :class:`EffectFailed` or :class:`EvalError` is raised. With a ``journal``, the changes of a
    successful run are appended to it, so a caller can undo a whole sequence of calls with :func:`rollback`.
    With ``locals_out``, the names the program bound (its ``let`` locals) are put there after a successful run,
    for the tool's ``returns``.
    """
    run = compile_program(program)
    frame = StateEnv(state, env)
    log: list[tuple[Any, ...]] = []
    budget = env.get(_BUDGET) if isinstance(env, dict) else None
    frame[_BUDGET] = budget if budget is not None else _Budget(max_steps)
    frame[_UNDO] = log
    try:
        run(frame)
        if journal is not None:
            journal.extend(log)
        if locals_out is not None:
            locals_out.update((k, v) for k, v in frame.items() if k not in env and k[0] != "\x00")
    except (EffectFailed, EvalError):
        _undo(log)
        raise
    except RecursionError:
        _undo(log)
        raise EvalError("value nested too deeply", program.pos) from None
    except Exception as e:
        _undo(log)
        raise EvalError(f"internal error: {type(e).__name__}: {e}", program.pos) from None
