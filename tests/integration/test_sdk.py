"""The SDK on real brokers: a park produces; analytics consume, decode and decrypt."""

from __future__ import annotations

import json

import pytest

from corridor.core import pipeline, topics
from corridor.core.codec import decode_avro
from corridor.core.crypto import DataKeyRing
from corridor.core.errors import SchemaError, WrongKey
from corridor.core.model import Lineage, RawMessage
from corridor.core.plan import build_plan
from corridor.core.schema import SchemaStore
from corridor.dev.sample import generate_rows
from corridor.kafka.io import TransactionalWriter, read_to_end
from corridor.kafka.sink import OutMessage
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.sdk import CorridorConsumer, ParkProducer

from .corridor_env import drop_topics, make_corridor

pytestmark = pytest.mark.integration
DATASET = "trade.shipment"


@pytest.fixture
def env(zones, tmp_path):
    from corridor.commands.provision import provision_topics

    env = make_corridor(zones, tmp_path)
    provision_topics(str(env.path), 2)
    yield env
    drop_topics(zones, env)


def test_park_records_arrive_decodable(env, zones) -> None:
    rows = generate_rows(DATASET, 40, seed=7)
    producer = ParkProducer(env.config, env.origin, DATASET)
    for i, row in enumerate(rows):
        producer.send(row, key=f"k{i}")
    producer.send_raw(b"not avro")
    producer.flush()
    with pytest.raises(SchemaError):
        producer.send({"shipment_id": 1})
    got = list(read_to_end(zone_endpoint(env.config, env.origin), zones.credentials.admin,
                           topics.outbound(env.origin, DATASET)))
    assert len(got) == 41
    schema = env.config.datasets[DATASET].schema
    decoded = decode_avro([r.value for r in got], SchemaStore([schema]), schema)
    assert len(decoded.rows) == 40 and len(decoded.errors) == 1
    ids = sorted(decoded.batch.column("shipment_id").to_pylist())
    assert ids == sorted(r["shipment_id"] for r in rows)


def _deliver(env, zones, rows, deleted=()):
    """Run the real pipeline on ``rows`` (then a tombstone per key of ``deleted``) and write
    what a processor would, in one transaction."""
    kek_zone = env.dest
    provider = LocalKekProvider(env.keys)
    provider.init(kek_zone)
    ring = DataKeyRing()
    key = ring.rotate(env.name)
    plan = build_plan(env.config, env.name, ring, b"sdk test pseudonym secret, 32 b.")
    dp = plan.datasets[DATASET]
    producer = ParkProducer(env.config, env.origin, DATASET)
    source = topics.outbound(env.origin, DATASET)
    messages = [RawMessage(Lineage(source, 0, i), producer.encode(r)) for i, r in enumerate(rows)]
    messages += [RawMessage(Lineage(source, 0, len(rows) + i), None, key)
                 for i, key in enumerate(deleted)]
    result = pipeline.process(messages, plan, dp, now_ms=0)
    out = [OutMessage(topics.SCHEMAS, json.dumps(dp.egress.raw).encode(),
                      dp.egress.fingerprint.hex().encode()),
           OutMessage(topics.KEYS, provider.wrap(key, kek_zone).to_json(), key.key_id.encode())]
    out += [OutMessage(dp.destination_topic, d.value, d.key, d.headers) for d in result.delivered]
    writer = TransactionalWriter(zone_endpoint(env.config, env.dest), zones.credentials.admin,
                                 f"test-{env.name}")
    writer.write(out)
    return result, provider


def test_consumer_decodes_tags_and_decrypts(env, zones) -> None:
    rows = generate_rows(DATASET, 30, seed=3, withheld_share=0.0)
    for r in rows:
        r["consent"] = True
    result, provider = _deliver(env, zones, rows)
    assert len(result.delivered) == 30
    topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    with CorridorConsumer(env.config, topic, kek_provider=provider) as consumer:
        got = list(consumer.records(max_records=30, idle_timeout_s=20))
    assert len(got) == 30
    by_lineage = {r.lineage: r for r in got}
    for i, row in enumerate(rows):
        rec = by_lineage[f"{topics.outbound(env.origin, DATASET)}/0/{i}"]
        assert rec.value["contact_email"] == row["contact_email"]
        assert "national_id" not in rec.value
        assert rec.value["shipment_id"] == row["shipment_id"]
        assert rec.headers["corridor-origin"] == env.origin
        assert rec.headers["corridor-destination"] == env.dest
        assert rec.headers["corridor-jurisdiction"] == "HK"
        assert rec.headers["corridor-legal-basis"] == "TEST-BASIS"
        assert rec.headers["corridor-policy"].startswith(env.name + "@")
        assert rec.headers["corridor-key"].startswith(env.name + "-dek-")
    # Without a key provider, encrypted fields stay ciphertext.
    with CorridorConsumer(env.config, topic) as consumer:
        plain = list(consumer.records(max_records=1, idle_timeout_s=20))
    if plain[0].value["contact_email"] is not None:
        assert isinstance(plain[0].value["contact_email"], bytes)
    # Another zone's KEK cannot unwrap the data key: a clear error, no plaintext.
    other = LocalKekProvider(env.keys.parent / "other")
    other.init(env.dest)
    with CorridorConsumer(env.config, topic, kek_provider=other) as consumer, pytest.raises(WrongKey):
        list(consumer.records(max_records=1, idle_timeout_s=20))


def test_a_delete_reaches_the_consumer_as_a_deleted_record(env, zones) -> None:
    rows = generate_rows(DATASET, 2, seed=5, withheld_share=0.0)
    for r in rows:
        r["consent"] = True
    result, provider = _deliver(env, zones, rows, deleted=[b"customer-1"])
    assert [d.value is None for d in result.delivered] == [False, False, True]
    topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    with CorridorConsumer(env.config, topic, kek_provider=provider) as consumer:
        got = list(consumer.records(max_records=3, idle_timeout_s=20))
    [gone] = [r for r in got if r.deleted]
    assert gone.value is None and gone.lineage == f"{topics.outbound(env.origin, DATASET)}/0/2"
    assert gone.key is not None and gone.key != b"customer-1"  # pseudonymized, as it crossed
    assert gone.key_treatment == "pseudonymize"
    assert gone.headers["corridor-destination"] == env.dest


def test_arrow_batches_become_rows_with_lineage_and_decrypted_columns(zones, tmp_path) -> None:
    from corridor.commands.provision import provision_topics

    env = make_corridor(zones, tmp_path, fmt="arrow")
    provision_topics(str(env.path), 2)
    try:
        rows = generate_rows(DATASET, 25, seed=11, withheld_share=0.0)
        for r in rows:
            r["consent"] = True
        result, provider = _deliver(env, zones, rows)
        assert len(result.delivered) == 1  # one IPC batch for the one source partition
        topic = topics.corridor_topic(env.origin, env.dest, DATASET)
        with CorridorConsumer(env.config, topic, kek_provider=provider) as consumer:
            got = list(consumer.records(max_records=25, idle_timeout_s=20))
        source = topics.outbound(env.origin, DATASET)
        assert [r.lineage for r in got] == [f"{source}/0/{i}" for i in range(25)]
        assert [r.value["contact_email"] for r in got] == [r["contact_email"] for r in rows]
        assert all("national_id" not in r.value for r in got)
    finally:
        drop_topics(zones, env)
