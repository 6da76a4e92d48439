"""Dialects: Confluent framing, schema resolution, JSON records, and mixed batches through process()."""

from __future__ import annotations

import base64
import copy
import datetime as dt
import io
import json
from typing import Any

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.codec import decode_avro, to_ipc
from corridor.core.codec.arrow_input import decode_inputs
from corridor.core.codec.avro_strict import Malformed
from corridor.core.codec.dialects import (
    AVRO,
    CONFLUENT,
    JSON,
    UNKNOWN,
    confluent_ids,
    decode_records,
    dialect_of,
)
from corridor.core.codec.json_decode import decode_json
from corridor.core.config import Config, load_config
from corridor.core.config.model import SchemaRegistryConfig
from corridor.core.errors import ConfigErrors, DecodeError
from corridor.core.model import Outcome
from corridor.core.pipeline import process
from corridor.core.schema import AvroSchema, SchemaStore, frame, parse_schema, unframe
from corridor.core.wire import (
    CONFLUENT_MAGIC,
    confluent_frame,
    confluent_header_problem,
    confluent_unframe,
)
from corridor.dev.sample import encode, generate_rows
from tests.unit.avro_samples import (
    ALL_TYPES,
    SHIPMENT_LIKE,
    all_types_record,
    body,
    shipment_record,
)
from tests.unit.plan_fixtures import CONFIG, load, messages, plan_for

V1 = parse_schema(SHIPMENT_LIKE)


def _variant(name: str, change: Any) -> AvroSchema:
    raw = copy.deepcopy(SHIPMENT_LIKE)
    change(raw["fields"])
    return parse_schema(raw, source=name)


# v2: a field added with a default (the dataset skips it); v0: the dataset's weight_kg
# (nullable, default null) not written yet; v3/v4: incompatible.
V2 = _variant("v2", lambda f: f.append({"name": "insured", "type": "boolean", "default": False}))
V0 = _variant("v0", lambda f: f.remove(next(x for x in f if x["name"] == "weight_kg")))
V3_DROPPED = _variant("v3", lambda f: f.remove(next(x for x in f if x["name"] == "declared_value")))
V4_RETYPED = _variant("v4", lambda f: f[3].update(type="string"))
WRITERS = {1: V1, 2: V2, 5: V0, 7: V3_DROPPED, 8: V4_RETYPED}


def confluent(schema_id: int, record: dict[str, Any]) -> bytes:
    return confluent_frame(schema_id, body(WRITERS[schema_id].parsed, record))


def decode(values: list[bytes | None], schema: AvroSchema = V1,
           writers: dict[int, AvroSchema] | None = None):  # type: ignore[no-untyped-def]
    out = decode_records(values, SchemaStore([schema]), schema, WRITERS if writers is None else writers)
    assert sorted(out.rows + [i for i, _ in out.errors]) == list(range(len(values)))
    assert out.batch.num_rows == len(out.rows)
    return out


def reasons(values: list[bytes | None], schema: AvroSchema = V1) -> dict[int, str]:
    return dict(decode(values, schema).errors)


# --- framing ----------------------------------------------------------------------------


@given(st.integers(-(2**31), 2**31 - 1), st.binary(max_size=64))
def test_confluent_framing_round_trips(schema_id: int, data: bytes) -> None:
    framed = confluent_frame(schema_id, data)
    assert framed[:1] == CONFLUENT_MAGIC and len(framed) == 5 + len(data)
    assert confluent_unframe(framed) == (schema_id, data)
    assert unframe(frame(b"\x01" * 8, data)) == (b"\x01" * 8, data)


def test_confluent_header_is_big_endian_and_checked() -> None:
    assert confluent_frame(7, b"x") == b"\x00\x00\x00\x00\x07x"
    assert confluent_header_problem(b"\x00\x00\x01") == "truncated Confluent header (3 of 5 bytes)"
    with pytest.raises(DecodeError, match="bad magic c3"):
        confluent_unframe(b"\xc3\x01" + b"\x00" * 8)


def test_dialect_is_told_by_the_first_bytes() -> None:
    assert [dialect_of(v) for v in (None, b"", b"\xc3\x01abc", b"\x00\x00\x00\x00\x01",
                                    b'{"a": 1}', b' \n\t{', b"[1]", b"\xc3\x02", b"\xff")] == \
        [AVRO, AVRO, AVRO, CONFLUENT, JSON, JSON, UNKNOWN, UNKNOWN, UNKNOWN]
    assert confluent_ids([confluent(1, shipment_record(1)), b"\x00\x00", None,
                          confluent_frame(42, b"")]) == {1, 42}


# --- Confluent-framed Avro and schema resolution -------------------------------------------


def _reference(writer: AvroSchema, record: dict[str, Any]) -> dict[str, Any]:
    """fastavro's schema resolution of the record's body: the reference to agree with."""
    data = io.BytesIO(body(writer.parsed, record))
    return fastavro.schemaless_reader(data, writer.parsed, V1.parsed)  # type: ignore[return-value]


@pytest.mark.parametrize("schema_id", [1, 2, 5])
def test_compatible_writer_schemas_decode_to_the_dataset(schema_id: int) -> None:
    records = [shipment_record(n) for n in range(12)]
    written = [dict(r, insured=n % 2 == 0) if schema_id == 2 else r for n, r in enumerate(records)]
    out = decode([confluent(schema_id, r) for r in written])
    assert out.errors == [] and out.rows == list(range(12))
    expected = [_reference(WRITERS[schema_id], r) for r in written]
    got = out.batch.to_pylist()
    for row, ref in zip(got, expected, strict=True):
        assert row["declared_at"] == ref["declared_at"]
        assert {k: v for k, v in row.items() if k != "declared_at"} == \
            {k: v for k, v in ref.items() if k != "declared_at"}
    if schema_id == 5:
        assert {row["weight_kg"] for row in got} == {None}  # the dataset's default
    plain = decode_avro([encode(r, V1) for r in records], SchemaStore([V1]), V1)
    if schema_id != 5:
        assert out.batch.equals(plain.batch)


def test_incompatible_writer_is_quarantined_naming_the_field() -> None:
    got = reasons([confluent(7, shipment_record(1)), confluent(8, dict(shipment_record(2),
                                                                        declared_value="12"))])
    assert got == {
        0: "schema: writer id 7 cannot be read as test.trade.shipment: field declared_value "
           "is not in the writer schema and has no default",
        1: "schema: writer id 8 cannot be read as test.trade.shipment: field declared_value: "
           "writer type string cannot be read as double",
    }


def test_nested_and_union_incompatibilities_name_the_path() -> None:
    port_int = _variant("p", lambda f: f[6]["type"]["fields"][0].update(type="int"))
    nullable = _variant("n", lambda f: f[0].update(type=["null", "string"], default=None))
    symbols = _variant("s", lambda f: f[5]["type"].update(symbols=["HKD", "EUR", "USD", "JPY"]))
    writers = {1: port_int, 2: nullable, 3: symbols}
    values = [confluent_frame(i, b"") for i in writers]
    out = decode_records(values, SchemaStore(), V1, writers)
    got = {i: r.split(": ", 2)[2] for i, r in out.errors}
    assert got == {
        0: "field location.port: writer type int cannot be read as string",
        1: "field shipment_id: the writer allows null, the dataset requires string",
        2: "field currency: writer symbols JPY are not in enum test.trade.Currency, "
           "which has no default",
    }


def test_promotions_and_enum_default_resolve() -> None:
    raw = copy.deepcopy(SHIPMENT_LIKE)
    raw["fields"][5]["type"]["default"] = "USD"
    dataset = parse_schema(raw)
    writer = _variant("w", lambda f: (f[8].update(type=["null", "int"]),  # pieces int -> int
                                      f[3].update(type="float"),  # declared_value float -> double
                                      f[5]["type"].update(symbols=["HKD", "EUR", "USD", "JPY"])))
    record = dict(shipment_record(3), currency="JPY", declared_value=2.5)
    out = decode_records([confluent_frame(4, body(writer.parsed, record))], SchemaStore(),
                         dataset, {4: writer})
    assert out.errors == []
    row = out.batch.to_pylist()[0]
    assert (row["currency"], row["declared_value"], row["pieces"]) == ("USD", 2.5, 3)


def test_unknown_id_and_malformed_body_are_quarantined() -> None:
    good = confluent(2, dict(shipment_record(1), insured=True))
    got = reasons([confluent_frame(99, b"\x02"), good[:-3], good + b"\x00", b"\x00\x00"])
    assert got[0] == "unknown schema id 99"
    assert got[1].startswith("truncated varint at offset")
    assert got[2].startswith("1 trailing bytes after the datum")
    assert got[3] == "truncated Confluent header (2 of 5 bytes)"


# --- JSON -----------------------------------------------------------------------------------


def _json_shipment(n: int, **changes: Any) -> dict[str, Any]:
    rec = shipment_record(n)
    rec.update(changes)
    return rec


def _j(obj: Any) -> bytes:
    return json.dumps(obj).encode()


def test_json_records_decode_like_their_avro_twins() -> None:
    records = [shipment_record(n) for n in range(8)]
    out = decode([_j(r) for r in records])
    plain = decode_avro([encode(r, V1) for r in records], SchemaStore([V1]), V1)
    assert out.errors == [] and out.batch.equals(plain.batch)


def _all_types_json(n: int) -> dict[str, Any]:
    rec = all_types_record(n)
    b64 = {k: base64.b64encode(rec[k]).decode() for k in ("by", "fx", "fx2")}
    return {
        **rec, **b64,
        "ts_ms": rec["ts_ms"].isoformat(),  # ISO-8601 with offset
        "ts_us": int((rec["ts_us"] - dt.datetime(1970, 1, 1, tzinfo=dt.UTC)) / dt.timedelta(microseconds=1)),
        "day": rec["day"].isoformat(), "dec": str(rec["dec"]), "decf": float(rec["decf"]),
    }


def test_json_conventions_cover_every_type() -> None:
    schema = parse_schema(ALL_TYPES)
    records = [all_types_record(n) for n in range(6)]
    out = decode_records([_j(_all_types_json(n)) for n in range(6)], SchemaStore(), schema, {})
    plain = decode_avro([frame(schema.fingerprint, body(schema.parsed, r)) for r in records],
                        SchemaStore([schema]), schema)
    assert out.errors == []
    assert out.batch.to_pylist() == plain.batch.to_pylist()


@pytest.mark.parametrize(("value", "reason"), [
    (_j(_json_shipment(1, declared_value="12.5")),
     "json: field declared_value: expected double, got string"),
    (_j({k: v for k, v in shipment_record(1).items() if k != "declarant"}),
     "json: missing required field declarant"),
    (_j(_json_shipment(1, location={"port": "X"})), "json: missing required field location.country"),
    (_j(_json_shipment(1, colour="red")), "json: unknown field colour"),
    (_j(_json_shipment(1, location={"port": "X", "country": "HK", "x": 1})),
     "json: unknown field location.x"),
    (b'{"shipment_id": "S-1",', "json: not JSON: Expecting property name enclosed in double "
                                "quotes at offset 22"),
    (b'{"shipment_id": "\xff"}', "json: not UTF-8: invalid byte 0xff at offset 17"),
    (b'{"a": 1, "a": 2}', "json: not JSON: key 'a' appears twice in one object"),
    (b'{"declared_value": NaN}', "json: not JSON: NaN is not a JSON number"),
    (_j(_json_shipment(1, pieces=2**31)), "json: field pieces: 2147483648 is out of the range of int"),
    (_j(_json_shipment(1, pieces=True)), "json: field pieces: expected int, got boolean"),
    (_j(_json_shipment(1, pieces=1.5)), "json: field pieces: expected int, got number"),
    (_j(_json_shipment(1, currency="JPY")), "json: field currency: 'JPY' is not a symbol of enum "
                                            "test.trade.Currency"),
    (_j(_json_shipment(1, contact_email={"string": "a@b"})),
     "json: field contact_email: expected string, got object"),
    (_j(_json_shipment(1, consent=None)), "json: field consent: expected boolean, got null"),
    (_j(_json_shipment(1, declared_at="2024-05-01T08:00:00")),
     "json: field declared_at: '2024-05-01T08:00:00' has no UTC offset (add Z or +hh:mm)"),
    (_j(_json_shipment(1, declared_at="2024-05-01T08:00:00.0001Z")),
     "json: field declared_at: '2024-05-01T08:00:00.0001Z' is finer than timestamp-millis can hold"),
    (_j(_json_shipment(1, declarant="\ud800")),
     "json: field declarant: string holds a lone surrogate at character 0, which UTF-8 cannot encode"),
    (_j(_json_shipment(1, declared_value=float("inf"))), "json: not JSON: Infinity is not a JSON number"),
    (_j(_json_shipment(1, declared_value=13.25)).replace(b"13.25", b"1e309"),
     "json: field declared_value: 1E+309 is out of the range of double"),
    (b"{\"a\": " + b"[" * 100_000, "json: not JSON: nested too deeply"),
])
def test_each_malformed_json_class_has_its_reason(value: bytes, reason: str) -> None:
    assert reasons([value]) == {0: reason}


@pytest.mark.parametrize(("field", "value", "reason"), [
    ("by", "not base64!", "field by: not base64 (RFC 4648, with padding)"),
    ("fx", base64.b64encode(b"abc").decode(), "field fx: 3 bytes where fixed test.codec.Four has 4"),
    ("dec", "1.234", "field dec: '1.234' has more than 2 decimal places"),
    ("dec", "12345678901.00", "field dec: '12345678901.00' exceeds decimal(12,2)"),
    ("dec", "NaN", "field dec: 'NaN' is not a finite decimal"),
    ("day", "2024-02-30", "field day: '2024-02-30' is not an ISO-8601 date"),
    ("f", 1e39, "field f: 1E+39 is out of the range of float"),
    ("m", {"k": "x"}, "field m{}: expected long, got string"),
    ("arr", ["a", 1], "field arr[]: expected string, got integer"),
])
def test_json_reasons_for_the_other_types(field: str, value: Any, reason: str) -> None:
    schema = parse_schema(ALL_TYPES)
    with pytest.raises(Malformed) as caught:
        decode_json(_j({**_all_types_json(1), field: value}), schema)
    assert caught.value.reason == f"json: {reason}"


# --- a mixed batch through process() --------------------------------------------------------


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load(tmp_path_factory.mktemp("cfg"))


def test_a_batch_mixing_every_dialect_gets_one_outcome_per_record(config: Config) -> None:
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets["trade.shipment"]
    ship = dp.schema
    wider = copy.deepcopy(ship.raw)
    wider["fields"].append({"name": "insured", "type": "boolean", "default": False})
    narrower = copy.deepcopy(ship.raw)
    narrower["fields"] = [f for f in narrower["fields"] if f["name"] != "national_id"]
    writers = {11: ship, 12: parse_schema(wider), 13: parse_schema(narrower)}
    rows = generate_rows("trade.shipment", 6, seed=5, withheld_share=0.0)
    rows[4]["consent"] = False  # withheld by the corridor's rule

    def as_json(r: dict[str, Any]) -> bytes:
        return _j({**r, "declared_at": r["declared_at"].isoformat()})

    def as_confluent(schema_id: int, r: dict[str, Any]) -> bytes:
        return confluent_frame(schema_id, body(writers[schema_id].parsed, {**r, "insured": True}))

    values: list[bytes | None] = [
        encode(rows[0], ship),  # 0 single-object: delivered
        as_confluent(11, rows[1]),  # 1 Confluent, the dataset's own schema: delivered
        as_confluent(12, rows[2]),  # 2 Confluent, a field added: delivered
        as_json(rows[3]),  # 3 JSON: delivered
        as_json(rows[4]),  # 4 JSON, consent false: withheld
        as_confluent(13, rows[5]),  # 5 Confluent, national_id missing: quarantined
        confluent_frame(14, b"\x00"),  # 6 unknown id: quarantined
        _j({**rows[0], "declared_value": -1.0, "declared_at": 0}),  # 7 JSON failing validate
        b'{"shipment_id": ',  # 8 not JSON
        b"\x7fELF",  # 9 no dialect
        None,  # 10 tombstone: crosses (a delete)
    ]
    msgs = messages(dp.source_topic, values)
    result = process(msgs, plan, dp, 1234, writer_schemas=writers)
    result.check()
    outcomes = result.outcomes()
    got = [outcomes[m.lineage] for m in msgs]
    D, W, Q = Outcome.DELIVERED, Outcome.WITHHELD, Outcome.QUARANTINED
    assert got == [D, D, D, D, W, Q, Q, Q, Q, Q, D]
    side = {s.lineage: s for s in result.withheld + result.quarantined}
    why = {i: side[m.lineage].reason for i, m in enumerate(msgs) if m.lineage in side}
    assert why[5] == ("decode: schema: writer id 13 cannot be read as trade.shipment: field "
                      "national_id is not in the writer schema and has no default")
    assert why[6] == "decode: unknown schema id 14"
    assert why[7] == "validate: declared_value >= 0"
    assert why[8].startswith("decode: json: not JSON: ")
    assert why[9].startswith("decode: bad magic 7f45 (expected Avro single-object c301")
    assert [d.value is None for d in result.delivered] == [False] * 4 + [True]
    for i, m in enumerate(msgs):  # a side record carries the bytes that came in
        if m.lineage in side:
            assert side[m.lineage].value == values[i]
    # The four delivered records are the same records whatever their dialect was.
    inputs = decode_inputs(msgs, plan.store, ship, writer_schemas=writers)
    decoded = inputs.decoded.batch.to_pylist()
    assert [r["shipment_id"] for r in decoded[:4]] == [r["shipment_id"] for r in rows[:4]]
    assert decoded[:4] == decode_avro([encode(r, ship) for r in rows[:4]], plan.store,
                                      ship).batch.to_pylist()


def test_without_writer_schemas_nothing_changes(config: Config) -> None:
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets["trade.shipment"]
    row = generate_rows("trade.shipment", 1, seed=2, withheld_share=0.0)[0]
    values: list[bytes | None] = [confluent_frame(1, body(dp.schema.parsed, row)),
                                  _j({**row, "declared_at": 0})]
    msgs = messages(dp.source_topic, values)
    result = process(msgs, plan, dp, 1)
    result.check()
    assert [s.reason.split(" (")[0] for s in result.quarantined] == \
        ["decode: bad magic 0000", "decode: bad magic 7b22"]


def test_arrow_messages_mix_with_the_dialects(config: Config) -> None:
    plan = plan_for(config, "hk-asean")
    dp = plan.datasets["trade.shipment"]
    rows = generate_rows("trade.shipment", 3, seed=9, withheld_share=0.0)
    ipc = to_ipc(pa.RecordBatch.from_pylist(rows, schema=dp.schema.arrow), None)
    values: list[bytes | None] = [
        _j({**rows[0], "declared_at": 5}), ipc,
        confluent_frame(3, body(dp.schema.parsed, rows[2])), b"{}",
    ]
    msgs = messages(dp.source_topic, values)
    result = process(msgs, plan, dp, 1, writer_schemas={3: dp.schema})
    result.check()
    assert result.counts() == {"delivered": 5, "withheld": 0, "quarantined": 1}
    assert result.quarantined[0].reason == "decode: json: missing required field shipment_id"


# --- hostile bytes never raise --------------------------------------------------------------

ALL = parse_schema(ALL_TYPES)
ALL_WIDER = parse_schema({**copy.deepcopy(ALL_TYPES), "fields": [
    *copy.deepcopy(ALL_TYPES["fields"]), {"name": "extra", "type": "string", "default": "x"}]})
HOSTILE_WRITERS = {1: ALL, 2: ALL_WIDER, 3: V1}


@settings(max_examples=400, deadline=None)
@given(st.lists(st.one_of(
    st.tuples(st.sampled_from([1, 2, 3, 4, -1]), st.binary(max_size=80)).map(
        lambda p: confluent_frame(p[0], p[1])),
    st.binary(max_size=80).map(lambda b: CONFLUENT_MAGIC + b),
    st.binary(max_size=80).map(lambda b: b"{" + b),
    st.text(max_size=60).map(lambda t: ("{" + t).encode("utf-8", "surrogatepass")),
    st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                 lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                 max_leaves=8).map(lambda v: json.dumps({"v": v, "s": "x"}).encode()),
), max_size=12))
def test_arbitrary_bytes_after_a_confluent_magic_or_a_brace_never_raise(values: list[bytes]) -> None:
    for schema in (ALL, V1):
        out = decode_records(values, SchemaStore([schema]), schema, HOSTILE_WRITERS)
        assert sorted(out.rows + [i for i, _ in out.errors]) == list(range(len(values)))
        assert out.batch.num_rows == len(out.rows)
        for _, reason in out.errors:
            reason.encode("utf-8")  # a reason becomes a header: always encodable


# --- the corridor file names each zone's registry ----------------------------------------


def _config_with(tmp_path: Any, registry: str) -> Any:
    text = CONFIG.replace("  hk: {bootstrap: 127.0.0.1:19092, jurisdiction: HK}",
                          f"  hk:\n    bootstrap: 127.0.0.1:19092\n    jurisdiction: HK\n"
                          f"    schema_registry: {registry}")
    path = tmp_path / "corridors.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def test_a_zone_names_its_schema_registry(tmp_path: Any) -> None:
    config = _config_with(tmp_path, "{url: 'https://sr.example:8081/apis/ccompat/v7/', "
                                    "user_env: SR_USER, password_env: SR_SECRET}")
    assert config.zones["hk"].schema_registry == SchemaRegistryConfig(
        "https://sr.example:8081/apis/ccompat/v7", "SR_USER", "SR_SECRET")
    assert config.zones["eu"].schema_registry is None


@pytest.mark.parametrize(("registry", "field", "message"), [
    ("http://x", "zones.hk.schema_registry", "expected schema registry settings"),
    ("{url: ftp://x/}", "zones.hk.schema_registry.url", "expected http:// or https://"),
    ("{url: 'http://me:hunter2@x/'}", "zones.hk.schema_registry.url",
     "'http://***@x/': credentials do not belong in the file"),
    ("{url: 'http://x:99999/'}", "zones.hk.schema_registry.url", "Port out of range"),
    ("{url: http://x, user_env: SR_USER}", "zones.hk.schema_registry.user_env",
     "needs both user_env and password_env"),
    ("{url: http://x, user_env: a-b, password_env: P}", "zones.hk.schema_registry.user_env",
     "bad environment variable name 'a-b'"),
    ("{url: http://x, token: t}", "zones.hk.schema_registry.token", "unknown key 'token'"),
])
def test_a_bad_registry_entry_is_refused_with_its_line(tmp_path: Any, registry: str, field: str,
                                                       message: str) -> None:
    with pytest.raises(ConfigErrors) as refused:
        _config_with(tmp_path, registry)
    errors = [e for e in refused.value.errors if e.field == field]
    assert errors and errors[0].line == 5 and message in errors[0].message, refused.value
    assert "hunter2" not in str(refused.value)
