"""The hk zone's schema registry (Apicurio, Confluent-compatible API) with confluent-kafka's own
client and serializer on one side and corridor.registry + the dialect decoder on the other.

The registry is adopted when it runs (``make up``), else started and stopped again. The
Kafka round trip needs only the hk broker and uses it when it runs (it never starts or stops
a broker: the ``zones`` fixture would start all three for one topic)."""

from __future__ import annotations

import copy
import json
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest
from confluent_kafka import Consumer, Producer
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.avro import AvroSerializer
from confluent_kafka.serialization import MessageField, SerializationContext

from corridor.core.codec import decode_avro
from corridor.core.codec.arrow_input import decode_inputs
from corridor.core.codec.dialects import confluent_ids
from corridor.core.errors import RegistryError, RegistryUnavailable
from corridor.core.model import Lineage, Outcome, RawMessage
from corridor.core.pipeline import process
from corridor.core.schema import AvroSchema, parse_schema
from corridor.dev.sample import encode, generate_rows
from corridor.kafka import admin as kadmin
from corridor.kafka.clients import Endpoint, admin_client, client_config
from corridor.registry import connect
from corridor.zones import local
from corridor.zones.launcher import default_specs
from corridor.zones.registry import answers, registry_url
from tests.unit.plan_fixtures import load, plan_for

pytestmark = pytest.mark.integration

HK = default_specs(["hk"])[0]
DATASET = "trade.shipment"


@pytest.fixture(scope="module")
def registry() -> Iterator[str]:
    """The hk registry's URL: adopted when it runs (``make up``), else started and stopped."""
    launcher = local.registries()
    started = launcher.up([HK], print)
    yield registry_url(HK)
    if started:
        launcher.down([HK], print)


@pytest.fixture
def hk_topic(zones: Any) -> Iterator[tuple[Endpoint, Any, str]]:
    """(endpoint, admin principal, a new topic) on the hk broker (the suite's zones)."""
    endpoint, admin = zones.endpoint("hk"), zones.credentials.admin
    topic = f"test.registry.{uuid.uuid4().hex[:10]}"
    kadmin.ensure_topics(admin_client(endpoint, admin), [kadmin.TopicSpec(topic, 1, {})])
    yield endpoint, admin, topic
    kadmin.delete_topics(admin_client(endpoint, admin), [topic])


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> Any:
    return plan_for(load(tmp_path_factory.mktemp("cfg")), "hk-eu")


def _subject() -> str:
    return f"test.registry.{uuid.uuid4().hex[:10]}-value"


def _wider(schema: AvroSchema) -> AvroSchema:
    raw = copy.deepcopy(schema.raw)
    raw["fields"].append({"name": "insured", "type": "boolean", "default": False})
    return parse_schema(raw)


def test_the_hk_registry_answers_on_loopback(registry: str) -> None:
    port = int(HK.bootstrap.rsplit(":", 1)[1]) - 11  # 19081 on the default ports
    assert registry == f"http://127.0.0.1:{port}/apis/ccompat/v7"
    assert answers(registry)
    assert isinstance(connect(registry).subjects(), list)


def test_a_schema_registered_with_confluent_kafka_reads_back_by_id(registry: str, plan: Any) -> None:
    ship = plan.datasets[DATASET].schema
    subject = _subject()
    theirs = SchemaRegistryClient({"url": registry})
    schema_id = theirs.register_schema(subject, Schema(json.dumps(ship.raw), "AVRO"))
    ours = connect(registry)
    got = ours.schema(schema_id)
    assert got.fingerprint == ship.fingerprint and got.name == DATASET
    assert ours.schema(schema_id) is got  # kept by id
    assert subject in ours.subjects()
    assert ours.register(subject, ship) == schema_id  # the same content: the same id
    wider_id = ours.register(subject, _wider(ship))
    assert wider_id != schema_id
    assert theirs.get_schema(wider_id).schema_str  # and confluent-kafka reads ours back
    batch = ours.writer_schemas([schema_id, wider_id, 987_654_321])
    assert set(batch.found) == {schema_id, wider_id}
    assert batch.refused == {987_654_321: "schema id 987654321 is unknown to the registry"}


def test_refusals_and_silence_are_told_apart(registry: str) -> None:
    with pytest.raises(RegistryError) as refused:
        connect(registry).schema(987_654_321)
    assert refused.value.status == 404 and refused.value.code == 40403
    nobody = "http://127.0.0.1:9/apis/ccompat/v7"  # discard port: nothing listens
    with pytest.raises(RegistryUnavailable) as silent:
        connect(nobody, timeout_s=2, retries=0).schema(1)
    assert silent.value.status is None and silent.value.url == nobody


def _serialized(registry: str, topic: str, rows: list[dict[str, Any]],
                ship: AvroSchema) -> list[bytes]:
    """rows[0::2] with the dataset's schema, rows[1::2] with a wider one (a field added),
    both by confluent-kafka's AvroSerializer (auto-registered under <topic>-value)."""
    client = SchemaRegistryClient({"url": registry})
    plain = AvroSerializer(client, json.dumps(ship.raw))
    wider = AvroSerializer(client, json.dumps(_wider(ship).raw))
    ctx = SerializationContext(topic, MessageField.VALUE)
    return [plain(r, ctx) if i % 2 == 0 else wider({**r, "insured": True}, ctx)
            for i, r in enumerate(rows)]


def test_avro_serializer_records_cross_through_the_dialect_path(
        registry: str, plan: Any, hk_topic: tuple[Endpoint, Any, str]) -> None:
    dp = plan.datasets[DATASET]
    ship = dp.schema
    rows = generate_rows(DATASET, 6, seed=21, withheld_share=0.0)
    for r in rows:
        r["category"] = "general"  # admitted, not withheld: every record is delivered
    endpoint, admin, topic = hk_topic
    values = _serialized(registry, topic, rows, ship)
    assert {v[:1] for v in values} == {b"\x00"}
    # Through the hk broker and back, bytes untouched.
    producer = Producer(client_config(endpoint, admin))
    for v in values:
        producer.produce(topic, v)
    assert producer.flush(30) == 0
    consumer = Consumer(client_config(endpoint, admin, {
        "group.id": f"test-registry-{uuid.uuid4().hex[:8]}", "auto.offset.reset": "earliest",
        "enable.auto.commit": False}))
    consumer.subscribe([topic])
    read: list[RawMessage] = []
    deadline = time.monotonic() + 30
    while len(read) < len(values) and time.monotonic() < deadline:
        m = consumer.poll(0.5)
        if m is not None and m.error() is None:
            read.append(RawMessage(Lineage(dp.source_topic, m.partition(), m.offset()), m.value(),
                                   m.key(), m.timestamp()[1]))
    consumer.close()
    assert [m.value for m in read] == values
    # What the processor will do: fetch the batch's ids, then run the pure pipeline.
    writers = connect(registry).writer_schemas(confluent_ids(m.value for m in read))
    assert len(writers.found) == 2 and not writers.refused
    result = process(read, plan, dp, 0, writer_schemas=writers.found)
    result.check()
    assert set(result.outcomes().values()) == {Outcome.DELIVERED}
    decoded = decode_inputs(read, plan.store, ship, writer_schemas=writers.found).decoded
    expected = decode_avro([encode(r, ship) for r in rows], plan.store, ship)
    assert decoded.errors == [] and decoded.batch.to_pylist() == expected.batch.to_pylist()
    # Without the registry's schemas the same records are what they were before: bad magic.
    before = process(read, plan, dp, 0)
    assert {s.reason[:20] for s in before.quarantined} == {"decode: bad magic 00"}
