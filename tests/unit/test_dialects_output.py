"""``wire: confluent`` output: the corridor file's ``wire:``, its policy hash, and records framed
``00`` + the registered egress schema id around the very body single-object framing carries."""

from __future__ import annotations

import io
from pathlib import Path

import fastavro
import pytest

from corridor.core import pipeline
from corridor.core.codec import decode_avro, encode_avro
from corridor.core.config import load_config
from corridor.core.config.model import OutputWire
from corridor.core.errors import ConfigErrors, PlanError
from corridor.core.schema import MAGIC, parse_schema
from corridor.core.wire import ATTR_TRANSFORM, confluent_header, confluent_unframe
from corridor.dev.sample import generate_records
from tests.unit.plan_fixtures import CONFIG, messages, plan_for

HK_EU = "    legal_basis: DEPA\n    admit: [normal]\n"
HK_ASEAN = "    legal_basis: PDPO-RMCC\n    format: arrow\n"


def _load(tmp_path: Path, text: str):  # -> Config
    path = tmp_path / "corridors.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _with_wire(value: str, where: str = HK_EU) -> str:
    assert where in CONFIG
    return CONFIG.replace(where, f"{where}    wire: {value}\n")


def _errors(tmp_path: Path, text: str) -> list[tuple[int | None, str, str]]:
    with pytest.raises(ConfigErrors) as caught:
        _load(tmp_path, text)
    return [(e.line, e.field, e.message) for e in caught.value.errors]


def test_wire_defaults_to_single_object_and_reads_confluent(tmp_path: Path) -> None:
    assert _load(tmp_path, CONFIG).corridors["hk-eu"].wire is OutputWire.SINGLE_OBJECT
    assert _load(tmp_path, _with_wire("confluent")).corridors["hk-eu"].wire is OutputWire.CONFLUENT


def test_wire_is_refused_on_an_arrow_corridor_with_line_and_field(tmp_path: Path) -> None:
    text = _with_wire("confluent", HK_ASEAN)
    line = text.splitlines().index("    wire: confluent") + 1
    [(at, field, message)] = _errors(tmp_path, text)
    assert (at, field) == (line, "corridors.hk-asean.wire")
    assert "avro records only" in message


def test_unknown_wire_value_is_refused_with_a_hint(tmp_path: Path) -> None:
    [(_, field, message)] = _errors(tmp_path, _with_wire("confluen"))
    assert field == "corridors.hk-eu.wire"
    assert message == ("bad wire 'confluen' (did you mean 'confluent'?) "
                       "(expected single-object or confluent)")


def test_wire_is_part_of_the_policy_hash_and_the_default_keeps_old_hashes(tmp_path: Path) -> None:
    plain = _load(tmp_path, CONFIG).corridors
    explicit = _load(tmp_path, _with_wire("single-object")).corridors
    confluent = _load(tmp_path, _with_wire("confluent")).corridors
    assert explicit["hk-eu"].policy_hash == plain["hk-eu"].policy_hash
    assert confluent["hk-eu"].policy_hash != plain["hk-eu"].policy_hash
    assert confluent["hk-asean"].policy_hash == plain["hk-asean"].policy_hash


def test_encode_avro_takes_another_header_around_the_same_body(tmp_path: Path) -> None:
    plan = plan_for(_load(tmp_path, CONFIG), "hk-eu")
    schema = plan.datasets["trade.shipment"].schema
    values = generate_records("trade.shipment", 20, seed=3)
    rows = decode_avro(values, plan.store, schema).batch
    single = encode_avro(rows, schema)
    framed = encode_avro(rows, schema, confluent_header(1234))
    for a, b in zip(single, framed, strict=True):
        assert a[:2] == MAGIC and b[:5] == b"\x00\x00\x00\x04\xd2"
        assert a[10:] == b[5:]


def test_a_confluent_corridor_frames_records_with_the_registered_id(tmp_path: Path) -> None:
    config = _load(tmp_path, _with_wire("confluent"))
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets["trade.shipment"]
    assert plan.confluent and dp.egress_id is None
    raws = messages(dp.source_topic, generate_records("trade.shipment", 50, seed=5))
    with pytest.raises(PlanError, match="no registry id"):
        pipeline.process(raws, plan, dp, 0)

    plan = plan.with_egress_ids({"trade.shipment": 77})
    dp = plan.datasets["trade.shipment"]
    result = pipeline.process(raws, plan, dp, 0, writer_schemas={})
    result.check()
    assert result.delivered and result.egress_schemas_used == (dp.egress,)
    reference = plan_for(_load(tmp_path, CONFIG), "hk-eu")
    for delivery in result.delivered:
        schema_id, body = confluent_unframe(delivery.value)
        assert schema_id == 77
        record = fastavro.schemaless_reader(io.BytesIO(body), dp.egress.parsed, None)
        assert isinstance(record, dict) and "national_id" not in record
        assert isinstance(record["contact_email"], bytes | None)
    # The key rotation's plan keeps the id; an avro corridor without wire keeps its framing.
    assert plan.with_cipher(plan.cipher).datasets["trade.shipment"].egress_id == 77
    plain = pipeline.process(raws, reference, reference.datasets["trade.shipment"], 0)
    assert all(d.value[:2] == MAGIC for d in plain.delivered)


def test_the_egress_schema_to_register_keeps_the_transform_attributes(tmp_path: Path) -> None:
    plan = plan_for(_load(tmp_path, _with_wire("confluent")), "hk-eu")
    egress = plan.datasets["trade.shipment"].egress
    again = parse_schema(egress.raw)  # what a registry that keeps the text gives back
    fields = {f["name"]: f for f in again.raw["fields"]}
    assert fields["contact_email"][ATTR_TRANSFORM] == "encrypt"
    assert fields["contact_name"][ATTR_TRANSFORM] == "pseudonymize"
    assert again.fingerprint == egress.fingerprint
