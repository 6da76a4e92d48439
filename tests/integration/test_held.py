"""Remediation of held records on real brokers and a real registry (issue 16): records a
running corridor quarantined for a schema id its origin registry did not know cross, once,
after the schema is registered and an operator releases them; `corridor verify` accounts
for them; a repeated release is a no-op; a record today's policy still withholds stays."""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from confluent_kafka.schema_registry import Schema, SchemaRegistryClient

from corridor.core import topics
from corridor.core.wire import LINEAGE, REASON, RELEASED, confluent_frame, registry_subject
from corridor.dev.sample import encode, generate_rows
from corridor.kafka.io import PlainProducer, read_to_end
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.sdk import CorridorConsumer
from corridor.zones import local
from corridor.zones.launcher import default_specs
from corridor.zones.registry import registry_url
from tests.unit.avro_samples import body

from .corridor_env import PSEUDONYMIZED, REPO, CorridorEnv, drop_topics, make_corridor
from .processor_env import DATASET, Processor, committed, source_end, wait_until

pytestmark = pytest.mark.integration

HK, = default_specs(["hk"])
HELD = 20


@pytest.fixture
def env(zones: Any, tmp_path: Path) -> Iterator[CorridorEnv]:
    from corridor.commands.provision import provision_topics

    started = local.registries().up([HK], print)  # adopted when it runs
    made = make_corridor(zones, tmp_path, registries=(registry_url(HK), None),
                         transform=PSEUDONYMIZED)
    provision_topics(str(made.path), 3)
    LocalKekProvider(made.keys).init(made.dest)
    yield made
    drop_topics(zones, made)
    if started:
        local.registries().down(default_specs(started), print)


def _cli(env: CorridorEnv, *args: str) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "CORRIDOR_HOME": str(REPO), "CORRIDOR_OPERATOR": "ops-test",
                   "CORRIDOR_LOG_JSON": "1"}
    return subprocess.run([sys.executable, "-m", "corridor.cli", *args, "--config",
                           str(env.path)], capture_output=True, text=True, cwd=REPO,
                          env=environment, timeout=300)


def _json(done: subprocess.CompletedProcess[str]) -> Any:
    try:
        return json.loads(done.stdout)
    except ValueError:
        raise AssertionError(f"exit {done.returncode}\n{done.stdout}\n{done.stderr}") from None


def _delivered(zones: Any, env: CorridorEnv) -> list[Any]:
    """The corridor topic, read_committed."""
    topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    return list(read_to_end(zone_endpoint(env.config, env.dest), zones.credentials.admin, topic))


def _next_schema_id(registry: SchemaRegistryClient) -> int:
    """The id the registry gives the next new schema content (it counts up by one): a
    schema id nobody has registered YET. Checked when the schema is registered."""
    probe = {"type": "record", "name": f"Probe{uuid.uuid4().hex[:8]}",
             "fields": [{"name": "a", "type": "int"}]}
    return registry.register_schema(f"probe-{uuid.uuid4().hex[:8]}-value",
                                    Schema(json.dumps(probe), "AVRO")) + 1


def test_quarantined_records_cross_once_after_their_schema_is_registered(zones, env, tmp_path):
    admin = zones.credentials.admin
    source = topics.outbound(env.origin, DATASET)
    schema = env.config.datasets[DATASET].schema
    registry = SchemaRegistryClient({"url": registry_url(HK)})
    unknown_id = _next_schema_id(registry)
    rows = [{**r, "consent": True} for r in generate_rows(DATASET, HELD + 3, seed=16)]
    park = PlainProducer(zone_endpoint(env.config, env.origin), admin)
    # An hour ago: a source timestamp older than the topic's retention would let the broker
    # delete the held records' source (a partition of only such records goes at its next
    # retention check), and the release would find them without source.
    stamp = int(time.time() * 1000) - 3_600_000
    for i, row in enumerate(rows[:HELD]):  # a park writes with a schema not registered yet
        park.produce(source, confluent_frame(unknown_id, body(schema.parsed, row)),
                     f"held-{i}".encode(), partition=i % 3, timestamp_ms=stamp + i)
    for i, row in enumerate(rows[HELD:]):  # and plain records, one with a key shared above
        park.produce(source, encode(row, schema), b"held-0" if i == 0 else f"ok-{i}".encode(),
                     partition=0)
    park.produce(source, encode({**rows[0], "consent": False}, schema), b"no-consent",
                 partition=1)
    park.flush()

    proc = Processor(env, tmp_path, "a")
    try:
        wait_until(lambda: committed(env, admin) == source_end(env, admin) == HELD + 4, 120,
                   "the corridor to commit every source record")
        listed = _json(_cli(env, "held", "list", "--corridor", env.name, "-o", "json"))
        assert listed["count"] == HELD + 1
        reasons = {r["reason"] for r in listed["records"]}
        assert reasons == {f"decode: unknown schema id {unknown_id}", "withhold: consent == false"}
        quarantined = {r["lineage"] for r in listed["records"] if r["outcome"] == "quarantined"}
        assert len(quarantined) == HELD
        before = len(_delivered(zones, env))
        assert before == 3

        # The schema is published (the same fields, so it reads what the park wrote).
        published = copy.deepcopy(schema.raw)
        published["doc"] = f"shipment as the park registered it ({uuid.uuid4().hex[:6]})"
        got = registry.register_schema(registry_subject(source),
                                       Schema(json.dumps(published), "AVRO"))
        assert got == unknown_id, "the registry did not give the next id (the test's premise)"

        dry = _cli(env, "held", "release", "--corridor", env.name, "--reason",
                   "schema-registered", "--dry-run", "-o", "json")
        plan = _json(dry)
        assert dry.returncode == 1  # the withheld record stays held
        assert (plan["dry_run"], plan["crossed"], plan["still_held"]) == (True, HELD, 1)
        assert len(_delivered(zones, env)) == before  # a dry run writes nothing

        done = _cli(env, "held", "release", "--corridor", env.name, "--reason",
                    "schema-registered", "-o", "json")
        report = _json(done)
        assert done.returncode == 1, done.stderr[-2000:]
        assert report["crossed"] == HELD and report["crossed_by_previous"] == {
            "quarantined": HELD}
        assert report["still_held"] == 1  # today's policy still withholds it
        assert report["still_held_by_reason"] == {"withhold: consent == false": 1}
        assert report["by"] == "ops-test" and report["without_source"] == 0
    finally:
        proc.stop()
        proc.close()

    # Exactly once: 20 distinct released lineages, at read_committed, each with its source's
    # timestamp and (pseudonymized) key, its encrypted field readable with the zone's key.
    out = _delivered(zones, env)
    released = [r for r in out if r.header(RELEASED) == report["release"]]
    assert len(out) == before + HELD and len(released) == HELD
    assert {r.header(LINEAGE) for r in released} == quarantined
    by_lineage = {r.header(LINEAGE): r for r in out}
    first = f"{source}/0/0"  # key held-0
    framed_on_0 = len(range(0, HELD, 3))
    shared = by_lineage[f"{source}/0/{framed_on_0}"]  # the first plain record: key held-0 too
    assert shared.header(RELEASED) is None
    assert by_lineage[first].key == shared.key != b"held-0"  # the same key policy applied
    assert sorted(r.timestamp_ms for r in released) == [stamp + i for i in range(HELD)]
    with CorridorConsumer(env.config, topics.corridor_topic(env.origin, env.dest, DATASET),
                          kek_provider=LocalKekProvider(env.keys)) as consumer:
        emails = {rec.lineage: rec.value["contact_email"]
                  for rec in consumer.records(idle_timeout_s=5)}
    assert sorted(emails[lin] or "" for lin in quarantined) == sorted(
        r["contact_email"] or "" for r in rows[:HELD])

    # verify: one final outcome each, 20 released (they were quarantined), the release shown
    check = _cli(env, "verify", "--corridor", env.name, "-o", "json")
    accounting = _json(check)
    assert check.returncode == 0 and accounting["ok"], accounting
    assert (accounting["source"], accounting["delivered"], accounting["withheld"],
            accounting["quarantined"], accounting["released"]) == (HELD + 4, 3, 1, 0, HELD)
    assert accounting["released_by_previous"] == {"quarantined": HELD}
    assert [(r["release"], r["records"], r["by"], r["reason"]) for r in accounting["releases"]] \
        == [(report["release"], HELD, "ops-test", "schema-registered")]
    text = _cli(env, "verify", "--corridor", env.name)
    assert "released" in text.stdout and report["release"] in text.stdout

    # the audit entry: who released what and why
    events = [json.loads(r.value) for r in read_to_end(
        zone_endpoint(env.config, env.origin), admin, topics.audit(env.origin))
        if r.value and b'"release"' in r.value]
    mine = [e for e in events if e.get("corridor") == env.name]
    assert len(mine) == 1 and mine[0]["event"] == "release"
    assert (mine[0]["count"], mine[0]["by"], mine[0]["reason"]) == (HELD, "ops-test",
                                                                     "schema-registered")
    assert mine[0]["previous"] == {"quarantined": HELD} and mine[0]["still_held"] == 1

    # a second release is a no-op
    again = _cli(env, "held", "release", "--corridor", env.name, "--reason",
                 "schema-registered", "--held-reason", "decode:", "-o", "json")
    second = _json(again)
    assert again.returncode == 0, again.stderr[-2000:]
    assert (second["crossed"], second["already_released"]) == (0, HELD)
    assert second["already_released_by"] == {report["release"]: HELD}
    assert len(_delivered(zones, env)) == before + HELD
    assert _json(_cli(env, "verify", "--corridor", env.name, "-o", "json"))["released"] == HELD

    # what is still held, and what a released record looks like now
    still = _json(_cli(env, "held", "list", "--corridor", env.name, "-o", "json"))
    assert [(r["outcome"], r["reason"]) for r in still["records"]] == [
        ("withheld", "withhold: consent == false")]
    every = _json(_cli(env, "held", "list", "--corridor", env.name, "--include-released",
                       "-o", "json"))
    assert every["count"] == HELD + 1
    shown = _json(_cli(env, "held", "show", first, "--corridor", env.name, "-o", "json"))
    assert shown["released"] == report["release"] and shown["outcome"] == "quarantined"
    assert shown["value"]["shipment_id"] == rows[0]["shipment_id"]  # it decodes now
    assert shown["headers"][REASON] == f"decode: unknown schema id {unknown_id}"
