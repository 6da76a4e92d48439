"""`corridor audit verify` on real brokers, and the auditor principal's least rights.

A throwaway corridor (unique zones, corridor_env.make_corridor) is provisioned with its
principals and ACLs into a private credentials file. Two chains of audit events and
their checkpoints, signed with the origin zone's key, are built with ``core.audit`` and
produced to the real audit topics (origin events and checkpoints, the destination's
copy). The command is run as a subprocess, as an operator or auditor would: on the clean
evidence, then on tampered copies of it in fresh topics (the hidden topic options), each
naming its first break. The auditor's denials are asserted by Kafka error code and
recorded for the `make chaos` report (tests/integration/denials.py).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from confluent_kafka import KafkaError
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corridor.core import acl, topics
from corridor.core.audit import (
    AuditEvent,
    BatchSummary,
    ChainState,
    Checkpoint,
    content_hash,
    encode_checkpoint,
    encode_event,
    sign_checkpoint,
)
from corridor.core.errors import KafkaUnavailable
from corridor.core.topics import topic_plan
from corridor.kafka import admin as kadmin
from corridor.kafka.acl_sync import drop_principals, sync_acls
from corridor.kafka.evidence import read_log
from corridor.kafka.io import PlainProducer
from corridor.keys.signing import init_signing_key, load_signing_key
from corridor.processor.resolve import zone_endpoint
from tests.unit.audit_fixtures import chains

from .corridor_env import REPO, CorridorEnv, drop_topics, make_corridor
from .denials import Denial, record_denials
from .test_acl import Env as AclEnv
from .test_acl import _consume_error, _deny, _metadata_error, _private_credentials, _produce_error

pytestmark = pytest.mark.integration

EVENTS_PER_CHAIN = 8


class Audit:
    """The throwaway corridor, its credentials, and the evidence produced to its topics."""

    def __init__(self, cenv: CorridorEnv, acl_env: AclEnv, events: list[AuditEvent],
                 checkpoints: list[Checkpoint], key_pem: Path) -> None:
        self.c, self.a = cenv, acl_env
        self.events, self.checkpoints, self.key_pem = events, checkpoints, key_pem
        self.extra = [("hk", topics.audit_checkpoints(cenv.origin)),
                      ("eu", topics.checkpoint_copy(cenv.origin))]

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        environ = {**os.environ, "CORRIDOR_CREDENTIALS": str(self.a.creds.path)}
        return subprocess.run([sys.executable, "-m", "corridor.cli", "audit", *args,
                               "-c", str(self.c.path)], capture_output=True, text=True,
                              cwd=REPO, env=environ, timeout=180)

    def verify(self, *args: str) -> tuple[int, dict]:
        done = self.cli("verify", "--zone", self.c.origin, "-o", "json", *args)
        assert done.returncode in (0, 1), done.stderr
        return done.returncode, json.loads(done.stdout)


def _batch(i: int) -> BatchSummary:
    return BatchSummary(None, "TEST-BASIS", "policyhash", 500 * i, 500 * i + 499,
                        outcomes={"delivered": 480, "withheld": 20},
                        protections={"encrypted": ("contact_email",)})


def _chains(cenv: CorridorEnv, key) -> tuple[list[AuditEvent], list[Checkpoint]]:
    """Two chains (source partitions 0 and 1), interleaved as a processor commits them,
    and a checkpoint of each chain after every second event."""
    return chains(cenv.name, topics.outbound(cenv.origin, "trade.shipment"), key,
                  EVENTS_PER_CHAIN, _batch, (0, 1))


def _produce(zones, zone: str, topic: str, values: list[bytes]) -> None:
    """*values* in this order (keyed uniquely: the audit topic of the plan is compacted)."""
    producer = PlainProducer(zones.endpoint(zone), zones.credentials.admin)
    for i, value in enumerate(values):
        producer.produce(topic, value, key=f"{i}".encode(), partition=0)
    producer.flush()


@pytest.fixture(scope="module")
def audit(zones, tmp_path_factory) -> Iterator[Audit]:
    tmp = tmp_path_factory.mktemp("audit")
    cenv = make_corridor(zones, tmp)
    creds = _private_credentials(tmp / "credentials.json", zones.credentials.admin)
    acl_env = AclEnv(cenv.path, cenv.config, creds, {"o": cenv.origin, "d": cenv.dest})
    cluster = {cenv.origin: "hk", cenv.dest: "eu"}
    extra = [(cenv.origin, topics.audit_checkpoints(cenv.origin)),
             (cenv.dest, topics.checkpoint_copy(cenv.origin))]
    for plan in topic_plan(cenv.config, 1):
        kadmin.ensure_topics(zones.admin(cluster[plan.zone]),
                             [kadmin.TopicSpec(plan.name, plan.partitions, plan.config)])
    for zone, name in extra:
        kadmin.ensure_topics(zones.admin(cluster[zone]), [kadmin.TopicSpec(name, 1)])
    key = init_signing_key(cenv.keys, cenv.origin)
    endpoints = {z: zone_endpoint(cenv.config, z) for z in cenv.config.zones}
    sync_acls(cenv.config, endpoints, creds)
    events, cps = _chains(cenv, key)
    _produce(zones, "hk", topics.audit(cenv.origin), [encode_event(e) for e in events])
    for zone, name in (("hk", extra[0][1]), ("eu", extra[1][1])):
        _produce(zones, zone, name, [encode_checkpoint(c) for c in cps])
    state = Audit(cenv, acl_env, events, cps, tmp / "origin-audit.pem")
    try:
        yield state
    finally:
        drop_principals(cenv.config, endpoints, creds)
        drop_topics(zones, cenv)
        for zone, name in extra:
            kadmin.delete_topics(zones.admin(cluster[zone]), [name])


@pytest.fixture(scope="module")
def denials() -> Iterator[list[Denial]]:
    seen: list[Denial] = []
    yield seen
    record_denials("test_audit_verify", seen)


def test_clean_evidence_verifies(audit):
    code, doc = audit.verify("--as", "admin")
    assert code == 0 and doc["ok"] is True and doc["first_break"] is None
    assert doc["corridors"][audit.c.name] == {
        "chains": 2, "events": 2 * EVENTS_PER_CHAIN, "replays": 0,
        "checkpoints": len(audit.checkpoints), "unverifiable": 0}
    assert doc["zones"][0]["copies"][audit.c.dest]["checkpoints_equal"] == len(audit.checkpoints)
    text = audit.cli("verify", "--zone", audit.c.origin, "--as", "admin")
    assert text.returncode == 0 and "OK: 2 chains, 16 events and 8 checkpoints" in text.stdout


def test_auditor_verifies_with_the_public_key_only(audit):
    pem = audit.cli("public-key", "--zone", audit.c.origin)
    assert pem.returncode == 0 and pem.stdout.startswith("-----BEGIN PUBLIC KEY-----")
    audit.key_pem.write_text(pem.stdout)
    code, doc = audit.verify("--as", "auditor", "--public-key", str(audit.key_pem))
    assert (code, doc["ok"]) == (0, True), doc["first_break"]


def _forge(event: AuditEvent, **changes: object) -> AuditEvent:
    changed = replace(event, **changes)  # type: ignore[arg-type]
    return replace(changed, hash=content_hash(changed))


def _altered(events: list[bytes]) -> list[bytes]:
    out = list(events)
    out[6] = out[6].replace(b'"withheld":20', b'"withheld":2')  # chain 0 seq 3
    return out


def _inserted(audit: Audit) -> list[bytes]:
    intruder = _forge(audit.events[4], prev="ab" * 32)  # chain 0 seq 2 after a stranger
    values = [encode_event(e) for e in audit.events]
    return values[:4] + [encode_event(intruder)] + values[4:]


# (case, events, checkpoints, destination copy) -> (kind, topic role, offset, partition, seq)
CASES = {
    "altered": ("events", 6, 0, 3),
    "deleted": ("events", 4, 0, 3),
    "swapped": ("events", 4, 0, 3),
    "inserted": ("events", 4, 0, 2),
    "resigned": ("checkpoints", 2, 0, 3),
    "copy": ("copy", 3, 1, 3),
}
KIND = {"altered": "altered", "deleted": "deleted", "swapped": "reordered",
        "inserted": "inserted", "resigned": "signature", "copy": "copy-differs"}


@pytest.mark.parametrize("case", list(CASES))
def test_a_tampered_copy_names_its_first_break(zones, audit, make_topic, case):
    values = [encode_event(e) for e in audit.events]
    cps = [encode_checkpoint(c) for c in audit.checkpoints]
    events, origin_cps, dest_cps = values, cps, cps
    if case == "altered":
        events = _altered(values)
    elif case == "deleted":
        events = values[:4] + values[6:]  # chain 0 seq 2 and chain 1 seq 2 removed
    elif case == "swapped":
        events = values[:4] + [values[6], values[5], values[4]] + values[7:]  # chain 0 3<->2
    elif case == "inserted":
        events = _inserted(audit)
    elif case == "resigned":
        cp = audit.checkpoints[2]  # chain 0 seq 3
        head = ChainState(cp.chain, cp.seq, cp.head_hash)
        origin_cps = list(cps)
        origin_cps[2] = encode_checkpoint(sign_checkpoint(Ed25519PrivateKey.generate(), head,
                                                          cp.ts_ms))
    else:  # the destination's copy of chain 1's seq 3 carries another time (re-signed)
        cp = audit.checkpoints[3]
        head = ChainState(cp.chain, cp.seq, cp.head_hash)
        dest_cps = list(cps)
        dest_cps[3] = encode_checkpoint(sign_checkpoint(
            load_signing_key(audit.c.keys, audit.c.origin), head, cp.ts_ms + 1))
    names = {"events": make_topic("hk", "audit", 1), "checkpoints": make_topic("hk", "cp", 1),
             "copy": make_topic("eu", "cpcopy", 1)}
    for role, zone, values_ in (("events", "hk", events), ("checkpoints", "hk", origin_cps),
                                ("copy", "eu", dest_cps)):
        _produce(zones, zone, names[role], values_)
    args = ("--as", "admin", "--events-topic", names["events"], "--checkpoints-topic",
            names["checkpoints"], "--copy-topic", f"{audit.c.dest}={names['copy']}")
    code, doc = audit.verify(*args)
    role, offset, partition, seq = CASES[case]
    first = doc["first_break"]
    assert code == 1 and doc["ok"] is False
    assert (first["kind"], first["topic"], first["offset"], first["chain"]["partition"],
            first["seq"]) == (KIND[case], names[role], offset, partition, seq), first
    if case == "altered":  # what a person reads
        text = audit.cli("verify", "--zone", audit.c.origin, *args)
        assert text.returncode == 1
        assert (f"BROKEN: first break: altered: chain {audit.c.name} "
                f"{topics.outbound(audit.c.origin, 'trade.shipment')}/0 seq 3, at "
                f"{names['events']} partition 0 offset 6: ") in text.stdout, text.stdout


def test_auditor_reads_the_evidence_and_nothing_else(audit, denials):
    c, a = audit.c, audit.a
    o_who, d_who = acl.auditor_principal(c.origin), acl.auditor_principal(c.dest)
    o_me, d_me = a.who(o_who), a.who(d_who)
    allowed = [(c.origin, o_me, topics.audit(c.origin)),
               (c.origin, o_me, topics.audit_checkpoints(c.origin)),
               (c.dest, d_me, topics.checkpoint_copy(c.origin)),
               (c.dest, d_me, topics.SCHEMAS)]
    for zone, me, topic in allowed:
        read_log(zone_endpoint(c.config, zone), me, topic)  # raises when refused
    denied = KafkaError.TOPIC_AUTHORIZATION_FAILED
    corridor = c.corridor
    for key, who, action, topic in [
        ("o", o_who, "see the source (park) topic", topics.outbound(c.origin, "trade.shipment")),
        ("o", o_who, "see the withheld topic", topics.withheld(corridor)),
        ("o", o_who, "see the quarantine topic", topics.quarantine(corridor)),
        ("d", d_who, "see a corridor data topic",
         topics.corridor_topic(c.origin, c.dest, "trade.shipment")),
        ("d", d_who, "see the corridor's offsets topic", topics.offsets_topic(c.name)),
        ("d", d_who, "see the published data keys", topics.KEYS),
    ]:
        _deny(denials, who, f"{action} (metadata)", denied,
              _metadata_error(a, key, a.who(who), topic))
    # Through the command's own reader: refused with the code, not "does not exist".
    with pytest.raises(KafkaUnavailable) as caught:
        read_log(zone_endpoint(c.config, c.dest), d_me,
                 topics.corridor_topic(c.origin, c.dest, "trade.shipment"))
    assert caught.value.code == "TOPIC_AUTHORIZATION_FAILED"
    denials.append(Denial(d_who, "read a corridor data topic (corridor.kafka.evidence)",
                          caught.value.code))
    # Without any WRITE grant an idempotent producer gets no producer id at all
    # (CLUSTER_AUTHORIZATION_FAILED, fatal); a plain producer reaches the topic check.
    for key, who, topic in [("o", o_who, topics.audit(c.origin)),
                            ("o", o_who, topics.audit_checkpoints(c.origin)),
                            ("d", d_who, topics.checkpoint_copy(c.origin))]:
        _deny(denials, who, f"write {topic}", denied,
              _produce_error(a, key, a.who(who), topic, **{"enable.idempotence": False}))
    _deny(denials, o_who, "consume the audit topic in a consumer group",
          KafkaError.GROUP_AUTHORIZATION_FAILED,
          _consume_error(a, "o", o_me, topics.audit(c.origin), f"{o_who}-x"))
