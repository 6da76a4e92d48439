"""Syntax tree + Arrow schema -> typed plan: fields resolved, literals converted, casts explicit.

The plan is what both evaluators in ``corridor.core.rules`` walk: the Arrow one
(vectorised, over a batch) and the pure-Python reference (over one record).
Every decision that could make them disagree is taken here, once: the type a
comparison happens in (``kind``), the exact value of each literal, and which
side gets cast. Type errors raise ``RuleError`` with the column of the operand
that does not fit.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any

import pyarrow as pa

from corridor.core.errors import RuleError
from corridor.core.rules.syntax import (
    Compare,
    FieldRef,
    FloatCheck,
    InList,
    Literal,
    Node,
    Not,
    NullCheck,
)

# Kinds: the domain a value is compared in. "other" values (struct, list, map,
# binary, ...) support only null checks.
ORDERED = frozenset({"int", "float", "decimal", "string", "timestamp", "date"})
NUMERIC = frozenset({"int", "float"})
_MAX_DECIMAL_DIGITS = 38
_LITERAL_NAMES = {"string": "string", "int": "integer", "float": "float", "bool": "boolean"}


@dataclass(frozen=True)
class Column:
    path: tuple[str, ...]
    type: pa.DataType
    kind: str


@dataclass(frozen=True)
class Const:
    scalar: pa.Scalar  # Arrow value, typed for the comparison it takes part in
    value: Any  # the same value as the Python reference sees it
    kind: str


@dataclass(frozen=True)
class Cast:
    operand: Plan
    type: pa.DataType  # float64 or int64
    kind: str


@dataclass(frozen=True)
class Cmp:
    op: str
    left: Plan
    right: Plan
    kind: str = "bool"


@dataclass(frozen=True)
class Member:
    operand: Plan
    value_set: pa.Array  # no nulls, no NaN, no -0.0 (normalised to 0.0)
    values: frozenset[Any]
    negated: bool
    kind: str = "bool"


@dataclass(frozen=True)
class IsNull:
    operand: Plan
    negated: bool
    kind: str = "bool"


@dataclass(frozen=True)
class FloatTest:
    func: str  # "is_nan" | "is_finite"
    operand: Plan
    kind: str = "bool"


@dataclass(frozen=True)
class Negate:
    operand: Plan
    kind: str = "bool"


@dataclass(frozen=True)
class Logic:
    op: str  # "and" | "or"
    left: Plan
    right: Plan
    kind: str = "bool"


Plan = Column | Const | Cast | Cmp | Member | IsNull | FloatTest | Negate | Logic


def kind_of(t: pa.DataType) -> str:
    """The comparison domain of an Arrow type (see module docstring)."""
    if pa.types.is_dictionary(t):
        return (
            "string"
            if pa.types.is_string(t.value_type) or pa.types.is_large_string(t.value_type)
            else "other"
        )
    if pa.types.is_integer(t):
        return "other" if t == pa.uint64() else "int"  # uint64 does not fit the int64 domain
    if pa.types.is_float32(t) or pa.types.is_float64(t):
        return "float"
    if pa.types.is_decimal128(t):
        return "decimal"
    if pa.types.is_string(t) or pa.types.is_large_string(t):
        return "string"
    if pa.types.is_boolean(t):
        return "bool"
    if pa.types.is_timestamp(t) and t.unit != "ns":  # ns has no exact Python datetime
        return "timestamp"
    if pa.types.is_date(t):
        return "date"
    return "other"


def describe_type(t: pa.DataType) -> str:
    if pa.types.is_dictionary(t):
        return "enum"
    return str(t)


def check(node: Node, schema: pa.Schema, text: str) -> Plan:
    """Type-check a whole rule; the result is a condition (kind "bool")."""
    checker = _Checker(schema, text)
    plan = checker.check(node)
    checker.need_bool(plan, node, "a rule must be a condition (true or false)")
    return plan


class _Checker:
    def __init__(self, schema: pa.Schema, text: str) -> None:
        self.schema = schema
        self.text = text

    def fail(self, message: str, column: int) -> RuleError:
        return RuleError(self.text, message, column)

    def check(self, node: Node) -> Plan:
        if isinstance(node, FieldRef):
            return self.field(node)
        if isinstance(node, Literal):
            try:
                return _plain_const(node)
            except ValueError as exc:
                raise self.fail(str(exc), node.column) from None
        if isinstance(node, Compare):
            return self.compare(node)
        if isinstance(node, InList):
            return self.member(node)
        if isinstance(node, NullCheck):
            return IsNull(self.check(node.operand), node.negated)
        if isinstance(node, FloatCheck):
            operand = self.check(node.operand)
            if operand.kind != "float":
                what = self.subject(node.operand, operand)
                raise self.fail(f"{node.func}() needs a float field; {what}", node.column)
            return FloatTest(node.func, operand)
        if isinstance(node, Not):
            operand = self.check(node.operand)
            self.need_bool(operand, node.operand, "'not' needs a condition")
            return Negate(operand)
        left, right = self.check(node.left), self.check(node.right)
        self.need_bool(left, node.left, f"'{node.op}' needs conditions on both sides")
        self.need_bool(right, node.right, f"'{node.op}' needs conditions on both sides")
        return Logic(node.op, left, right)

    def need_bool(self, plan: Plan, node: Node, message: str) -> None:
        if plan.kind != "bool":
            raise self.fail(f"{message}; {self.subject(node, plan)}", node.column)

    def subject(self, node: Node, plan: Plan) -> str:
        """'x is double' / 'got integer 5' / 'got a condition', for messages."""
        if isinstance(node, FieldRef) and isinstance(plan, Column):
            return f"{node.dotted} is {describe_type(plan.type)}"
        return f"got {_label(node, plan)}"

    # -- fields

    def field(self, ref: FieldRef) -> Column:
        fields: list[pa.Field] = list(self.schema)
        where = ""
        t: pa.DataType | None = None
        for depth, name in enumerate(ref.path):
            match = [f for f in fields if f.name == name]
            if not match:
                known = ", ".join(f.name for f in fields[:8]) + (", ..." if len(fields) > 8 else "")
                full = ".".join(ref.path[: depth + 1])
                raise self.fail(f"unknown field '{full}'{where} (known: {known})", ref.column)
            t = match[0].type
            if depth + 1 < len(ref.path):
                parent = ".".join(ref.path[: depth + 1])
                if not pa.types.is_struct(t):
                    raise self.fail(
                        f"{parent} is {describe_type(t)}, not a record; cannot read '{ref.dotted}'",
                        ref.column,
                    )
                fields = [t.field(i) for i in range(t.num_fields)]
                where = f" in {parent}"
        assert t is not None
        return Column(ref.path, t, kind_of(t))

    # -- comparisons

    def compare(self, node: Compare) -> Plan:
        left, right = self.check(node.left), self.check(node.right)
        if isinstance(node.right, Literal) and not isinstance(node.left, Literal):
            left, right = self.against_literal(left, node.left, node.right)
        elif isinstance(node.left, Literal) and not isinstance(node.right, Literal):
            right, left = self.against_literal(right, node.right, node.left)
        else:
            left, right = self.pair(left, right, node)
        if node.op not in ("==", "!=") and left.kind not in ORDERED:
            what = self.subject(node.left, left)
            raise self.fail(f"'{node.op}' needs ordered values; {what} (use == or !=)", node.column)
        return _simplify(Cmp(node.op, left, right))

    def against_literal(self, plan: Plan, node: Node, lit: Literal) -> tuple[Plan, Const]:
        """Convert a literal to the domain of the other operand, casting the operand if needed."""
        kind = "float" if plan.kind == "int" and lit.kind == "float" else plan.kind
        const = self.convert(lit, kind, plan, node)
        return _widen(plan, kind), const

    def convert(self, lit: Literal, kind: str, plan: Plan, node: Node) -> Const:
        ok = (
            lit.kind == kind
            or (kind == "float" and lit.kind == "int")
            or (kind == "decimal" and lit.kind in NUMERIC)
            or (kind in ("timestamp", "date") and lit.kind == "string")
        )
        if not ok:
            hint = ""
            if kind in ("timestamp", "date"):
                hint = "; write an ISO-8601 string such as '2024-01-31T00:00:00Z'"
            if kind == "other":
                hint = "; only 'is null' / 'is not null' apply to it"
            raise self.fail(
                f"{self.subject(node, plan)}, cannot compare to {_literal_name(lit)}{hint}",
                lit.column,
            )
        try:
            return _convert(lit, kind, plan)
        except ValueError as exc:
            raise self.fail(str(exc), lit.column) from None

    def pair(self, left: Plan, right: Plan, node: Compare) -> tuple[Plan, Plan]:
        """Two non-literal operands (or two literals): they must share a domain."""
        lk, rk = left.kind, right.kind
        if lk in NUMERIC and rk in NUMERIC:
            kind = "float" if "float" in (lk, rk) else "int"
            return _widen(left, kind), _widen(right, kind)
        problem = ""
        if lk != rk or lk == "other":
            problem = "different kinds of value" if lk != rk else "only 'is null' applies to these"
        elif lk == "decimal" and not _decimal_fits(left, right):
            problem = "too many digits for a common decimal type"
        elif lk in ("timestamp", "date") and _type(left) != _type(right):
            problem = "different units"
        if problem:
            a, b = _label(node.left, left), _label(node.right, right)
            raise self.fail(f"cannot compare {a} with {b}: {problem}", node.right.column)
        return left, right

    # -- membership

    def member(self, node: InList) -> Plan:
        operand = self.check(node.operand)
        if not node.values:
            raise self.fail("empty list", node.column)
        kind = operand.kind
        if kind == "int" and any(v.kind == "float" for v in node.values):
            kind = "float"
        consts = [self.convert(v, kind, operand, node.operand) for v in node.values]
        operand = _widen(operand, kind)
        if kind == "decimal":
            # Decimal literals may have more digits than the column: Arrow's is_in
            # would cast them to the column type, so compare one by one instead.
            plan: Plan = Cmp("==", operand, consts[0])
            for c in consts[1:]:
                plan = Logic("or", plan, Cmp("==", operand, c))
            return Negate(plan) if node.negated else plan
        values = [c.value for c in consts]
        value_set = pa.array(values, type=consts[0].scalar.type)
        return Member(operand, value_set, frozenset(values), node.negated)


def _simplify(cmp: Cmp) -> Plan:
    """``x == true`` is ``x`` and ``x == false`` is ``not x`` under Kleene logic too;
    Arrow's invert is several times faster than comparing booleans."""
    if cmp.left.kind != "bool":
        return cmp
    for operand, other in ((cmp.left, cmp.right), (cmp.right, cmp.left)):
        if isinstance(other, Const) and not isinstance(operand, Const):
            return operand if (other.value is True) == (cmp.op == "==") else Negate(operand)
    return cmp


def _label(node: Node, plan: Plan) -> str:
    if isinstance(node, FieldRef) and isinstance(plan, Column):
        return f"{node.dotted} ({describe_type(plan.type)})"
    if isinstance(node, Literal):
        return _literal_name(node)
    return "a condition" if plan.kind == "bool" else f"a {plan.kind} value"


def _literal_name(lit: Literal) -> str:
    shown = repr(lit.value) if lit.kind == "string" else lit.text
    return f"{_LITERAL_NAMES[lit.kind]} {shown}"


def _plain_const(lit: Literal) -> Const:
    types = {"string": pa.string(), "int": pa.int64(), "float": pa.float64(), "bool": pa.bool_()}
    if lit.kind == "int" and not -(2**63) <= int(lit.value) < 2**63:
        raise ValueError(f"integer {lit.text} is out of range")
    value: Any = lit.value + 0.0 if lit.kind == "float" else lit.value  # type: ignore[operator]
    return Const(pa.scalar(value, types[lit.kind]), value, lit.kind)


def _widen(plan: Plan, kind: str) -> Plan:
    """Cast an int operand to the int64 / float64 domain explicitly; Arrow's implicit
    casts refuse ints above 2**53 against floats, and float32 against ints."""
    target = {"int": pa.int64(), "float": pa.float64()}.get(kind)
    if isinstance(plan, Const) and kind == "float" and plan.kind == "int":
        return Const(pa.scalar(float(plan.value)), float(plan.value), kind)
    if target is None or not isinstance(plan, (Column, Cast)) or plan.type == target:
        return plan
    return Cast(plan, target, kind)


def _convert(lit: Literal, kind: str, plan: Plan) -> Const:
    """A literal as a Const of domain ``kind``; ValueError says why it cannot be."""
    if kind == "int":
        if not -(2**63) <= int(lit.value) < 2**63:
            raise ValueError(f"integer {lit.text} is out of range")
        return Const(pa.scalar(int(lit.value), pa.int64()), int(lit.value), kind)
    if kind == "float":
        value = float(lit.value) + 0.0  # -0.0 -> 0.0: Arrow's is_in tells them apart
        return Const(pa.scalar(value, pa.float64()), value, kind)
    if kind == "decimal":
        return _decimal_const(lit, plan)
    if kind == "timestamp":
        assert isinstance(plan, Column)
        stamp = _parse_timestamp(str(lit.value), plan.type)
        return Const(pa.scalar(stamp, plan.type), stamp, kind)
    if kind == "date":
        assert isinstance(plan, Column)
        try:
            day = dt.date.fromisoformat(str(lit.value))
        except ValueError:
            raise ValueError(
                f"{lit.value!r} is not an ISO-8601 date such as '2024-01-31'"
            ) from None
        return Const(pa.scalar(day, plan.type), day, kind)
    return _plain_const(lit)


def _parse_timestamp(text: str, t: pa.TimestampType) -> dt.datetime:
    try:
        stamp = dt.datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"{text!r} is not an ISO-8601 timestamp such as '2024-01-31T12:00:00Z'"
        ) from None
    # Naive literals mean UTC: every corridor timestamp is UTC (the Arrow mapping in corridor/core/schema.py).
    if stamp.tzinfo is None:
        stamp = stamp.replace(tzinfo=dt.UTC)
    if t.tz is None:
        stamp = stamp.astimezone(dt.UTC).replace(tzinfo=None)
    step = {"s": 1_000_000, "ms": 1_000, "us": 1}[t.unit]
    if stamp.microsecond % step:
        raise ValueError(f"{text!r} is finer than the field's unit ({t.unit})")
    return stamp


def _decimal_const(lit: Literal, plan: Plan) -> Const:
    try:
        value = Decimal(lit.text)
    except InvalidOperation:
        raise ValueError(f"{lit.text} is not a decimal number") from None
    _, digits, exponent = value.as_tuple()
    assert isinstance(exponent, int)
    if exponent > 0:
        value = value.quantize(Decimal(1))
        _, digits, exponent = value.as_tuple()
        assert isinstance(exponent, int)
    scale = -exponent
    precision = max(len(digits), scale, 1)
    t = pa.decimal128(precision, scale) if precision <= _MAX_DECIMAL_DIGITS else None
    const = Const(pa.scalar(value, t), value, "decimal") if t is not None else None
    if const is None or not _decimal_fits(plan, const):
        raise ValueError(
            f"decimal {lit.text} has too many digits to compare with {describe_type(_type(plan))}"
        )
    return const


def _type(plan: Plan) -> pa.DataType:
    return (
        plan.type
        if isinstance(plan, (Column, Cast))
        else plan.scalar.type
        if isinstance(plan, Const)
        else pa.bool_()
    )


def _decimal_fits(a: Plan, b: Plan) -> bool:
    """Arrow compares decimals at a common scale; the result must stay within 38 digits."""
    ta, tb = _type(a), _type(b)
    if not (pa.types.is_decimal128(ta) and pa.types.is_decimal128(tb)):
        return False
    scale = max(ta.scale, tb.scale)
    whole = max(ta.precision - ta.scale, tb.precision - tb.scale)
    return bool(whole + scale <= _MAX_DECIMAL_DIGITS)
