"""Rules: small conditions over a record's fields, compiled once, run on whole batches.

Used for corridor ``withhold`` rules, ``record_class.important_when`` and
dataset ``validate`` rules::

    consent == false or category == 'strategic'
    declared_value >= 0 and not is_nan(declared_value)
    country in ['CN', 'HK'] and location.port is not null

Grammar (loosest first; keywords are case-insensitive)::

    rule      := or_expr
    or_expr   := and_expr ('or' and_expr)*
    and_expr  := not_expr ('and' not_expr)*
    not_expr  := 'not' not_expr | predicate
    predicate := operand [ ('=='|'!='|'<'|'<='|'>'|'>=') operand
                         | ['not'] 'in' '[' literal (',' literal)* ']'
                         | 'is' ['not'] 'null' ]
    operand   := '(' or_expr ')' | function '(' or_expr ')' | field | literal
    function  := is_null | is_not_null | is_nan | is_finite
    field     := name ('.' name)*          -- nested record fields: location.port
    literal   := 'string' | "string" | [-]integer | [-]float | true | false

Strings take the escapes ``\\\\ \\' \\" \\n \\t \\r \\0 \\uXXXX``.

Semantics: SQL three-valued (Kleene) logic. A comparison, ``in`` or
``is_nan`` with a null operand is null; ``and``/``or`` are Kleene; ``not null``
is null. ``null`` is not a value: ``x == null`` is refused, write ``x is null``
(which, like ``is_null(x)``, is never null itself). Callers decide what a null
result means (policy: withhold on null, validate fails on null).

Values compare in a domain fixed at compile time: ints as int64; ints against
floats as float64 (IEEE: NaN equals nothing, ``NaN != x`` is true, ``-0.0 ==
0.0``); decimals exactly; strings by code point (enum/dictionary columns
compare as their strings); booleans with ``==``/``!=`` only; timestamps and
dates against ISO-8601 strings (``'2024-01-31T12:00:00Z'``; a literal without
an offset means UTC; a literal finer than the column's unit is refused) and
never against integers. Structs, lists, maps and bytes support only null
checks. A field whose name is a keyword (``in``, ``is``, ...) cannot be named.
"""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.errors import RuleError
from corridor.core.rules.check import (
    Cast,
    Cmp,
    Column,
    Const,
    FloatTest,
    IsNull,
    Member,
    Negate,
    Plan,
    check,
)
from corridor.core.rules.syntax import parse

__all__ = ["Rule", "compile_rule"]

_ARROW_CMP: dict[str, Callable[..., Any]] = {
    "==": pc.equal,
    "!=": pc.not_equal,
    "<": pc.less,
    "<=": pc.less_equal,
    ">": pc.greater,
    ">=": pc.greater_equal,
}
_PY_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "==": operator.eq,
    "!=": operator.ne,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}
_NULL_BOOL = pa.scalar(None, pa.bool_())
_ZERO = pa.scalar(0.0, pa.float64())


@dataclass(frozen=True)
class Rule:
    """A compiled rule. Build with ``compile_rule``; cheap to share between threads."""

    text: str
    fields: frozenset[str]  # dotted paths the rule reads
    expression: pc.Expression = field(
        compare=False
    )  # same logic, for pyarrow.dataset / acero pushdown
    plan: Plan = field(repr=False, compare=False)
    schema: pa.Schema = field(repr=False, compare=False)

    def evaluate_batch(self, batch: pa.RecordBatch) -> pa.BooleanArray:
        """One result per row: true, false or null (three-valued).

        ``batch`` must carry the fields the rule was compiled against with the
        same types; otherwise RuleError (a wiring bug, not a bad record).
        """
        result = _to_arrow(self.plan, lambda col: self._column(batch, col), _identity)
        if isinstance(result, pa.Scalar):  # a rule that reads no field
            return pa.array([result.as_py()] * batch.num_rows, pa.bool_())
        return result

    def evaluate(self, record: Mapping[str, Any]) -> bool | None:
        """The per-record reference: same answer as ``evaluate_batch`` for the row.

        ``record`` is a row as ``RecordBatch.to_pylist()`` gives it (nested
        records as dicts, enums as strings, timestamps as datetimes); a
        missing key reads as null.
        """
        result: bool | None = _to_python(self.plan, record)
        return result

    def _column(self, batch: pa.RecordBatch, col: Column) -> pa.Array:
        index = batch.schema.get_field_index(col.path[0])
        if index < 0:
            raise RuleError(self.text, f"batch has no field '{col.path[0]}'")
        array = batch.column(index)
        if len(col.path) > 1:
            array = pc.struct_field(array, list(col.path[1:]))
        if array.type != col.type:
            dotted = ".".join(col.path)
            raise RuleError(
                self.text, f"batch field {dotted} is {array.type}, rule was compiled for {col.type}"
            )
        return array


def compile_rule(text: str, schema: pa.Schema) -> Rule:
    """Parse and type-check ``text`` against ``schema``; raises RuleError(rule, message, column)."""
    plan = check(parse(text), schema, text)
    expression = _to_arrow(plan, lambda col: pc.field(*col.path), pc.scalar)
    return Rule(text, frozenset(_paths(plan)), expression, plan, schema)


def _identity(value: pa.Scalar) -> pa.Scalar:
    return value


def _paths(plan: Plan) -> set[str]:
    if isinstance(plan, Column):
        return {".".join(plan.path)}
    if isinstance(plan, Const):
        return set()
    children = [getattr(plan, name) for name in ("operand", "left", "right") if hasattr(plan, name)]
    return set().union(*(_paths(c) for c in children))


def _to_arrow(plan: Plan, leaf: Callable[[Column], Any], const: Callable[[pa.Scalar], Any]) -> Any:
    """Build the plan with pyarrow.compute. ``leaf``/``const`` make arrays and scalars
    (batch evaluation) or field refs and literals (an Expression): the kernels
    accept both, so one builder serves both and they cannot drift apart."""

    def member(p: Member, x: Any) -> Any:
        if pa.types.is_floating(p.value_set.type):
            x = pc.add(x, const(_ZERO))  # -0.0 + 0.0 == 0.0: is_in hashes bits
        # is_in says false for null; SQL (and the reference) say null.
        return pc.if_else(pc.is_null(x), const(_NULL_BOOL), pc.is_in(x, value_set=p.value_set))

    def build(p: Plan) -> Any:
        if isinstance(p, Column):
            return leaf(p)
        if isinstance(p, Const):
            return const(p.scalar)
        if isinstance(p, Cast):
            return build(p.operand).cast(p.type, safe=False)
        if isinstance(p, Cmp):
            left, right = build(p.left), build(p.right)
            if isinstance(left, pa.DictionaryArray) and isinstance(right, pa.Scalar):
                return pc.take(_ARROW_CMP[p.op](left.dictionary, right), left.indices)
            if isinstance(right, pa.DictionaryArray) and isinstance(left, pa.Scalar):
                return pc.take(_ARROW_CMP[p.op](left, right.dictionary), right.indices)
            return _ARROW_CMP[p.op](left, right)
        if isinstance(p, Member):
            x = build(p.operand)
            if isinstance(x, pa.DictionaryArray):  # noqa: SIM108 (decide once per distinct value)
                found = pc.take(member(p, x.dictionary), x.indices)
            else:
                found = member(p, x)
            return pc.invert(found) if p.negated else found
        if isinstance(p, IsNull):
            x = build(p.operand)
            return pc.is_valid(x) if p.negated else pc.is_null(x)
        if isinstance(p, FloatTest):
            return (pc.is_nan if p.func == "is_nan" else pc.is_finite)(build(p.operand))
        if isinstance(p, Negate):
            return pc.invert(build(p.operand))
        combine = pc.and_kleene if p.op == "and" else pc.or_kleene
        return combine(build(p.left), build(p.right))

    return build(plan)


def _to_python(plan: Plan, record: Mapping[str, Any]) -> Any:
    """The reference evaluator: plain Python, one record, same plan."""
    if isinstance(plan, Column):
        value: Any = record
        for name in plan.path:
            value = value.get(name) if isinstance(value, Mapping) else None
        return value
    if isinstance(plan, Const):
        return plan.value
    if isinstance(plan, Cast):
        v = _to_python(plan.operand, record)
        return None if v is None else (float(v) if plan.kind == "float" else int(v))
    if isinstance(plan, Cmp):
        a, b = _to_python(plan.left, record), _to_python(plan.right, record)
        return None if a is None or b is None else _PY_CMP[plan.op](a, b)
    if isinstance(plan, Member):
        v = _to_python(plan.operand, record)
        return None if v is None else (v in plan.values) != plan.negated
    if isinstance(plan, IsNull):
        return (_to_python(plan.operand, record) is None) != plan.negated
    if isinstance(plan, FloatTest):
        v = _to_python(plan.operand, record)
        return None if v is None else (math.isnan(v) if plan.func == "is_nan" else math.isfinite(v))
    if isinstance(plan, Negate):
        v = _to_python(plan.operand, record)
        return None if v is None else not v
    return _kleene(plan.op, _to_python(plan.left, record), _to_python(plan.right, record))


def _kleene(op: str, a: bool | None, b: bool | None) -> bool | None:
    dominant = op == "or"  # true decides an 'or', false decides an 'and'
    if a is dominant or b is dominant:
        return dominant
    if a is None or b is None:
        return None
    return not dominant
