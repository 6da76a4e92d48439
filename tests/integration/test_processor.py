"""The boundary processor on real brokers: exactly once under scale-out, and nothing withheld
or quarantined ever reaches the destination. Crashes, broker kills and outages are in the
fault suite (test_faults.py, test_zombie.py)."""

from __future__ import annotations

import json

import pytest

from corridor.core import topics
from corridor.kafka.io import read_to_end
from corridor.processor.resolve import zone_endpoint

from .chaos_env import corridor
from .processor_env import (
    DATASET,
    Processor,
    committed,
    produce,
    verify,
    wait_until,
)

pytestmark = pytest.mark.integration


@pytest.fixture
def env(zones, tmp_path):
    with corridor(zones, tmp_path) as env:
        yield env


def _assert_exactly_once(report, expected_source: int) -> None:
    assert report.source == expected_source
    assert report.delivered_duplicates == ()
    assert report.missing == ()
    assert report.conflicts == ()
    assert report.unknown == ()
    assert report.accounted == expected_source
    assert report.ok


def _owned(proc: Processor) -> set[str]:
    """Partitions an instance owns now, from its partitions_assigned/revoked log events."""
    owned: set[str] = set()
    for line in proc.log().splitlines():
        if not line.startswith("{"):
            continue
        event = json.loads(line)
        parts = {p.split("@")[0] for p in event.get("partitions", [])}
        if event.get("event") == "partitions_assigned":
            owned |= parts
        elif event.get("event") == "partitions_revoked":
            owned -= parts
    return owned


def test_two_instances_share_partitions_and_one_takes_over(zones, env, tmp_path):
    admin = zones.credentials.admin
    total = 60_000
    half = total // 2
    produce(env, admin, half, seed=12)
    a = Processor(env, tmp_path, "a")
    b = Processor(env, tmp_path, "b")
    try:
        wait_until(lambda: _owned(a) and _owned(b), 90, "both instances to own partitions")
        a_share = _owned(a)
        assert not a_share & _owned(b)
        wait_until(lambda: committed(env, admin) == half, 120, "the first half, shared by both")
        a.kill()
        # The second half lands on every partition, a's too: only a takeover delivers it.
        produce(env, admin, half, seed=16)
        wait_until(lambda: committed(env, admin) == total, 240, "b to finish a's partitions")
        assert a_share <= _owned(b)  # b took over what a owned
        assert b.proc.poll() is None
        assert b.stop() == 0
    finally:
        a.close()
        b.close()
    _assert_exactly_once(verify(env, admin), total)


def test_bad_and_withheld_records_stay_home_with_reasons(zones, env, tmp_path):
    admin = zones.credentials.admin
    total = 3_000
    values = produce(env, admin, total, seed=14, bad_ratio=0.05)
    proc = Processor(env, tmp_path, "bad", "--until-caught-up")
    try:
        assert proc.wait(180) == 0, proc.log()[-2000:]
    finally:
        proc.close()
    report = verify(env, admin)
    _assert_exactly_once(report, total)
    origin = zone_endpoint(env.config, env.origin)
    quarantined = list(read_to_end(origin, admin, topics.quarantine(env.corridor)))
    withheld = list(read_to_end(origin, admin, topics.withheld(env.corridor)))
    assert quarantined and withheld
    reasons = {r.header("corridor-reason") for r in quarantined}
    assert any(r.startswith("decode: bad magic") for r in reasons)
    assert any(r.startswith("decode: unknown schema fingerprint") for r in reasons)
    assert any(r == "validate: declared_value >= 0" for r in reasons)
    assert {r.header("corridor-reason") for r in withheld} == {"withhold: consent == false"}
    # The side records carry the original bytes, keyed by their lineage.
    for record in quarantined + withheld:
        offset = int(record.key.decode().rsplit("/", 1)[1])
        assert record.value is not None or offset >= 0
    kept_home = {r.value for r in quarantined + withheld}
    kept_lineage = {r.key.decode() for r in quarantined + withheld}
    # Nothing of them in any destination topic, not even in aborted transactions.
    dest = zone_endpoint(env.config, env.dest)
    corridor_topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    seen = list(read_to_end(dest, admin, corridor_topic, uncommitted=True))
    assert len(seen) >= report.delivered
    for record in seen:
        assert record.header("corridor-lineage") not in kept_lineage
        assert record.value not in kept_home
    for internal in (topics.offsets_topic(env.name), topics.SCHEMAS, topics.KEYS):
        for record in read_to_end(dest, admin, internal, uncommitted=True):
            assert record.value not in kept_home
    assert len(values) == total


def test_records_deleted_before_crossing_are_a_reported_gap(zones, env, tmp_path):
    from confluent_kafka import TopicPartition

    from corridor.kafka.clients import admin_client

    admin = zones.credentials.admin
    produce(env, admin, 3_000, seed=15)
    source = topics.outbound(env.origin, DATASET)
    origin = zone_endpoint(env.config, env.origin)
    # Retention at the origin removes the first 100 records of partition 0 before any
    # corridor read them.
    client = admin_client(origin, admin)  # keep it alive until the futures resolve
    futures = client.delete_records([TopicPartition(source, 0, 100)], request_timeout=30)
    for future in futures.values():
        future.result(timeout=60)
    proc = Processor(env, tmp_path, "gap", "--until-caught-up")
    try:
        assert proc.wait(120) == 0, proc.log()[-2000:]
    finally:
        proc.close()
    assert '"event": "source_gap"' in proc.log() and '"level": "error"' in proc.log()
    events = {r.value: json.loads(r.value)
              for r in read_to_end(origin, admin, topics.audit(env.origin))
              if r.value and b'"kind":"gap"' in r.value}  # a replay is the same bytes
    assert [(e["partition"], e["first_offset"], e["last_offset"], e["seq"])
            for e in events.values()] == [(0, 0, 99, 0)]  # the chain's first event
    report = verify(env, admin)
    assert [(g.partition, g.start, g.end, g.kind) for g in report.gaps] == [(0, 0, 100, "recorded")]
    assert not report.ok and report.missing == () and report.delivered_duplicates == ()
    assert report.accounted == 3_000 - 100
