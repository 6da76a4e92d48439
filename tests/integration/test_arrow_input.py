"""Arrow end to end on real brokers: a park sends Arrow IPC batches, the corridor runs the
policy on whole columns, delivers Arrow batches exactly once, and verify counts every row."""

from __future__ import annotations

import pytest

from corridor.core import topics
from corridor.core.codec import decode_avro
from corridor.core.schema import SchemaStore
from corridor.dev.sample import generate_records
from corridor.keys.local import LocalKekProvider
from corridor.sdk import CorridorConsumer, ParkProducer

from .corridor_env import drop_topics, make_corridor
from .processor_env import DATASET, Processor, verify

pytestmark = pytest.mark.integration

ROWS = 6000


@pytest.fixture
def env(zones, tmp_path):
    from corridor.commands.provision import provision_topics

    env = make_corridor(zones, tmp_path, fmt="arrow")
    provision_topics(str(env.path), 3)
    LocalKekProvider(env.keys).init(env.dest)
    yield env
    drop_topics(zones, env)


def test_arrow_batches_cross_with_lineage_per_row(env, zones, tmp_path) -> None:
    schema = env.config.datasets[DATASET].schema
    store = SchemaStore()
    store.add(schema)
    values = generate_records(DATASET, ROWS, seed=11, withheld_share=0.2)
    batch = decode_avro(values, store, schema).batch
    park = ParkProducer(env.config, env.origin, DATASET, zones.credentials.admin)
    sent = park.send_arrow(batch, max_bytes=256 * 1024)  # several messages, each many rows
    park.send_raw(values[0])  # an Avro record in the same topic: one record
    park.flush()
    assert sent > 1
    proc = Processor(env, tmp_path, "arrow", "--until-caught-up", "--idle-ms", "1500")
    try:
        assert proc.wait(120) == 0, proc.log()[-2000:]
    finally:
        proc.close()
    report = verify(env, zones.credentials.admin)
    assert report.ok, report
    assert report.source == ROWS + 1 and report.accounted == ROWS + 1
    assert report.withheld > 0 and report.delivered > 0
    topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    with CorridorConsumer(env.config, topic, kek_provider=LocalKekProvider(env.keys),
                          principal=zones.credentials.admin) as consumer:
        records = list(consumer.records(idle_timeout_s=3))
    assert len(records) == report.delivered
    # Rows of Arrow messages carry their row; the one Avro record (if it crossed) does not.
    assert sum("#" not in r.lineage for r in records) <= 1
    assert all("national_id" not in r.value for r in records)
    assert all(r.value.get("contact_email") is None or "@" in r.value["contact_email"]
               for r in records)
