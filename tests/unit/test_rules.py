"""Rules: parsing, precedence, errors with their columns, and three ways of evaluating.

The property test checks, for random rules over random batches, that
``evaluate_batch``, the pc.Expression (run by pyarrow.dataset), the per-record
reference ``evaluate`` and an independent oracle written here all agree row
by row.
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import pyarrow as pa
import pyarrow.dataset as ds
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from corridor.errors import RuleError
from corridor.rules import compile_rule
from corridor.rules_syntax import BoolOp, Compare, FieldRef, FloatCheck, InList, Literal, Node, Not, NullCheck, parse

UTC = dt.timezone.utc
ENUM = pa.dictionary(pa.int32(), pa.string())
LOC = pa.struct([("port", pa.string()), ("depth", pa.int64()), ("w", pa.float64())])
SCHEMA = pa.schema([
    ("i", pa.int64()), ("j", pa.int32()), ("f", pa.float64()), ("g", pa.float32()),
    ("s", pa.string()), ("b", pa.bool_()), ("e", ENUM), ("loc", LOC),
    ("d", pa.decimal128(10, 2)), ("ts", pa.timestamp("ms", tz="UTC")), ("day", pa.date32()),
    ("tags", pa.list_(pa.string())),
])


def make_batch(rows: list[dict[str, Any]]) -> pa.RecordBatch:
    columns = []
    for fld in SCHEMA:
        values = [r.get(fld.name) for r in rows]
        if fld.type == ENUM:
            columns.append(pa.array(values, pa.string()).dictionary_encode().cast(ENUM))
        else:
            columns.append(pa.array(values, fld.type))
    return pa.RecordBatch.from_arrays(columns, schema=SCHEMA)


def run_all(text: str, batch: pa.RecordBatch) -> tuple[list[Any], list[Any], list[Any]]:
    rule = compile_rule(text, batch.schema)
    fast = rule.evaluate_batch(batch)
    assert fast.type == pa.bool_() and len(fast) == batch.num_rows
    pushed = ds.dataset(batch).to_table(columns={"r": rule.expression}).column("r").to_pylist()
    reference = [rule.evaluate(row) for row in batch.to_pylist()]
    return fast.to_pylist(), pushed, reference


# ---------------------------------------------------------------- parsing


def show(node: Node) -> str:
    """Fully parenthesised rendering of a syntax tree."""
    if isinstance(node, FieldRef):
        return node.dotted
    if isinstance(node, Literal):
        return repr(node.value)
    if isinstance(node, Compare):
        return f"({show(node.left)} {node.op} {show(node.right)})"
    if isinstance(node, InList):
        op = "not in" if node.negated else "in"
        return f"({show(node.operand)} {op} [{', '.join(repr(v.value) for v in node.values)}])"
    if isinstance(node, NullCheck):
        return f"({show(node.operand)} is {'not ' if node.negated else ''}null)"
    if isinstance(node, FloatCheck):
        return f"{node.func}({show(node.operand)})"
    if isinstance(node, Not):
        return f"(not {show(node.operand)})"
    assert isinstance(node, BoolOp)
    return f"({show(node.left)} {node.op} {show(node.right)})"


@pytest.mark.parametrize(("text", "tree"), [
    ("a or b and c", "(a or (b and c))"),
    ("a and b or c", "((a and b) or c)"),
    ("a or b or c", "((a or b) or c)"),
    ("not a and b", "((not a) and b)"),
    ("not not a", "(not (not a))"),
    ("not a == 1 or b", "((not (a == 1)) or b)"),
    ("(a or b) and c", "((a or b) and c)"),
    ("a AND NOT b Or c", "((a and (not b)) or c)"),
    ("x in ['CN', \"HK\",]", "(x in ['CN', 'HK'])"),
    ("x not in [1, -2, 3.5e1]", "(x not in [1, -2, 35.0])"),
    ("x is null and y is not null", "((x is null) and (y is not null))"),
    ("is_null(x) or is_not_null(y.z)", "((x is null) or (y.z is not null))"),
    ("is_nan(f) or IS_FINITE(f)", "(is_nan(f) or is_finite(f))"),
    ("location.port == 'HKG'", "(location.port == 'HKG')"),
    ("a>=-1.5e-3", "(a >= -0.0015)"),
    ("'it\\'s' != \"say \\\"hi\\\"\\n\\u00e9\"", "(\"it's\" != 'say \"hi\"\\né')"),
    ("\n  a == 1\n  and b\n", "((a == 1) and b)"),
    ("true or false", "(True or False)"),
])
def test_parse_precedence(text: str, tree: str) -> None:
    assert show(parse(text)) == tree


def test_parse_columns_point_at_tokens() -> None:
    node = parse("a == 1 or  b")
    assert isinstance(node, BoolOp) and node.column == 8
    assert isinstance(node.left, Compare) and node.left.column == 3
    assert isinstance(node.right, FieldRef) and node.right.column == 12


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(("text", "message", "column"), [
    # syntax
    ("", "empty rule", 1),
    ("(i == 1", "expected ')', got end of rule", 8),
    ("i == 1)", "unexpected ')'", 7),
    ("i == 1 s", "unexpected 's'", 8),
    ("i = 1", "unexpected character '='; use '==' to compare", 3),
    ("i == 1 && b", "unexpected character '&'; use 'and'", 8),
    ("!b", "unexpected character '!'; use 'not' or '!='", 1),
    ("i < 1 < 2", "comparisons do not chain", 7),
    ("s == 'abc", "unterminated string", 6),
    ("s == 'a\\qb'", "unknown escape '\\q'", 8),
    ("i == 12ab", "invalid number '12ab'", 6),
    ("i == - s", "expected a number after '-', got 's'", 8),
    ("s in 'a'", "expected '[' to start a list, got string 'a'", 6),
    ("s in ['a' 'b']", "expected ',' or ']', got string 'b'", 11),
    ("s in ['a', null]", "null is not allowed in a list", 12),
    ("s == null", "null can only be tested with 'x is null'", 6),
    ("s is nul", "expected 'null' after 'is', got 'nul'", 6),
    ("i ==", "expected a field, a value or '(', got end of rule", 5),
    ("loc. == 1", "expected a field name after 'loc.'", 5),
    ("foo(i)", "unknown function 'foo' (known: is_finite, is_nan, is_not_null, is_null)", 1),
    ("is_null()", "is_null() takes one argument", 9),
    ("is_nan(f, g)", "is_nan() takes one argument", 9),
    # names
    ("foo == 1", "unknown field 'foo' (known: i, j, f, g, s, b, e, loc, ...)", 1),
    ("b and loc.nope > 1", "unknown field 'loc.nope' in loc (known: port, depth, w)", 7),
    ("i.x == 1", "i is int64, not a record; cannot read 'i.x'", 1),
    # types
    ("f == 'x'", "f is double, cannot compare to string 'x'", 6),
    ("'x' < i", "i is int64, cannot compare to string 'x'", 1),
    ("s == 1", "s is string, cannot compare to integer 1", 6),
    ("e in ['a', 2]", "e is enum, cannot compare to integer 2", 12),
    ("b == 1", "b is bool, cannot compare to integer 1", 6),
    ("b < true", "'<' needs ordered values; b is bool (use == or !=)", 3),
    ("i == s", "cannot compare i (int64) with s (string): different kinds of value", 6),
    ("d == f", "cannot compare d (decimal128(10, 2)) with f (double): different kinds of value", 6),
    ("loc == 1", "loc is struct<port: string, depth: int64, w: double>, cannot compare to integer 1", 8),
    ("tags == tags", "only 'is null' applies to these", 9),
    ("is_nan(i)", "is_nan() needs a float field; i is int64", 1),
    ("is_finite(s)", "is_finite() needs a float field; s is string", 1),
    ("i", "a rule must be a condition (true or false); i is int64", 1),
    ("not s", "'not' needs a condition; s is string", 5),
    ("b and 1", "'and' needs conditions on both sides; got integer 1", 7),
    ("i == 1 or f", "'or' needs conditions on both sides; f is double", 11),
    ("i in []", "empty list", 3),
    ("i == 9223372036854775808", "integer 9223372036854775808 is out of range", 6),
    ("ts > 5", "ts is timestamp[ms, tz=UTC], cannot compare to integer 5; write an ISO-8601 string", 6),
    ("ts > '31/01/2024'", "'31/01/2024' is not an ISO-8601 timestamp", 6),
    ("ts > '2024-01-01T00:00:00.0001Z'", "finer than the field's unit (ms)", 6),
    ("day == '2024-02-30'", "is not an ISO-8601 date", 8),
    ("d > 1.234567890123456789012345678901234567", "has too many digits", 5),
])
def test_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(RuleError) as info:
        compile_rule(text, SCHEMA)
    err = info.value
    assert message in err.message
    assert err.column == column
    assert err.rule == text


# ---------------------------------------------------------------- semantics

ROWS: list[dict[str, Any]] = [
    {"i": 2**53 + 1, "j": 1, "f": math.nan, "g": 0.5, "s": "HK", "b": True, "e": "strategic",
     "loc": {"port": "HKG", "depth": 12, "w": -0.0}, "d": Decimal("1.25"),
     "ts": dt.datetime(2024, 1, 31, 12, 0, tzinfo=UTC), "day": dt.date(2024, 1, 31), "tags": ["x"]},
    {"i": -1, "j": None, "f": -0.0, "g": None, "s": "é", "b": False, "e": "bulk",
     "loc": None, "d": Decimal("-3.00"), "ts": None, "day": None, "tags": None},
    {"i": None, "j": 7, "f": math.inf, "g": 1.5, "s": None, "b": None, "e": None,
     "loc": {"port": None, "depth": None, "w": math.nan}, "d": None,
     "ts": dt.datetime(1970, 1, 1, tzinfo=UTC), "day": dt.date(1970, 1, 1), "tags": []},
]


@pytest.mark.parametrize(("text", "expected"), [
    ("b == false or e == 'strategic'", [True, True, None]),
    ("b == true", [True, False, None]),
    ("b != true", [False, True, None]),
    ("not b", [False, True, None]),
    ("b and i > 0", [True, False, None]),
    ("b or i > 0", [True, False, None]),
    ("f >= 0 and not is_nan(f)", [False, True, True]),
    ("is_nan(f)", [True, False, False]),
    ("is_finite(loc.w)", [True, None, False]),
    ("f == f", [False, True, True]),
    ("f != f", [True, False, False]),
    ("f == 0", [False, True, False]),
    ("f in [0.0]", [False, True, False]),
    ("loc.w in [-0.0, 3]", [True, None, False]),
    ("i == 9007199254740992.0", [True, False, None]),  # int vs float compares as float64, like Arrow
    ("i == 9007199254740993", [True, False, None]),
    ("i in [9007199254740993, -1]", [True, True, None]),
    ("i not in [-1]", [True, False, None]),
    ("s in ['HK', 'CN']", [True, False, None]),
    ("s > 'z'", [False, True, None]),  # code-point order, as UTF-8 bytes
    ("e in ['bulk'] or e == 'strategic'", [True, True, None]),
    ("e < 'c'", [False, True, None]),
    ("e == s", [False, False, None]),
    ("loc.port == 'HKG'", [True, None, None]),
    ("loc is null", [False, True, False]),
    ("is_not_null(loc.port)", [True, False, False]),
    ("j < g", [False, None, False]),
    ("d > 1.2", [True, False, None]),
    ("d == 1.250", [True, False, None]),
    ("d in [-3, 7]", [False, True, None]),
    ("ts >= '2024-01-31T20:00:00+08:00'", [True, None, False]),
    ("ts < '2024-01-31'", [False, None, True]),
    ("day == '2024-01-31'", [True, None, False]),
    ("tags is not null", [True, False, True]),
    ("true", [True, True, True]),
    ("1 == 1.0 and not 'a' > 'b'", [True, True, True]),
])
def test_semantics(text: str, expected: list[Any]) -> None:
    fast, pushed, reference = run_all(text, make_batch(ROWS))
    assert fast == expected
    assert pushed == expected
    assert reference == expected


@pytest.mark.parametrize("a", [True, False, None])
@pytest.mark.parametrize("b", [True, False, None])
def test_kleene_truth_tables(a: bool | None, b: bool | None) -> None:
    batch = pa.RecordBatch.from_pydict({"x": pa.array([a], pa.bool_()), "y": pa.array([b], pa.bool_())})
    expect_and = False if False in (a, b) else None if None in (a, b) else True
    expect_or = True if True in (a, b) else None if None in (a, b) else False
    for text, expected in (("x and y", expect_and), ("x or y", expect_or), ("not x", None if a is None else not a)):
        assert run_all(text, batch) == ([expected], [expected], [expected])


def test_rule_value_and_fields() -> None:
    rule = compile_rule("b == false or loc.port in ['HKG'] or is_nan(loc.w)", SCHEMA)
    assert rule.fields == frozenset({"b", "loc.port", "loc.w"})
    assert rule.text == "b == false or loc.port in ['HKG'] or is_nan(loc.w)"
    assert rule == compile_rule(rule.text, SCHEMA)  # equal by text and fields
    assert rule.expression.equals(compile_rule(rule.text, SCHEMA).expression)


def test_batch_with_wrong_types_is_refused() -> None:
    rule = compile_rule("e == 'bulk'", SCHEMA)
    with pytest.raises(RuleError, match="batch field e is string"):
        rule.evaluate_batch(pa.RecordBatch.from_pydict({"e": pa.array(["bulk"])}))
    with pytest.raises(RuleError, match="batch has no field 'e'"):
        rule.evaluate_batch(pa.RecordBatch.from_pydict({"x": pa.array([1])}))


def test_plain_string_enum_schema_also_works() -> None:
    schema = pa.schema([("category", pa.string()), ("consent", pa.bool_())])
    batch = pa.RecordBatch.from_pydict({"category": ["strategic", None], "consent": [True, None]}, schema=schema)
    assert run_all("consent == false or category == 'strategic'", batch)[0] == [True, None]


def test_missing_key_in_record_reads_as_null() -> None:
    assert compile_rule("i > 0", SCHEMA).evaluate({}) is None
    assert compile_rule("loc.port is null", SCHEMA).evaluate({"loc": None}) is True
