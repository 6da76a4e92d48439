"""`corridor verify` on hand-written topic contents, as a processor would write them."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from corridor.commands.verify import verify as verify_command
from corridor.core import topics
from corridor.dev.sample import generate_records
from corridor.kafka.io import PlainProducer, TransactionalWriter
from corridor.kafka.offsets import OffsetReader, encode_offset, offset_key, offset_partition
from corridor.kafka.sink import OutMessage
from corridor.kafka.verify_reader import read_verify_input
from corridor.processor.resolve import zone_endpoint

from .corridor_env import drop_topics, make_corridor

pytestmark = pytest.mark.integration
DATASET = "trade.shipment"
N = 12
DELIVERED, WITHHELD, QUARANTINED = range(7), range(7, 10), range(10, 12)


@pytest.fixture
def env(zones, tmp_path):
    from corridor.commands.provision import provision_topics

    env = make_corridor(zones, tmp_path)
    provision_topics(str(env.path), 2)
    yield env
    drop_topics(zones, env)


def _write(env, zones, *, skip: int | None = None, twice: int | None = None) -> None:
    """N source records on partition 0; their outcomes; the committed offset N."""
    admin = zones.credentials.admin
    origin, dest = zone_endpoint(env.config, env.origin), zone_endpoint(env.config, env.dest)
    source = topics.outbound(env.origin, DATASET)
    values = generate_records(DATASET, N, seed=5)
    park = PlainProducer(origin, admin)
    for v in values:
        park.produce(source, v, partition=0)
    park.flush()
    lineage = [f"{source}/0/{i}" for i in range(N)]
    side = PlainProducer(origin, admin)
    for target, offsets, reason in ((topics.withheld(env.corridor), WITHHELD, "consent == false"),
                                    (topics.quarantine(env.corridor), QUARANTINED, "decode: bad")):
        for i in offsets:
            if i != skip:
                side.produce(target, values[i], lineage[i].encode(),
                             [("corridor-reason", reason.encode())])
    side.flush()
    corridor_topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    delivered = [i for i in DELIVERED if i != skip] + ([twice] if twice is not None else [])
    out = [OutMessage(corridor_topic, values[i], None, [("corridor-lineage", lineage[i].encode())])
           for i in delivered]
    key = offset_key(env.name, source, 0)
    parts = OffsetReader(dest, admin, env.name).partitions()
    out.append(OutMessage(topics.offsets_topic(env.name), encode_offset(N, "b1"), key,
                          partition=offset_partition(key, parts)))
    # The corridor side: output records and the source position commit together.
    TransactionalWriter(dest, admin, f"test-{env.name}-0").write(out)


def test_hand_written_outcomes_verify(env, zones) -> None:
    _write(env, zones)
    found = read_verify_input(zone_endpoint(env.config, env.origin), zone_endpoint(env.config, env.dest),
                              env.corridor, zones.credentials.admin)
    report = found.check()
    assert report.ok, report
    assert (report.source, report.delivered, report.withheld, report.quarantined) == (N, 7, 3, 2)
    assert report.withheld_by_reason == {"consent == false": 3}
    assert report.quarantined_by_reason == {"decode: bad": 2}
    result = CliRunner().invoke(verify_command, ["--corridor", env.name, "--config", str(env.path)])
    assert result.exit_code == 0, result.output
    assert "OK" in result.output


def test_a_missing_record_fails(env, zones) -> None:
    _write(env, zones, skip=8)
    report = read_verify_input(zone_endpoint(env.config, env.origin), zone_endpoint(env.config, env.dest),
                              env.corridor, zones.credentials.admin).check()
    assert not report.ok
    assert [str(x) for x in report.missing] == [f"{topics.outbound(env.origin, DATASET)}/0/8"]
    assert (report.delivered, report.withheld, report.quarantined) == (7, 2, 2)
    result = CliRunner().invoke(verify_command, ["--corridor", env.name, "--config", str(env.path)])
    assert result.exit_code == 1
    assert "missing (lost): 1" in result.output


def test_a_double_delivery_fails(env, zones) -> None:
    _write(env, zones, twice=3)
    report = read_verify_input(zone_endpoint(env.config, env.origin), zone_endpoint(env.config, env.dest),
                              env.corridor, zones.credentials.admin).check()
    assert not report.ok
    assert [x.offset for x in report.delivered_duplicates] == [3]
    assert report.missing == () and report.delivered == 7
