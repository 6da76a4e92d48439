"""corridor.core.codec: strict decoding with specific reasons, verified fast path, encoding, IPC."""

from __future__ import annotations

import io
import math
from decimal import Decimal
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.codec import decode_avro, decode_strategy, encode_avro, from_ipc, to_ipc
from corridor.core.errors import DecodeError, SchemaError
from corridor.core.schema import AvroSchema, SchemaStore, frame, parse_schema
from tests.unit.avro_samples import (
    ALL_TYPES,
    NO_MAP,
    SHIPMENT_LIKE,
    all_types_record,
    body,
    no_map_record,
    shipment_record,
)


def zz(n: int) -> bytes:
    """Zig-zag varint, written independently of the code under test."""
    u = (n << 1) ^ (n >> 63)
    out = bytearray()
    while u > 0x7F:
        out.append((u & 0x7F) | 0x80)
        u >>= 7
    out.append(u)
    return bytes(out)


def one_field(t: Any, name: str = "One") -> AvroSchema:
    return parse_schema({"type": "record", "name": name, "namespace": "t", "fields": [{"name": "v", "type": t}]})


ENUM = {"type": "enum", "name": "E", "symbols": ["A", "B"]}
# (Avro type, a valid value, a malformed body, the specific reason it must give)
CASES = [
    ("string", "ok", zz(1) + b"a" + b"zz", "2 trailing bytes after the datum (at offset 2)"),
    (ENUM, "B", zz(7), "enum index 7 out of range for t.E (2 symbols) at offset 0"),
    (["null", "string"], "x", zz(5), "union index 5 out of range (2 branches) at offset 0"),
    ("string", "ok", zz(2) + b"\xff\xfe", "invalid UTF-8 in string at offset 1"),
    ("string", "ok", zz(100) + b"ab", "string length 100 at offset 2 exceeds the 2 bytes that remain"),
    ("string", "ok", zz(-5) + b"ab", "negative string length -5 at offset 1"),
    ("bytes", b"ok", zz(1 << 40) + b"ab", "bytes length 1099511627776 at offset 6 exceeds the 2 bytes that remain"),
    ({"type": "array", "items": "long"}, [1, 2], zz(1 << 40) + zz(1),
     "array block count 1099511627776 at offset 0 exceeds the 1 bytes that remain"),
    ({"type": "map", "values": "long"}, {"k": 1}, zz(1 << 30),
     "map block count 1073741824 at offset 0 exceeds the 0 bytes that remain"),
    ({"type": "array", "items": "null"}, [None], zz(10**9),
     "array block of 1000000000 zero-size items at offset 0 exceeds the limit of 1000000"),
    ("double", 1.5, b"\x00\x00\x00", "truncated double: needs 8 bytes at offset 0"),
    ("string", "ok", b"\x80", "truncated varint at offset 0"),
    ("string", "ok", b"", "truncated varint at offset 0"),
    ("boolean", True, b"\x05", "invalid boolean byte 0x05 at offset 0"),
    ("int", 3, zz(1 << 31), "int 2147483648 out of 32-bit range at offset 0"),
    ("long", 3, b"\xff" * 11, "varint longer than 10 bytes at offset 0"),
    ({"type": "bytes", "logicalType": "decimal", "precision": 3, "scale": 1}, Decimal("1.5"),
     zz(2) + (5000).to_bytes(2, "big"), "decimal at offset 0 exceeds decimal(3,1)"),
]


@pytest.mark.parametrize(("avro_type", "good", "bad", "reason"), CASES)
def test_each_malformed_body_has_its_own_reason(avro_type: Any, good: Any, bad: bytes, reason: str) -> None:
    s = one_field(avro_type)
    store = SchemaStore([s])
    valid = frame(s.fingerprint, body(s.parsed, {"v": good}))
    values = [valid] * 40
    values[17] = frame(s.fingerprint, bad)
    got = decode_avro(values, store, s)
    assert got.errors == [(17, reason)]
    assert got.rows == [i for i in range(40) if i != 17]
    assert got.batch.num_rows == 39
    alone = decode_avro([values[17]], store, s)  # the per-record path says the same
    assert alone.errors == [(0, reason)] and alone.batch.num_rows == 0


def test_header_errors_each_have_their_reason() -> None:
    s, other = parse_schema(SHIPMENT_LIKE), one_field("string")
    store = SchemaStore([s, other])
    good = frame(s.fingerprint, body(s.parsed, shipment_record(1)))
    values: list[bytes | None] = [
        None, b"", b"\x00\x01abcdefghij", b"\xc3\x01abc",
        frame(b"\x01" * 8, b"\x00"), frame(other.fingerprint, zz(1) + b"a"), good,
    ]
    got = decode_avro(values, store, s)
    assert got.rows == [6]
    assert got.errors == [
        (0, "null value (tombstone)"),
        (1, "empty value"),
        (2, "bad magic 0001 (single-object Avro starts with c301)"),
        (3, "truncated single-object header (5 of 10 bytes)"),
        (4, "unknown schema fingerprint 0101010101010101"),
        (5, f"schema t.One ({other.fingerprint.hex()}) is not dataset test.trade.shipment"),
    ]


def test_nan_and_infinity_are_valid_doubles() -> None:
    s = one_field("double")
    values = [frame(s.fingerprint, body(s.parsed, {"v": v})) for v in [math.nan, math.inf, -math.inf] * 10]
    got = decode_avro(values, SchemaStore([s]), s)
    assert not got.errors
    col = got.batch.column("v").to_pylist()
    assert math.isnan(col[0]) and col[1] == math.inf and col[2] == -math.inf


def _fastavro_rows(s: AvroSchema, values: list[bytes]) -> list[dict[str, Any]]:
    rows = [fastavro.schemaless_reader(io.BytesIO(v[10:]), s.parsed, None) for v in values]
    for row in rows:  # fastavro gives uuid.UUID; corridor maps uuid to its string
        if "id" in row:
            row["id"] = str(row["id"])
    return rows


@pytest.mark.parametrize(("raw", "make", "path"), [
    (ALL_TYPES, all_types_record, "strict"),  # polars cannot read maps
    (NO_MAP, no_map_record, "native"),
    (SHIPMENT_LIKE, shipment_record, "native"),
])
def test_round_trip_every_type(raw: dict[str, Any], make: Any, path: str) -> None:
    s = parse_schema(raw)
    assert decode_strategy(s) == path
    values = [frame(s.fingerprint, body(s.parsed, make(n))) for n in range(60)]
    stats: dict[str, int] = {}
    got = decode_avro(values, SchemaStore([s]), s, stats=stats)
    assert not got.errors and got.rows == list(range(60))
    assert stats[path] == 60
    assert got.batch.schema == s.arrow
    expected = pa.RecordBatch.from_pylist(_fastavro_rows(s, values), schema=s.arrow)
    assert got.batch.to_pylist() == expected.to_pylist()
    if "e" in s.field_names():
        assert got.batch.column("e").dictionary.to_pylist() == ["RED", "GREEN", "BLUE"]
    assert encode_avro(got.batch, s) == values  # byte for byte what fastavro wrote
    again = decode_avro(encode_avro(got.batch, s), SchemaStore([s]), s)
    assert again.batch.equals(got.batch)


def test_misaligning_record_cannot_corrupt_its_neighbours() -> None:
    # A body with one extra byte looks, to a container reader, like the next record
    # starts one byte early. Every other record must still come out exactly right.
    s = parse_schema(SHIPMENT_LIKE)
    store = SchemaStore([s])
    values = [frame(s.fingerprint, body(s.parsed, shipment_record(n))) for n in range(200)]
    clean = decode_avro(values, store, s).batch
    for at, extra in [(0, b"\x00"), (57, b"\x02"), (199, b"\x04x")]:
        bad = list(values)
        bad[at] = values[at] + extra
        got = decode_avro(bad, store, s)
        assert [i for i, _ in got.errors] == [at]
        assert "trailing bytes after the datum" in got.errors[0][1]
        assert got.batch.equals(clean.take(pa.array(got.rows)))


def test_valid_non_canonical_encodings_decode_correctly() -> None:
    # Over-long varint (1 as 0x82 0x00) and a negative-count array block with a size:
    # valid Avro the re-encoding check does not match, so the strict path decodes them.
    s = one_field({"type": "array", "items": "long"})
    canonical = frame(s.fingerprint, zz(2) + zz(1) + zz(2) + b"\x00")
    odd = frame(s.fingerprint, zz(-2) + zz(2) + b"\x82\x00" + zz(2) + b"\x00")
    stats: dict[str, int] = {}
    got = decode_avro([canonical] * 20 + [odd], SchemaStore([s]), s, stats=stats)
    assert not got.errors and stats == {"native": 20, "strict": 1}
    assert got.batch.column("v").to_pylist() == [[1, 2]] * 21


def test_encode_refuses_rows_the_schema_cannot_hold() -> None:
    s = parse_schema(SHIPMENT_LIKE)
    batch = pa.RecordBatch.from_pylist([shipment_record(1)], schema=s.arrow)
    with pytest.raises(SchemaError, match="do not match"):
        encode_avro(batch.drop_columns(["consent"]), s)
    nulls = batch.set_column(0, pa.field("shipment_id", pa.string()), pa.array([None], pa.string()))
    with pytest.raises(SchemaError, match="row 0 cannot be encoded"):
        encode_avro(nulls, s)


@pytest.mark.parametrize("compression", ["zstd", "lz4", None])
def test_ipc_round_trip(compression: str | None) -> None:
    s = parse_schema(NO_MAP)
    batch = pa.RecordBatch.from_pylist([no_map_record(n) for n in range(20)], schema=s.arrow)
    assert from_ipc(to_ipc(batch, compression)).equals(batch)


def test_from_ipc_garbage_is_a_decode_error() -> None:
    data = to_ipc(pa.RecordBatch.from_pylist([{"a": 1}]))
    for bad in [b"", b"garbage", data[: len(data) // 2]]:
        with pytest.raises(DecodeError, match="invalid Arrow IPC stream"):
            from_ipc(bad)


NULLABLE: dict[str, Any] = {
    "type": "record", "name": "Nullable", "namespace": "t",
    "fields": [
        {"name": "s", "type": ["null", "string"]},
        {"name": "l", "type": ["long", "null"]},
        {"name": "d", "type": ["null", "double"]},
        {"name": "b", "type": ["null", "bytes"]},
        {"name": "e", "type": ["null", ENUM]},
        {"name": "a", "type": ["null", {"type": "array", "items": ["null", "int"]}]},
        {"name": "r", "type": ["null", {"type": "record", "name": "R", "fields": [
            {"name": "x", "type": ["null", "boolean"]}]}]},
    ],
}
_nullable = parse_schema(NULLABLE)
_records = st.fixed_dictionaries({
    "s": st.none() | st.text(max_size=20),
    "l": st.none() | st.integers(-(1 << 63), (1 << 63) - 1),
    "d": st.none() | st.floats(allow_nan=False),
    "b": st.none() | st.binary(max_size=20),
    "e": st.none() | st.sampled_from(["A", "B"]),
    "a": st.none() | st.lists(st.none() | st.integers(-(1 << 31), (1 << 31) - 1), max_size=5),
    "r": st.none() | st.fixed_dictionaries({"x": st.none() | st.booleans()}),
})


@settings(max_examples=60, deadline=None)
@given(st.lists(_records, min_size=0, max_size=40))
def test_property_round_trip_nullable_records(records: list[dict[str, Any]]) -> None:
    s = _nullable
    values = [frame(s.fingerprint, body(s.parsed, r)) for r in records]
    got = decode_avro(values, SchemaStore([s]), s)
    assert not got.errors
    assert got.batch.to_pylist() == records
    assert encode_avro(got.batch, s) == values


@settings(max_examples=80, deadline=None)
@given(st.lists(st.one_of(st.none(), st.binary(max_size=40), st.integers(0, 39)), max_size=60),
       st.binary(max_size=8))
def test_property_garbage_never_crashes_and_is_accounted(items: list[Any], tail: bytes) -> None:
    s = parse_schema(SHIPMENT_LIKE)
    good = [frame(s.fingerprint, body(s.parsed, shipment_record(n))) for n in range(40)]
    values: list[bytes | None] = []
    for item in items:  # an int picks a valid record, bytes are framed or raw garbage
        if isinstance(item, int):
            values.append(good[item] if item % 3 else good[item] + tail)
        elif isinstance(item, bytes) and len(item) % 2:
            values.append(frame(s.fingerprint, item))
        else:
            values.append(item)
    got = decode_avro(values, SchemaStore([s]), s)
    assert len(got.rows) + len(got.errors) == len(values)
    assert sorted(got.rows + [i for i, _ in got.errors]) == list(range(len(values)))
    assert got.batch.num_rows == len(got.rows)
    for row, i in zip(got.batch.to_pylist(), got.rows, strict=False):
        value = values[i]
        assert value is not None and value in good  # garbage never decodes as a record
        assert row == pa.RecordBatch.from_pylist(_fastavro_rows(s, [value]), schema=s.arrow).to_pylist()[0]


def test_encode_refuses_decimals_beyond_their_precision() -> None:
    s = one_field({"type": "bytes", "logicalType": "decimal", "precision": 3, "scale": 1}, "Dec")
    wide = pa.array([Decimal("12.5"), Decimal("500.0")], pa.decimal128(38, 1))
    batch = pa.RecordBatch.from_arrays([wide.cast(pa.decimal128(3, 1), safe=False)], ["v"])
    with pytest.raises(SchemaError, match="row 1 cannot be encoded"):
        encode_avro(batch, s)


def test_nullable_enums_and_maps_take_the_strict_path() -> None:
    assert decode_strategy(one_field(["null", ENUM], "NE")) == "strict"
    assert decode_strategy(one_field({"type": "map", "values": "int"}, "M")) == "strict"
    assert decode_strategy(parse_schema(SHIPMENT_LIKE)) == "native"


_shipments = st.fixed_dictionaries({
    "shipment_id": st.text(max_size=30),
    "declarant": st.text(max_size=10),
    "contact_email": st.none() | st.text(max_size=10),
    "declared_value": st.floats(allow_nan=False),
    "weight_kg": st.none() | st.floats(allow_nan=False),
    "currency": st.sampled_from(["HKD", "EUR", "USD"]),
    "location": st.fixed_dictionaries({"port": st.text(max_size=5), "country": st.text(max_size=2)}),
    "consent": st.booleans(),
    "pieces": st.none() | st.integers(-(1 << 31), (1 << 31) - 1),
    "declared_at": st.integers(-(10**13), 10**14),  # fastavro: datetime range
})


@settings(max_examples=40, deadline=None)
@given(st.lists(_shipments, min_size=17, max_size=60))
def test_property_native_path_equals_fastavro(records: list[dict[str, Any]]) -> None:
    s = parse_schema(SHIPMENT_LIKE)
    values = [frame(s.fingerprint, body(s.parsed, r)) for r in records]
    stats: dict[str, int] = {}
    got = decode_avro(values, SchemaStore([s]), s, stats=stats)
    assert not got.errors and stats["native"] == len(values)
    expected = pa.RecordBatch.from_pylist(_fastavro_rows(s, values), schema=s.arrow)
    assert got.batch.equals(expected.cast(s.arrow)) or got.batch.to_pylist() == expected.to_pylist()
    assert encode_avro(got.batch, s) == values
