"""schema.py: fingerprints, framing, Arrow mapping, egress schemas, store."""

from __future__ import annotations

import json
import re
from pathlib import Path

import fastavro
import fastavro.schema as fschema
import pyarrow as pa
import pytest

from corridor.core.errors import DecodeError, SchemaError
from corridor.core.schema import (
    ENUM_TYPE,
    SchemaStore,
    arrow_schema,
    canonical_form,
    crc64_avro,
    egress_schema,
    fingerprint_of,
    frame,
    load_schema,
    parse_schema,
    unframe,
)
from tests.unit.avro_samples import ALL_TYPES, SHIPMENT_LIKE


def _spec_crc64(data: bytes) -> int:
    """CRC-64-AVRO written bit by bit from the spec's pseudo-code, without a table."""
    empty = 0xC15D213AA4D7A795
    fp = empty
    for byte in data:
        fp ^= byte
        for _ in range(8):
            fp = (fp >> 1) ^ (empty if fp & 1 else 0)
    return fp


def test_fingerprint_of_int_is_the_spec_value() -> None:
    # Avro's share/test/data/schema-tests.txt: "int" -> 8f5c393f1ad57572 (bytes, LE)
    assert canonical_form("int") == '"int"'
    assert fingerprint_of("int") == bytes.fromhex("8f5c393f1ad57572")
    assert crc64_avro(b'"int"') == _spec_crc64(b'"int"') == 0x7275D51A3F395C8F


@pytest.mark.parametrize("schema", ["int", "string", ALL_TYPES, SHIPMENT_LIKE])
def test_fingerprint_matches_fastavro_and_bitwise_reference(schema: object) -> None:
    form = canonical_form(schema).encode()
    assert fingerprint_of(schema) == _spec_crc64(form).to_bytes(8, "little")
    assert fingerprint_of(schema).hex() == fschema.fingerprint(
        fschema.to_parsing_canonical_form(schema), "CRC-64-AVRO"
    )


def test_fingerprint_ignores_docs_and_logical_attributes_but_not_names() -> None:
    a = parse_schema(SHIPMENT_LIKE)
    b = parse_schema({**SHIPMENT_LIKE, "doc": "other words"})
    c = parse_schema({**SHIPMENT_LIKE, "name": "other"})
    assert a.fingerprint == b.fingerprint and a != b  # same wire identity, other JSON
    assert a.fingerprint != c.fingerprint


def test_frame_and_unframe() -> None:
    s = parse_schema(SHIPMENT_LIKE)
    value = frame(s.fingerprint, b"\x02ab")
    assert value[:2] == b"\xc3\x01" and value[2:10] == s.fingerprint
    assert unframe(value) == (s.fingerprint, b"\x02ab")
    for bad, reason in [
        (None, "null value"),
        (b"", "empty value"),
        (b"\x00\x01" + bytes(10), "bad magic 0001"),
        (b"\xc3\x01abc", "truncated single-object header (5 of 10 bytes)"),
    ]:
        with pytest.raises(DecodeError, match=re.escape(reason)):
            unframe(bad)
    with pytest.raises(SchemaError):
        frame(b"short", b"")


def test_arrow_mapping_of_every_type() -> None:
    got = parse_schema(ALL_TYPES).arrow
    inner = pa.struct([pa.field("x", pa.string(), False), pa.field("y", pa.int64())])
    expected = {
        "b": pa.bool_(), "i": pa.int32(), "l": pa.int64(), "f": pa.float32(),
        "d": pa.float64(), "by": pa.binary(), "s": pa.string(), "e": ENUM_TYPE,
        "fx": pa.binary(4), "fx2": pa.binary(4), "rec": inner,
        "arr": pa.list_(pa.field("item", pa.string(), False)),
        "arr_rec": pa.list_(pa.field("item", inner, False)),
        "m": pa.map_(pa.string(), pa.field("value", pa.int64(), False)),
        "ns": pa.string(), "sn": pa.string(), "nrec": inner, "ne": ENUM_TYPE,
        "ts_ms": pa.timestamp("ms", tz="UTC"), "ts_us": pa.timestamp("us", tz="UTC"),
        "day": pa.date32(), "dec": pa.decimal128(12, 2), "decf": pa.decimal128(12, 3),
        "id": pa.string(),
    }
    assert got.names == list(expected)
    for f in got:
        assert f.type == expected[f.name], f.name
        assert f.nullable == (f.name in ("ns", "sn", "nrec", "ne")), f.name
    assert arrow_schema(ALL_TYPES) == got


def test_unions_of_several_types_are_refused() -> None:
    bad = {"type": "record", "name": "U", "fields": [{"name": "u", "type": ["null", "string", "long"]}]}
    with pytest.raises(SchemaError, match="2 non-null branches"):
        parse_schema(bad)


def test_invalid_and_missing_schemas(tmp_path: Path) -> None:
    with pytest.raises(SchemaError, match="must be an Avro record"):
        parse_schema({"type": "enum", "name": "E", "symbols": ["A"]})
    with pytest.raises(SchemaError, match="invalid Avro schema"):
        parse_schema({"type": "record", "name": "R", "fields": [{"name": "a", "type": "nope"}]})
    with pytest.raises(SchemaError, match=str(tmp_path / "missing.avsc")):
        load_schema(tmp_path / "missing.avsc")
    path = tmp_path / "s.avsc"
    path.write_text(json.dumps(SHIPMENT_LIKE))
    assert load_schema(path).name == "test.trade.shipment"


def test_field_names_and_dotted_field_type() -> None:
    s = parse_schema(ALL_TYPES)
    assert s.field_names()[:3] == ["b", "i", "l"]
    assert s.field_type("rec.y") == ["null", "long"]
    assert s.field_type("nrec.x") == "string"  # looks through ["null", record]
    assert s.field_type("rec.zzz") is None and s.field_type("s.x") is None


def test_egress_schema_types_and_attributes() -> None:
    s = parse_schema(SHIPMENT_LIKE)
    e = egress_schema(
        s,
        {"declarant": "encrypt", "contact_email": "encrypt-deterministic",
         "shipment_id": "pseudonymize", "weight_kg": "drop", "location.port": "mask"},
    )
    fields = {f["name"]: f for f in e.raw["fields"]}
    assert "weight_kg" not in fields
    assert fields["declarant"]["type"] == "bytes"
    assert fields["contact_email"]["type"] == ["null", "bytes"]
    assert fields["shipment_id"]["type"] == "string"
    assert fields["declarant"]["corridor.transform"] == "encrypt"
    assert fields["contact_email"]["corridor.original"] == ["null", "string"]
    port = next(f for f in fields["location"]["type"]["fields"] if f["name"] == "port")
    assert port["corridor.transform"] == "mask" and port["type"] == "string"
    assert e.name.startswith("test.trade.corridor_egress_") and e.name.endswith(".shipment")
    assert e.arrow.field("declarant").type == pa.binary()
    fastavro.parse_schema(e.raw)  # a valid schema any consumer can use


def test_egress_fingerprint_is_stable_and_depends_on_the_transforms() -> None:
    s = parse_schema(SHIPMENT_LIKE)
    a = egress_schema(s, {"declarant": "mask"})
    assert egress_schema(s, {"declarant": "mask"}).fingerprint == a.fingerprint
    others = [
        egress_schema(s, {"declarant": "pseudonymize"}),
        egress_schema(s, {"declarant": "encrypt"}),
        egress_schema(s, {}),
        s,
    ]
    assert len({a.fingerprint} | {o.fingerprint for o in others}) == 5


def test_egress_refuses_unknown_transform_or_field() -> None:
    s = parse_schema(SHIPMENT_LIKE)
    with pytest.raises(SchemaError, match="unknown transform"):
        egress_schema(s, {"declarant": "rot13"})
    with pytest.raises(SchemaError, match="unknown field 'nope'"):
        egress_schema(s, {"nope": "drop"})


def test_egress_keeps_reused_named_types_valid() -> None:
    s = parse_schema(ALL_TYPES)  # Four and Inner are used twice
    e = egress_schema(s, {"rec.x": "encrypt", "s": "drop"})
    fastavro.parse_schema(e.raw)
    assert e.field_type("rec.x") == "bytes" and e.field_type("nrec.x") == "string"


def test_store() -> None:
    s = parse_schema(SHIPMENT_LIKE)
    store = SchemaStore()
    assert store.get(s.fingerprint) is None
    store.add(s)
    store.add(s)
    assert store.get(s.fingerprint) is s and len(store) == 1


def test_recursive_schemas_are_refused() -> None:
    linked = {"type": "record", "name": "Node", "fields": [
        {"name": "next", "type": ["null", "Node"]}]}
    with pytest.raises(SchemaError, match="recursive"):
        parse_schema(linked)
