"""Policy stages on Arrow batches: classify, validate/withhold reasons, transforms."""

from __future__ import annotations

import io

import fastavro
import pyarrow as pa
import pyarrow.compute as pc
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.config import RecordKind, Transform
from corridor.core.crypto import FieldCipher, decrypt_column
from corridor.core.policy import (
    TransformContext,
    apply_transforms,
    important_mask,
    validate_reasons,
    withhold_reasons,
)
from corridor.core.policy.transform import replace_path
from corridor.core.policy.values import mask_column, mask_value, pseudonym, pseudonymize_column
from corridor.core.rules import compile_rule
from corridor.core.schema import parse_schema
from tests.unit.plan_fixtures import data_key

SCHEMA = parse_schema(
    {
        "type": "record",
        "name": "t",
        "namespace": "test",
        "fields": [
            {"name": "name", "type": ["null", "string"], "default": None},
            {"name": "amount", "type": ["null", "double"], "default": None},
            {"name": "kind", "type": {"type": "enum", "name": "Kind", "symbols": ["a", "b", "c"]}},
            {
                "name": "loc",
                "type": {
                    "type": "record",
                    "name": "Loc",
                    "fields": [
                        {"name": "port", "type": "string"},
                        {"name": "country", "type": "string"},
                    ],
                },
            },
        ],
    }
)
KEY = b"k" * 32


def batch(rows: list[dict[str, object]]) -> pa.RecordBatch:
    return pa.RecordBatch.from_pylist(rows, schema=SCHEMA.arrow)


ROWS = [
    {"name": "Ann Lee", "amount": 5.0, "kind": "a", "loc": {"port": "HKHKG", "country": "HK"}},
    {"name": None, "amount": -1.0, "kind": "b", "loc": {"port": "SGSIN", "country": "SG"}},
    {"name": "Bo", "amount": None, "kind": "c", "loc": {"port": "NLRTM", "country": "NL"}},
]


def test_important_null_counts_as_important() -> None:
    rule = compile_rule("amount > 0", SCHEMA.arrow)
    assert important_mask(batch(ROWS), rule).to_pylist() == [True, False, True]
    assert important_mask(batch(ROWS), None).to_pylist() == [False, False, False]


def test_validate_reasons_carry_rule_text_and_null_fails() -> None:
    rules = [
        compile_rule("amount >= 0", SCHEMA.arrow),
        compile_rule("name is not null", SCHEMA.arrow),
    ]
    assert validate_reasons(batch(ROWS), rules) == {
        1: "validate: amount >= 0",
        2: "validate: amount >= 0",  # null result fails
    }


def test_withhold_reasons_rule_null_and_class() -> None:
    rule = compile_rule("kind == 'b' or amount > 4", SCHEMA.arrow)
    important = pa.array([False, False, True])
    reasons = withhold_reasons(batch(ROWS), rule, important, frozenset({RecordKind.NORMAL}), "x-y")
    assert reasons == {
        0: "withhold: kind == 'b' or amount > 4",
        1: "withhold: kind == 'b' or amount > 4",
        2: "withhold: kind == 'b' or amount > 4 (evaluated to null)",
    }
    nothing = compile_rule("kind == 'a' and amount > 100", SCHEMA.arrow)
    reasons = withhold_reasons(
        batch(ROWS), nothing, important, frozenset({RecordKind.NORMAL}), "x-y"
    )
    assert reasons == {2: "class important not admitted by corridor x-y"}
    assert withhold_reasons(batch(ROWS), None, important, frozenset(RecordKind), "x-y") == {}


def test_mask_examples() -> None:
    values = ["alice@example.com", "+852 9123 4567", "abcd", "", None, "名前はとても長い"]
    assert mask_column(pa.array(values)).to_pylist() == [
        "***@example.com",
        "****4567",
        "****",
        "****",
        None,
        "****ても長い",
    ]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12), st.emails()), max_size=30))
def test_mask_column_matches_reference(values: list[str | None]) -> None:
    assert mask_column(pa.array(values, pa.string())).to_pylist() == [mask_value(v) for v in values]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=10)), max_size=40), st.integers(0, 5))
def test_pseudonymize_column_matches_reference(values: list[str | None], start: int) -> None:
    arr = pa.array(values, pa.string()).slice(min(start, len(values)))
    expected = [None if v is None else pseudonym(v.encode(), KEY) for v in arr.to_pylist()]
    assert pseudonymize_column(arr, KEY).to_pylist() == expected
    assert pseudonymize_column(arr.cast(pa.large_string()), KEY).to_pylist() == expected
    assert pseudonymize_column(arr.dictionary_encode(), KEY).to_pylist() == expected


def test_pseudonyms_are_keyed_tokens() -> None:
    tokens = pseudonymize_column(pa.array(["Ann", "Ann", "Bo", None]), KEY).to_pylist()
    assert tokens[0] == tokens[1] != tokens[2] and tokens[3] is None
    assert len(tokens[0]) == 20
    assert pseudonymize_column(pa.array(["Ann"]), b"j" * 32).to_pylist()[0] != tokens[0]
    ints = pseudonymize_column(pa.array([7, None], pa.int64()), KEY).to_pylist()
    assert ints[0] == pseudonym((7).to_bytes(8, "little"), KEY) and ints[1] is None


def test_nested_drop_mask_pseudonymize() -> None:
    b = batch(ROWS)
    dropped = replace_path(b, "loc.port", lambda arr: None)
    assert dropped.column("loc").type == pa.struct([pa.field("country", pa.string(), False)])
    assert dropped.column("loc").to_pylist()[0] == {"country": "HK"}
    ctx = TransformContext("x-y", "test.t", SCHEMA, pseudonym_key=KEY)
    out = apply_transforms(
        b,
        {"loc.port": Transform.MASK, "name": Transform.PSEUDONYMIZE, "amount": Transform.DROP},
        ctx,
    ).batch
    assert out.schema.names == ["name", "kind", "loc"]
    assert [r["port"] for r in out.column("loc").to_pylist()] == [
        "****KHKG",
        "****GSIN",
        "****LRTM",
    ]
    assert out.column("name").to_pylist() == [
        pseudonym(b"Ann Lee", KEY),
        None,
        pseudonym(b"Bo", KEY),
    ]


def test_transform_on_missing_field_is_a_no_op() -> None:
    b = batch(ROWS)
    assert replace_path(b, "nope", lambda arr: None).equals(b)
    assert replace_path(b, "loc.nope", lambda arr: None).column("loc").equals(b.column("loc"))


def test_encrypt_scalar_and_record_per_value() -> None:
    key = data_key("x-y")
    ctx = TransformContext("x-y", "test.t", SCHEMA, cipher=FieldCipher(key))
    out = apply_transforms(
        batch(ROWS), {"name": Transform.ENCRYPT, "loc": Transform.ENCRYPT}, ctx
    ).batch
    assert out.column("name").type == pa.binary() and out.column("name")[1].as_py() is None
    names = decrypt_column(
        out.column("name"),
        pa.string(),
        corridor="x-y",
        dataset="test.t",
        field="name",
        keys={key.key_id: key},
    )
    assert names.to_pylist() == ["Ann Lee", None, "Bo"]
    locs = decrypt_column(
        out.column("loc"),
        pa.binary(),
        corridor="x-y",
        dataset="test.t",
        field="loc",
        keys={key.key_id: key},
    )
    loc_schema = fastavro.parse_schema(SCHEMA.expanded["fields"][3]["type"])
    decoded = [
        fastavro.schemaless_reader(io.BytesIO(v), loc_schema, None) for v in locs.to_pylist()
    ]
    assert decoded == [r["loc"] for r in ROWS]


def test_deterministic_encryption_is_joinable() -> None:
    ctx = TransformContext("x-y", "test.t", SCHEMA, cipher=FieldCipher(data_key("x-y")))
    rows = [dict(ROWS[0]), dict(ROWS[0]), dict(ROWS[2])]
    out = apply_transforms(batch(rows), {"name": Transform.ENCRYPT_DETERMINISTIC}, ctx).batch
    col = out.column("name").to_pylist()
    assert col[0] == col[1] != col[2]
    assert pc.count_distinct(out.column("name")).as_py() == 2


def test_whole_column_encryption_for_arrow_format() -> None:
    ctx = TransformContext(
        "x-y",
        "test.t",
        SCHEMA,
        cipher=FieldCipher(data_key("x-y")),
        arrow_format=True,
        lineage="t/0/1-3",
    )
    done = apply_transforms(batch(ROWS), {"name": Transform.ENCRYPT}, ctx)
    assert "name" not in done.batch.schema.names
    assert set(done.sealed) == {"name"} and isinstance(done.sealed["name"], bytes)
