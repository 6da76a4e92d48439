"""The Kafka ecosystem's dialects end to end, on real brokers and real registries: a park
producing with confluent-kafka's own ``AvroSerializer`` (and JSON), a ``wire: confluent``
corridor, an analytics consumer reading with confluent-kafka's ``AvroDeserializer`` against
the destination's registry, and the SDK decrypting what it read."""

from __future__ import annotations

import copy
import io
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import fastavro
import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroDeserializer, AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from corridor.core import topics
from corridor.core.wire import REASON, confluent_frame, registry_subject
from corridor.dev.chaos.proxy import FaultProxy
from corridor.dev.sample import generate_rows
from corridor.kafka.clients import client_config
from corridor.kafka.io import read_to_end
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.sdk import CorridorConsumer, ParkProducer
from corridor.zones import local
from corridor.zones.launcher import default_specs
from corridor.zones.registry import registry_port, registry_url

from .corridor_env import PSEUDONYMIZED, CorridorEnv, drop_topics, make_corridor
from .processor_env import DATASET, Processor, committed, source_end, verify, wait_until

pytestmark = pytest.mark.integration

HK, EU = default_specs(["hk", "eu"])


@pytest.fixture(scope="module")
def registries() -> Iterator[None]:
    """hk's and eu's registries: adopted when they run, else started (and stopped again)."""
    launcher = local.registries()
    started = launcher.up([HK, EU], print)
    yield
    if started:
        launcher.down(default_specs(started), print)


def _corridor(zones: Any, tmp_path: Path, origin_registry: str | None = None) -> CorridorEnv:
    """A ``wire: confluent`` corridor between zones with registries (the origin's may be
    *origin_registry*, a proxy in front of hk's)."""
    return make_corridor(zones, tmp_path,
                         registries=(origin_registry or registry_url(HK), registry_url(EU)),
                         wire="confluent", transform=PSEUDONYMIZED)


@pytest.fixture
def make_env(zones: Any, registries: None, tmp_path: Path) -> Iterator[Any]:
    from corridor.commands.provision import provision_topics

    made: list[CorridorEnv] = []

    def make(origin_registry: str | None = None) -> CorridorEnv:
        env = _corridor(zones, tmp_path, origin_registry)
        provision_topics(str(env.path), 3)
        LocalKekProvider(env.keys).init(env.dest)
        made.append(env)
        return env

    yield make
    for env in made:
        drop_topics(zones, env)


def _source(env: CorridorEnv) -> str:
    return topics.outbound(env.origin, DATASET)


def _dest_topic(env: CorridorEnv) -> str:
    return topics.corridor_topic(env.origin, env.dest, DATASET)


def _wider(raw: dict[str, Any]) -> dict[str, Any]:
    wider = copy.deepcopy(raw)
    wider["fields"].append({"name": "insured", "type": "boolean", "default": False})
    return wider


def _incompatible(raw: dict[str, Any]) -> dict[str, Any]:
    """declared_value as a string: no record written so can be read as a shipment."""
    bad = copy.deepcopy(raw)
    for f in bad["fields"]:
        if f["name"] == "declared_value":
            f["type"] = "string"
    return bad


def _park(zones: Any, env: CorridorEnv) -> Producer:
    return Producer(client_config(zones.endpoint("hk"), zones.credentials.admin))


def _quarantined(zones: Any, env: CorridorEnv) -> list[str]:
    recs = read_to_end(zone_endpoint(env.config, env.origin), zones.credentials.admin,
                       topics.quarantine(env.corridor))
    return [(r.header(REASON) or "") for r in recs]


def _run_until_done(zones: Any, env: CorridorEnv, proc: Processor, timeout_s: float = 120) -> None:
    admin = zones.credentials.admin
    wait_until(lambda: committed(env, admin) == source_end(env, admin), timeout_s,
               "the processor to commit every source record", every_s=0.5)


def _analytics(zones: Any, env: CorridorEnv) -> list[dict[str, Any]]:
    """What an ecosystem consumer reads: confluent-kafka's AvroDeserializer, eu's registry."""
    deserialize = AvroDeserializer(SchemaRegistryClient({"url": registry_url(EU)}))
    consumer = Consumer(client_config(zones.endpoint("eu"), zones.credentials.admin, {
        "group.id": f"test-analytics-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False, "isolation.level": "read_committed"}))
    topic = _dest_topic(env)
    consumer.subscribe([topic])
    out: list[dict[str, Any]] = []
    idle = 0
    try:
        while idle < 10:
            msg = consumer.poll(1.0)
            if msg is None:
                idle += 1
                continue
            if msg.error():
                continue
            idle = 0
            out.append(deserialize(msg.value(), SerializationContext(topic, MessageField.VALUE)))
    finally:
        consumer.close()
    return out


def test_confluent_in_and_out_with_schema_evolution(zones, make_env, tmp_path):
    env = make_env()
    admin = zones.credentials.admin
    schema = env.config.datasets[DATASET].schema
    client = SchemaRegistryClient({"url": registry_url(HK)})
    ctx = SerializationContext(_source(env), MessageField.VALUE)
    v1 = AvroSerializer(client, json.dumps(schema.raw))
    rows = generate_rows(DATASET, 400, seed=21)
    park = _park(zones, env)
    for i, row in enumerate(rows[:200]):
        park.produce(_source(env), v1(row, ctx), f"k{i}".encode())
    assert park.flush(30) == 0
    sdk_park = ParkProducer(env.config, env.origin, DATASET, dialect="confluent")
    for row in rows[200:220]:
        sdk_park.send(row, "sdk")
    sdk_park.flush()

    proc = Processor(env, tmp_path, "a")
    try:
        _run_until_done(zones, env, proc)
        # (b) mid-stream the park registers v2 (a field with a default) and keeps producing
        v2 = AvroSerializer(client, json.dumps(_wider(schema.raw)))
        for i, row in enumerate(rows[220:400]):
            park.produce(_source(env), v2({**row, "insured": True}, ctx), f"v2-{i}".encode())
        # ... and an incompatible v3, under a subject of its own (the registry may refuse it
        # under the topic's): every one of its records is quarantined, naming the field.
        v3_raw = _incompatible(schema.raw)
        v3_id = client.register_schema(f"test-v3-{uuid.uuid4().hex[:8]}-value",
                                       Schema(json.dumps(v3_raw), "AVRO"))
        v3_schema = fastavro.parse_schema(v3_raw)
        for row in rows[:5]:
            body = io.BytesIO()
            fastavro.schemaless_writer(body, v3_schema, {**row, "declared_value": "12.5"})
            park.produce(_source(env), confluent_frame(v3_id, body.getvalue()))
        assert park.flush(30) == 0
        _run_until_done(zones, env, proc)
    finally:
        proc.stop()
        proc.close()
    log = proc.log()
    assert "egress_schema_registered" in log

    reasons = _quarantined(zones, env)
    assert len(reasons) == 5, reasons
    assert all("declared_value" in r and f"writer id {v3_id}" in r for r in reasons), reasons

    # (a) an ecosystem consumer reads the transformed records with the destination's registry
    read = _analytics(zones, env)
    sources = {r["shipment_id"]: r for r in rows}
    crossed = [r for r in rows if r["consent"]]
    assert len(read) == len(crossed)  # v1, the SDK's confluent dialect and v2 alike
    for value in read:
        source = sources[value["shipment_id"]]
        assert "national_id" not in value
        assert value["contact_name"] != source["contact_name"]  # a pseudonym
        assert value["contact_email"] is None or isinstance(value["contact_email"], bytes)
    subject = registry_subject(_dest_topic(env))
    assert subject in SchemaRegistryClient({"url": registry_url(EU)}).get_subjects()

    # ... and the SDK decrypts those to the source values
    with CorridorConsumer(env.config, _dest_topic(env),
                          kek_provider=LocalKekProvider(env.keys)) as consumer:
        records = list(consumer.records(idle_timeout_s=5))
    assert len(records) == len(read)
    for rec in records:
        source = sources[rec.value["shipment_id"]]
        assert rec.value["contact_email"] == source["contact_email"]
        assert "national_id" not in rec.value

    # `corridor verify`: every source record accounted for, once
    report = verify(env, admin)
    assert report.source == 405 and report.accounted == 405
    assert report.missing == () and report.delivered_duplicates == ()
    assert report.ok


JSON_CASES = {
    "wrong type": lambda row: json.dumps({**row, "declared_value": "lots"}).encode(),
    "missing field": lambda row: json.dumps(
        {k: v for k, v in row.items() if k != "hs_code"}).encode(),
    "unknown field": lambda row: json.dumps({**row, "colour": "red"}).encode(),
    "not JSON": lambda row: b'{"shipment_id": "x", ',
    "not UTF-8": lambda row: b'{"shipment_id": "\xff\xfe"}',
}
JSON_REASONS = {
    "wrong type": "declared_value",
    "missing field": "hs_code",
    "unknown field": "colour",
    "not JSON": "JSON",
    "not UTF-8": "UTF-8",
}


def test_json_records_cross_and_each_malformed_class_is_quarantined(zones, make_env, tmp_path):
    env = make_env()
    admin = zones.credentials.admin
    rows = generate_rows(DATASET, 100, seed=33)
    park = ParkProducer(env.config, env.origin, DATASET, dialect="json")
    for row in rows:
        park.send(row)
    plain = json.loads(park.encode(rows[0]))
    for case in JSON_CASES.values():
        park.send_raw(case(plain))
    park.flush()
    proc = Processor(env, tmp_path, "a")
    try:
        _run_until_done(zones, env, proc)
    finally:
        proc.stop()
        proc.close()
    reasons = _quarantined(zones, env)
    assert len(reasons) == len(JSON_CASES), reasons
    for case, word in JSON_REASONS.items():
        assert any(word in r for r in reasons), (case, reasons)
    report = verify(env, admin)
    assert report.source == 105 and report.accounted == 105 and report.ok


def test_an_unreachable_origin_registry_delays_and_never_quarantines(zones, make_env, tmp_path):
    proxy = FaultProxy(registry_port(HK))
    proxy.start()
    try:
        env = make_env(f"http://127.0.0.1:{proxy.port}/apis/ccompat/v7")
        admin = zones.credentials.admin
        schema = env.config.datasets[DATASET].schema
        client = SchemaRegistryClient({"url": registry_url(HK)})
        ctx = SerializationContext(_source(env), MessageField.VALUE)
        rows = generate_rows(DATASET, 300, seed=45)
        park = _park(zones, env)
        v1 = AvroSerializer(client, json.dumps(schema.raw))
        for row in rows[:100]:
            park.produce(_source(env), v1(row, ctx))
        assert park.flush(30) == 0
        proc = Processor(env, tmp_path, "a")
        try:
            _run_until_done(zones, env, proc)
            proxy.refuse(True)
            proxy.reset()  # the registry client keeps its connection: cut it too
            # a new writer version: its id is unknown to the processor, which must ask
            v2 = AvroSerializer(client, json.dumps(_wider(schema.raw)))
            for row in rows[100:300]:
                park.produce(_source(env), v2({**row, "insured": False}, ctx))
            assert park.flush(30) == 0
            wait_until(lambda: "registry_unavailable" in proc.log(), 60,
                       "the processor to notice the registry is down")
            down_since = time.monotonic()
            while time.monotonic() - down_since < 15:  # ~15 s of outage, mid-stream
                assert committed(env, admin) == 100  # waiting, nothing decided
                time.sleep(1)
            proxy.refuse(False)
            _run_until_done(zones, env, proc)
        finally:
            proc.stop()
            proc.close()
        log = proc.log()
        assert log.count('"registry_unavailable"') == 1, log
        assert '"registry_available"' in log
        assert _quarantined(zones, env) == []
        report = verify(env, admin)
        assert report.source == 300 and report.ok
        assert report.missing == () and report.delivered_duplicates == ()
    finally:
        proxy.close()
