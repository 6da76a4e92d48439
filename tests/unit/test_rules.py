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

from corridor.core.errors import RuleError
from corridor.core.rules import compile_rule
from corridor.core.rules.syntax import (
    BoolOp,
    Compare,
    FieldRef,
    FloatCheck,
    InList,
    Literal,
    Node,
    Not,
    NullCheck,
    parse,
)

UTC = dt.UTC
ENUM = pa.dictionary(pa.int32(), pa.string())
LOC = pa.struct([("port", pa.string()), ("depth", pa.int64()), ("w", pa.float64())])
SCHEMA = pa.schema(
    [
        ("i", pa.int64()),
        ("j", pa.int32()),
        ("f", pa.float64()),
        ("g", pa.float32()),
        ("s", pa.string()),
        ("b", pa.bool_()),
        ("e", ENUM),
        ("loc", LOC),
        ("d", pa.decimal128(10, 2)),
        ("ts", pa.timestamp("ms", tz="UTC")),
        ("day", pa.date32()),
        ("tags", pa.list_(pa.string())),
    ]
)


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


@pytest.mark.parametrize(
    ("text", "tree"),
    [
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
        ('\'it\\\'s\' != "say \\"hi\\"\\n\\u00e9"', '("it\'s" != \'say "hi"\\né\')'),
        ("\n  a == 1\n  and b\n", "((a == 1) and b)"),
        ("true or false", "(True or False)"),
    ],
)
def test_parse_precedence(text: str, tree: str) -> None:
    assert show(parse(text)) == tree


def test_parse_columns_point_at_tokens() -> None:
    node = parse("a == 1 or  b")
    assert isinstance(node, BoolOp) and node.column == 8
    assert isinstance(node.left, Compare) and node.left.column == 3
    assert isinstance(node.right, FieldRef) and node.right.column == 12


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
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
        (
            "d == f",
            "cannot compare d (decimal128(10, 2)) with f (double): different kinds of value",
            6,
        ),
        (
            "loc == 1",
            "loc is struct<port: string, depth: int64, w: double>, cannot compare to integer 1",
            8,
        ),
        ("tags == tags", "only 'is null' applies to these", 9),
        ("is_nan(i)", "is_nan() needs a float field; i is int64", 1),
        ("is_finite(s)", "is_finite() needs a float field; s is string", 1),
        ("i", "a rule must be a condition (true or false); i is int64", 1),
        ("not s", "'not' needs a condition; s is string", 5),
        ("b and 1", "'and' needs conditions on both sides; got integer 1", 7),
        ("i == 1 or f", "'or' needs conditions on both sides; f is double", 11),
        ("i in []", "empty list", 3),
        ("i == 9223372036854775808", "integer 9223372036854775808 is out of range", 6),
        (
            "ts > 5",
            "ts is timestamp[ms, tz=UTC], cannot compare to integer 5; write an ISO-8601 string",
            6,
        ),
        ("ts > '31/01/2024'", "'31/01/2024' is not an ISO-8601 timestamp", 6),
        ("ts > '2024-01-01T00:00:00.0001Z'", "finer than the field's unit (ms)", 6),
        ("day == '2024-02-30'", "is not an ISO-8601 date", 8),
        ("d > 1.234567890123456789012345678901234567", "has too many digits", 5),
    ],
)
def test_errors_say_what_and_where(text: str, message: str, column: int) -> None:
    with pytest.raises(RuleError) as info:
        compile_rule(text, SCHEMA)
    err = info.value
    assert message in err.message
    assert err.column == column
    assert err.rule == text


# ---------------------------------------------------------------- semantics

ROWS: list[dict[str, Any]] = [
    {
        "i": 2**53 + 1,
        "j": 1,
        "f": math.nan,
        "g": 0.5,
        "s": "HK",
        "b": True,
        "e": "strategic",
        "loc": {"port": "HKG", "depth": 12, "w": -0.0},
        "d": Decimal("1.25"),
        "ts": dt.datetime(2024, 1, 31, 12, 0, tzinfo=UTC),
        "day": dt.date(2024, 1, 31),
        "tags": ["x"],
    },
    {
        "i": -1,
        "j": None,
        "f": -0.0,
        "g": None,
        "s": "é",
        "b": False,
        "e": "bulk",
        "loc": None,
        "d": Decimal("-3.00"),
        "ts": None,
        "day": None,
        "tags": None,
    },
    {
        "i": None,
        "j": 7,
        "f": math.inf,
        "g": 1.5,
        "s": None,
        "b": None,
        "e": None,
        "loc": {"port": None, "depth": None, "w": math.nan},
        "d": None,
        "ts": dt.datetime(1970, 1, 1, tzinfo=UTC),
        "day": dt.date(1970, 1, 1),
        "tags": [],
    },
]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
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
        (
            "i == 9007199254740992.0",
            [True, False, None],
        ),  # int vs float compares as float64, like Arrow
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
    ],
)
def test_semantics(text: str, expected: list[Any]) -> None:
    fast, pushed, reference = run_all(text, make_batch(ROWS))
    assert fast == expected
    assert pushed == expected
    assert reference == expected


@pytest.mark.parametrize("a", [True, False, None])
@pytest.mark.parametrize("b", [True, False, None])
def test_kleene_truth_tables(a: bool | None, b: bool | None) -> None:
    batch = pa.RecordBatch.from_pydict(
        {"x": pa.array([a], pa.bool_()), "y": pa.array([b], pa.bool_())}
    )
    expect_and = False if False in (a, b) else None if None in (a, b) else True
    expect_or = True if True in (a, b) else None if None in (a, b) else False
    for text, expected in (
        ("x and y", expect_and),
        ("x or y", expect_or),
        ("not x", None if a is None else not a),
    ):
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
    batch = pa.RecordBatch.from_pydict(
        {"category": ["strategic", None], "consent": [True, None]}, schema=schema
    )
    assert run_all("consent == false or category == 'strategic'", batch)[0] == [True, None]


def test_missing_key_in_record_reads_as_null() -> None:
    assert compile_rule("i > 0", SCHEMA).evaluate({}) is None
    assert compile_rule("loc.port is null", SCHEMA).evaluate({"loc": None}) is True


# ---------------------------------------------------------------- property: four evaluators agree
#
# Random rules are generated together with an oracle: a Python function written
# here, independently of corridor.core.rules, from the documented semantics. Rules are
# printed with the fewest parentheses precedence allows (plus random extra ones),
# so a precedence bug shows up as a disagreement with the oracle.

Oracle = Callable[[dict[str, Any]], Any]
# text, precedence (0 or, 1 and, 2 not, 3 atom), oracle, and (text, oracle) of every
# sub-rule, which the test checks too: a wrong leaf is often masked by an or/and above it.
Expr = tuple[str, int, Oracle, tuple[tuple[str, Oracle], ...]]

PY_OPS: dict[str, Callable[[Any, Any], bool]] = {
    "==": lambda a, b: a == b,
    "!=": lambda a, b: a != b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
}
NUM_FIELDS = {"i": int, "j": int, "loc.depth": int, "f": float, "g": float, "loc.w": float}
FLOAT_FIELDS = ["f", "g", "loc.w"]
STR_FIELDS = ["s", "e", "loc.port"]
INT_LITS = [0, -1, 7, 2**53 + 1, -(2**63), 2**63 - 1]
FLOAT_LITS = [0.0, -0.0, 0.5, -1.5, 0.1, 1e308, 2.0**53]
STR_LITS = ["", "HK", "a", "b", "é", "it's", 'say "hi"', "strategic", "bulk", "HKG", "\n"]
DEC_LITS = ["0", "1.25", "-3", "0.005", "12345678.9", "1e2", "-0.00", "7"]
TS_LITS = [
    "1970-01-01T00:00:00Z",
    "2024-01-31T12:00:00.123+08:00",
    "2024-01-31",
    "2024-01-31T12:00:00",
    "2000-02-29T23:59:59.999Z",
]
NULLABLE_FIELDS = [
    "i",
    "j",
    "f",
    "g",
    "s",
    "b",
    "e",
    "loc",
    "loc.port",
    "loc.w",
    "d",
    "ts",
    "day",
    "tags",
]


def get(row: dict[str, Any], path: str) -> Any:
    value: Any = row
    for name in path.split("."):
        value = None if value is None else value[name]
    return value


def k_not(a: bool | None) -> bool | None:
    return None if a is None else not a


def k_and(a: bool | None, b: bool | None) -> bool | None:
    return False if False in (a, b) else None if None in (a, b) else True


def k_or(a: bool | None, b: bool | None) -> bool | None:
    return True if True in (a, b) else None if None in (a, b) else False


def quote(draw: st.DrawFn, text: str) -> str:
    q = draw(st.sampled_from("'\""))
    out = []
    for ch in text:
        if ch in ("\\", q):
            out.append("\\" + ch)
        elif ch == "\n":
            out.append(draw(st.sampled_from(["\\n", "\\u000a", "\\u000A"])))
        elif ord(ch) > 127 and draw(st.booleans()):
            out.append(f"\\u{ord(ch):04x}")
        else:
            out.append(ch)
    return q + "".join(out) + q


def stamp(text: str) -> dt.datetime:
    value = dt.datetime.fromisoformat(text)
    return value if value.tzinfo else value.replace(tzinfo=UTC)


FAMILIES = ["num", "num", "num", "str", "str", "dec", "ts", "bool"]


def literal(draw: st.DrawFn, family: str) -> tuple[Any, str]:
    """A literal of a family: (value as the oracle sees it, rule text)."""
    if family == "num":
        value = draw(st.sampled_from(INT_LITS + FLOAT_LITS))
        return value, repr(value)
    if family == "str":
        value = draw(st.sampled_from(STR_LITS))
        return value, quote(draw, value)
    if family == "dec":
        text = draw(st.sampled_from(DEC_LITS))
        return Decimal(text), text
    if family == "ts":
        text = draw(st.sampled_from(TS_LITS))
        return stamp(text), repr(text)
    value = draw(st.booleans())
    return value, str(value).lower()


def field_of(draw: st.DrawFn, family: str) -> str:
    pools = {
        "num": sorted(NUM_FIELDS),
        "str": STR_FIELDS,
        "dec": ["d"],
        "ts": ["ts"],
        "bool": ["b"],
    }
    return draw(st.sampled_from(pools[family]))


def domain(family: str, name: str, values: list[Any]) -> Callable[[Any], Any]:
    """How the oracle converts both sides before comparing (the documented domain)."""
    if family == "num":
        return (
            float if NUM_FIELDS[name] is float or any(isinstance(v, float) for v in values) else int
        )
    return {"str": str, "dec": Decimal, "ts": lambda v: v, "bool": bool}[family]


@st.composite
def operands(draw: st.DrawFn) -> tuple[str, Any, str, Callable[[Any], Any]]:
    """A field and a literal it can be compared with: (field, value, text, domain)."""
    family = draw(st.sampled_from(FAMILIES))
    name = field_of(draw, family)
    value, text = literal(draw, family)
    return name, value, text, domain(family, name, [value])


@st.composite
def comparisons(draw: st.DrawFn) -> Expr:
    name, value, text, conv = draw(operands())
    ops = ["==", "!="] if conv is bool else sorted(PY_OPS)
    op = draw(st.sampled_from(ops))
    if draw(st.booleans()):

        def fn(r: dict[str, Any]) -> Any:
            v = get(r, name)
            return None if v is None else PY_OPS[op](conv(v), conv(value))

        return f"{name} {op} {text}", 3, fn, ()

    def fn_swapped(r: dict[str, Any]) -> Any:
        v = get(r, name)
        return None if v is None else PY_OPS[op](conv(value), conv(v))

    return f"{text} {op} {name}", 3, fn_swapped, ()


@st.composite
def field_pairs(draw: st.DrawFn) -> Expr:
    if draw(st.booleans()):
        a, b = draw(st.sampled_from(sorted(NUM_FIELDS))), draw(st.sampled_from(sorted(NUM_FIELDS)))
        conv: Callable[[Any], Any] = float if float in (NUM_FIELDS[a], NUM_FIELDS[b]) else int
    else:
        a, b, conv = draw(st.sampled_from(STR_FIELDS)), draw(st.sampled_from(STR_FIELDS)), str
    op = draw(st.sampled_from(sorted(PY_OPS)))

    def fn(r: dict[str, Any]) -> Any:
        x, y = get(r, a), get(r, b)
        return None if x is None or y is None else PY_OPS[op](conv(x), conv(y))

    return f"{a} {op} {b}", 3, fn, ()


@st.composite
def memberships(draw: st.DrawFn) -> Expr:
    family = draw(st.sampled_from(FAMILIES))
    name = field_of(draw, family)
    items = [literal(draw, family) for _ in range(draw(st.integers(1, 4)))]
    values = [value for value, _ in items]
    conv = domain(family, name, values)
    negated = draw(st.booleans())

    def fn(r: dict[str, Any]) -> Any:
        v = get(r, name)
        if v is None:
            return None
        return any(conv(v) == conv(x) for x in values) != negated

    word = "not in" if negated else "in"
    return f"{name} {word} [{', '.join(text for _, text in items)}]", 3, fn, ()


@st.composite
def null_checks(draw: st.DrawFn) -> Expr:
    name = draw(st.sampled_from(NULLABLE_FIELDS))
    negated = draw(st.booleans())
    if draw(st.booleans()):
        text = f"is_{'not_' if negated else ''}null({name})"
    else:
        text = f"{name} is {'not ' if negated else ''}null"
    return text, 3, lambda r: (get(r, name) is None) != negated, ()


@st.composite
def float_checks(draw: st.DrawFn) -> Expr:
    name = draw(st.sampled_from(FLOAT_FIELDS))
    func = draw(st.sampled_from(["is_nan", "is_finite"]))
    test = math.isnan if func == "is_nan" else math.isfinite

    def fn(r: dict[str, Any]) -> Any:
        v = get(r, name)
        return None if v is None else test(v)

    return f"{func}({name})", 3, fn, ()


BARE_BOOLS: list[Expr] = [
    ("b", 3, lambda r: r["b"], ()),
    ("true", 3, lambda r: True, ()),
    ("false", 3, lambda r: False, ()),
]


def paren(draw: st.DrawFn, expr: Expr, min_prec: int) -> str:
    text, prec = expr[0], expr[1]
    return f"({text})" if prec < min_prec or draw(st.integers(0, 5)) == 0 else text


def parts(expr: Expr) -> tuple[tuple[str, Oracle], ...]:
    return ((expr[0], expr[2]), *expr[3])


@st.composite
def combined(draw: st.DrawFn, children: st.SearchStrategy[Expr]) -> Expr:
    kind = draw(st.sampled_from(["and", "or", "not"]))
    a = draw(children)
    if kind == "not":
        return f"not {paren(draw, a, 2)}", 2, lambda r: k_not(a[2](r)), parts(a)
    b = draw(children)
    prec = 1 if kind == "and" else 0
    text = f"{paren(draw, a, prec)} {kind} {paren(draw, b, prec + 1)}"
    join = k_and if kind == "and" else k_or
    return text, prec, lambda r: join(a[2](r), b[2](r)), parts(a) + parts(b)


# Comparisons and memberships carry most of the semantics: weight them up.
LEAVES = st.one_of(
    comparisons(),
    comparisons(),
    comparisons(),
    field_pairs(),
    memberships(),
    memberships(),
    null_checks(),
    float_checks(),
    st.sampled_from(BARE_BOOLS),
)
RULES = st.recursive(LEAVES, combined, max_leaves=8)


def maybe(strategy: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    return st.one_of(st.none(), strategy)


INTS = st.one_of(
    st.sampled_from(INT_LITS + [2**53]), st.sampled_from(INT_LITS), st.integers(-(2**63), 2**63 - 1)
)
FLOATS = st.one_of(
    st.sampled_from(FLOAT_LITS + [7.0, math.nan, math.inf, -math.inf]),
    st.sampled_from([0.0, -0.0]),
    st.floats(),
)
STRINGS = st.one_of(st.sampled_from(STR_LITS), st.text(alphabet="abHKé'\"\n", max_size=3))
ROW = st.fixed_dictionaries(
    {
        "i": maybe(INTS),
        "j": maybe(st.one_of(st.integers(-3, 13), st.integers(-(2**31), 2**31 - 1))),
        "f": maybe(FLOATS),
        "g": maybe(
            st.one_of(st.sampled_from([0.0, -0.0, 0.5, 1.5, 12.0, math.nan]), st.floats(width=32))
        ),
        "s": maybe(STRINGS),
        "b": maybe(st.booleans()),
        "e": maybe(st.sampled_from(["strategic", "bulk", "perishable", "HK"])),
        "loc": maybe(
            st.fixed_dictionaries(
                {"port": maybe(STRINGS), "depth": maybe(INTS), "w": maybe(FLOATS)}
            )
        ),
        "d": maybe(
            st.one_of(
                st.sampled_from(
                    [Decimal("1.25"), Decimal("-3.00"), Decimal("7.00"), Decimal("0.00")]
                ),
                st.decimals(
                    min_value=-(10**6),
                    max_value=10**6,
                    places=2,
                    allow_nan=False,
                    allow_infinity=False,
                ),
            )
        ),
        "ts": maybe(
            st.one_of(
                st.sampled_from([stamp(t) for t in TS_LITS]),
                st.datetimes(
                    dt.datetime(1970, 1, 1), dt.datetime(2100, 1, 1), timezones=st.just(UTC)
                ).map(lambda v: v.replace(microsecond=v.microsecond // 1000 * 1000)),
            )
        ),
        "day": maybe(st.dates(dt.date(1970, 1, 1), dt.date(2100, 1, 1))),
        "tags": maybe(st.lists(st.sampled_from(["x", "y"]), max_size=2)),
    }
)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rule=RULES, rows=st.lists(ROW, min_size=1, max_size=12))
def test_batch_expression_reference_and_oracle_agree(
    rule: Expr, rows: list[dict[str, Any]]
) -> None:
    batch = make_batch(rows)
    records = batch.to_pylist()
    for text, oracle in parts(rule):
        fast, pushed, reference = run_all(text, batch)
        for index, row in enumerate(records):
            expected = oracle(row)
            context = f"rule {text!r} row {index}: {row}"
            assert fast[index] is expected, context
            assert pushed[index] is expected, context
            assert reference[index] is expected, context


def test_empty_batch() -> None:
    assert run_all("i > 0 or e in ['bulk'] or b", make_batch([])) == ([], [], [])
