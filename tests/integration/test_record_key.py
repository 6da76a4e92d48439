"""What crosses besides the value, on real brokers: a park keys its records by the national id
(the field the policy drops), stamps them with event times and adds headers; no corridor
declares a key treatment. Nothing of the key may reach the destination's disk, timestamps and
partitions follow the source (MirrorMaker 2's and Java's rules), and only allow-listed headers
cross."""

from __future__ import annotations

import json
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest

from corridor.core import topics
from corridor.core.config import load_config
from corridor.core.model import Lineage
from corridor.dev.sample import encode, generate_rows
from corridor.kafka import admin as kadmin
from corridor.kafka.io import PlainProducer, read_to_end
from corridor.processor.resolve import zone_endpoint

from .corridor_env import REPO
from .processor_env import DATASET, Processor, wait_until

pytestmark = pytest.mark.integration

SOURCE_PARTITIONS = 3
COUNT = 600
TEMPLATE = """\
zones:
  {origin}: {{bootstrap: "{ob}", jurisdiction: HK, keys: {{provider: local, path: "{keys}"}}}}
  {same}: {{bootstrap: "{db}", jurisdiction: EU, keys: {{provider: local, path: "{keys}"}}}}
  {fewer}: {{bootstrap: "{db}", jurisdiction: EU, keys: {{provider: local, path: "{keys}"}}}}
datasets:
  trade.shipment:
    schema: {repo}/schemas/trade/shipment.avsc
    fields: {{contact_name: personal, contact_email: personal, national_id: sensitive}}
corridors:
  {same}-c:
    from: {origin}
    to: {same}
    datasets: [trade.shipment]
    legal_basis: TEST-BASIS
    headers: [traceparent]
    transform: {{national_id: drop, contact_email: pseudonymize}}
  {fewer}-c:
    from: {origin}
    to: {fewer}
    datasets: [trade.shipment]
    legal_basis: TEST-BASIS
    transform: {{national_id: drop, contact_email: pseudonymize}}
"""


def murmur2(data: bytes) -> int:
    """Java's ``Utils.murmur2`` (Kafka's default partitioner), written from its definition here,
    independently of the code under test; checked against Kafka's own test vectors below."""
    m = 0x5BD1E995
    h = (0x9747B28C ^ len(data)) & 0xFFFFFFFF
    n4 = len(data) // 4
    for i in range(n4):
        k = (int.from_bytes(data[4 * i : 4 * i + 4], "little") * m) & 0xFFFFFFFF
        k = ((k ^ (k >> 24)) * m) & 0xFFFFFFFF
        h = ((h * m) & 0xFFFFFFFF) ^ k
    tail = data[4 * n4 :]
    if len(tail) >= 3:
        h ^= tail[2] << 16
    if len(tail) >= 2:
        h ^= tail[1] << 8
    if tail:
        h = ((h ^ tail[0]) * m) & 0xFFFFFFFF
    h = ((h ^ (h >> 13)) * m) & 0xFFFFFFFF
    h ^= h >> 15
    return h - (1 << 32) if h & 0x80000000 else h


def java_partition(key: bytes, partitions: int) -> int:
    return (murmur2(key) & 0x7FFFFFFF) % partitions  # Utils.toPositive(murmur2(key)) % n


def test_murmur2_matches_kafkas_test_vectors() -> None:
    assert murmur2(b"21") == -973932308
    assert murmur2(b"foobar") == -790332482
    assert murmur2(b"a-little-bit-longer-string") == -1486304829
    assert murmur2(b"abc") == 479470107


@pytest.fixture
def env(zones, tmp_path):
    from corridor.commands.provision import provision_topics

    tag = uuid.uuid4().hex[:8]
    names = {"origin": f"o{tag}", "same": f"s{tag}", "fewer": f"f{tag}"}
    path = tmp_path / "corridors.yaml"
    path.write_text(TEMPLATE.format(**names, keys=tmp_path / "keys", repo=REPO,
                                    ob=zones.endpoint("hk").bootstrap,
                                    db=zones.endpoint("eu").bootstrap))
    provision_topics(str(path), SOURCE_PARTITIONS)
    config = load_config(path)
    fewer_topic = topics.corridor_topic(names["origin"], names["fewer"], DATASET)
    kadmin.delete_topics(zones.admin("eu"), [fewer_topic])
    wait_until(lambda: fewer_topic not in zones.admin("eu").list_topics(timeout=10).topics, 30,
               "the corridor topic to be deleted")
    kadmin.ensure_topics(zones.admin("eu"), [kadmin.TopicSpec(fewer_topic, 2)])
    yield config, names
    eu = zones.admin("eu")
    mine = [t for t in eu.list_topics(timeout=10).topics if tag in t]
    kadmin.delete_topics(eu, mine)
    kadmin.delete_topics(zones.admin("hk"), [topics.outbound(names["origin"], DATASET)])


def _produce(config, origin: str, admin) -> dict[str, tuple[bytes, int, int]]:
    """COUNT records keyed by their national id; lineage -> (key, partition, timestamp)."""
    from corridor.dev.sample import _schema

    schema = _schema(DATASET)
    rows = generate_rows(DATASET, COUNT, seed=11, withheld_share=0.0)
    ids = [f"N{i % 150:05d}(7)".encode() for i in range(COUNT)]  # each person several times
    producer = PlainProducer(zone_endpoint(config, origin), admin)
    source = topics.outbound(origin, DATASET)
    sent = {}
    base = int(time.time() * 1000) - 3_600_000
    for i, (row, key) in enumerate(zip(rows, ids, strict=True)):
        row.update(national_id=key.decode(), consent=True)
        # Event times an hour back, distinct per record (far older ones would be deleted by
        # the topics' time retention before the corridor reads them: CreateTime counts).
        partition, stamp = i % SOURCE_PARTITIONS, base + 1_009 * i
        producer.produce(source, encode(row, schema), key,
                         [("traceparent", b"00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7"
                                          b"-01"),
                          ("x-user-email", (row["contact_email"] or "x@park.example").encode()),
                          ("corridor-legal-basis", b"FORGED")],
                         partition=partition, timestamp_ms=stamp)
        sent[key.decode() + f"#{i}"] = (key, partition, stamp)
    producer.flush(60)
    # Lineages follow from the per-partition order of production.
    out, next_offset = {}, [0] * SOURCE_PARTITIONS
    for key, partition, stamp in sent.values():
        out[str(Lineage(source, partition, next_offset[partition]))] = (key, partition, stamp)
        next_offset[partition] += 1
    return out


def _run(zones, config, tmp_path: Path, corridor: str, total: int) -> None:
    destination = topics.corridor_topic(config.corridors[corridor].origin,
                                        config.corridors[corridor].destination, DATASET)

    class Env:  # what Processor needs of a corridor env
        path = config.path
        name = corridor

    proc = Processor(Env, tmp_path, corridor)  # type: ignore[arg-type]
    try:
        wait_until(lambda: sum(1 for _ in read_to_end(zones.endpoint("eu"), zones.credentials.admin,
                                                      destination)) >= total,
                   180, f"{total} records in {destination}", every_s=1.0)
    finally:
        assert proc.stop() == 0, proc.log()[-3000:]
        proc.close()


def test_key_timestamp_partition_and_headers_cross_as_the_policy_says(zones, env, tmp_path):
    config, names = env
    admin = zones.credentials.admin
    sent = _produce(config, names["origin"], admin)
    same, fewer = f"{names['same']}-c", f"{names['fewer']}-c"
    _run(zones, config, tmp_path, same, COUNT)
    _run(zones, config, tmp_path, fewer, COUNT)
    source_keys = {key for key, _, _ in sent.values()}

    # 1. No source key bytes anywhere on the destination's disk (read_uncommitted: aborted
    # transactions too), in keys or values, across every topic of these corridors and the
    # shared catalog.
    eu = zones.endpoint("eu")
    tag = names["origin"][1:]
    scanned = [t for t in zones.admin("eu").list_topics(timeout=10).topics if tag in t]
    scanned.append(topics.SCHEMAS)
    seen = 0
    for topic in scanned:
        for rec in read_to_end(eu, admin, topic, uncommitted=True):
            seen += 1
            for part in (rec.key or b"", rec.value or b""):
                leaked = [k for k in source_keys if k in part]
                assert not leaked, f"{topic}/{rec.partition}/{rec.offset} holds {leaked[:3]}"
    assert seen >= 2 * COUNT

    for corridor, partitions in ((same, SOURCE_PARTITIONS), (fewer, 2)):
        topic = topics.corridor_topic(names["origin"], corridor.split("-")[0], DATASET)
        by_source: dict[bytes, set[bytes]] = {}
        records = list(read_to_end(eu, admin, topic))
        assert len(records) == COUNT
        for rec in records:
            lineage = rec.header("corridor-lineage")
            key, source_partition, stamp = sent[lineage]  # type: ignore[index]
            assert rec.key is not None and rec.key != key
            by_source.setdefault(key, set()).add(rec.key)
            # 2. Timestamps: the source record's, matched by lineage.
            assert rec.timestamp_ms == stamp, lineage
            # 3. Partitions: the source's number when the counts allow, else Java's murmur2.
            if partitions == SOURCE_PARTITIONS:
                assert rec.partition == source_partition, lineage
            else:
                assert rec.partition == java_partition(rec.key, partitions), lineage
            # 4. Headers: traceparent only where allowed; never the park's e-mail; the
            # corridor's own legal basis, once.
            names_ = [k for k, _ in rec.headers]
            assert "x-user-email" not in names_
            assert ("traceparent" in names_) == (corridor == same)
            assert names_.count("corridor-legal-basis") == 1
            assert rec.header("corridor-legal-basis") == "TEST-BASIS"
        # Equal source keys give equal destination keys (and different ones stay apart).
        assert all(len(v) == 1 for v in by_source.values())
        assert len({next(iter(v)) for v in by_source.values()}) == len(by_source)

    # 5. What an analytics consumer and `corridor tail` see: the key, its treatment, the time.
    from corridor.commands.tail import render
    from corridor.sdk import CorridorConsumer

    topic = topics.corridor_topic(names["origin"], names["same"], DATASET)
    with CorridorConsumer(eu, topic, principal=admin) as consumer:
        got = list(consumer.records(max_records=5, idle_timeout_s=20))
    assert len(got) == 5
    for rec in got:
        key, _, stamp = sent[rec.lineage]
        assert rec.key_treatment == "pseudonymize" and rec.timestamp_ms == stamp
        line = json.loads(render(rec))
        assert line["key"] == rec.key.decode() and line["key_treatment"] == "pseudonymize"  # type: ignore[union-attr]
        assert key.decode() not in render(rec)


def test_validate_refuses_keep_of_a_personal_key_with_its_line(tmp_path):
    text = (REPO / "corridors.yaml").read_text()
    marker = "    legal_basis: PDPO-RMCC\n"
    assert marker in text
    bad = text.replace(marker, marker + "    key: keep\n", 1)
    path = tmp_path / "corridors.yaml"
    path.write_text(bad.replace("schemas/", f"{REPO}/schemas/"))
    line = bad.splitlines().index("    key: keep") + 1
    done = subprocess.run([sys.executable, "-m", "corridor.cli", "validate", str(path)],
                          capture_output=True, text=True, cwd=REPO, timeout=60)
    assert done.returncode != 0
    assert f"{path}:{line}:" in done.stdout + done.stderr
    assert "corridors.hk-eu.key" in done.stdout + done.stderr
