"""The audit trail on real brokers: a corridor SIGKILLed mid-stream still leaves one intact,
signed hash chain per source partition that accounts for every committed source offset
exactly once; and a transfer instrument that expires during a run stops records from
crossing from that moment on (withheld as ``instrument_expired: <id>``), with verify
still accounting for every record.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import subprocess
import sys
import threading
import time
from dataclasses import replace
from itertools import pairwise

import pytest
import structlog
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corridor.core import topics
from corridor.core.audit import (
    ChainId,
    ChainState,
    content_hash,
    decode_checkpoint,
    decode_event,
    encode_checkpoint,
    encode_event,
    sign_checkpoint,
    signer_id,
    verify_with_checkpoints,
)
from corridor.core.model import Lineage
from corridor.core.wire import LINEAGE, REASON
from corridor.kafka.audit_reader import by_chain, read_checkpoints, read_events
from corridor.kafka.io import PlainProducer, read_to_end, watermarks
from corridor.keys.signing import load_signing_key
from corridor.processor.resolve import zone_endpoint
from corridor.processor.wiring import make_runner

from .chaos_env import assert_exactly_once, corridor
from .corridor_env import REPO
from .processor_env import DATASET, Processor, committed, produce, verify, wait_until

pytestmark = pytest.mark.integration

TOTAL = 50_000


def _finish(env, tmp_path) -> None:
    final = Processor(env, tmp_path, "final", "--until-caught-up", "--idle-ms", "3000")
    try:
        assert final.wait(600) == 0, final.log()[-3000:]
    finally:
        final.close()


def test_the_chain_survives_a_sigkill_and_covers_every_committed_offset_once(zones, tmp_path,
                                                                           make_topic):
    admin = zones.credentials.admin
    with corridor(zones, tmp_path) as env:
        produce(env, admin, TOTAL, seed=21, bad_ratio=0.01)
        proc = Processor(env, tmp_path, "crash")
        try:
            wait_until(lambda: committed(env, admin) >= TOTAL // 2 or proc.proc.poll() is not None,
                       300, "half the records committed before the kill")
            assert proc.proc.poll() is None, proc.log()[-2000:]
            proc.kill()
        finally:
            proc.close()
        _finish(env, tmp_path)
        assert committed(env, admin) == TOTAL
        assert_exactly_once(verify(env, admin), TOTAL)

        origin, dest = zone_endpoint(env.config, env.origin), zone_endpoint(env.config, env.dest)
        source = topics.outbound(env.origin, DATASET)
        ends = {p: high for p, (_, high) in watermarks(origin, admin, source).items()}
        chains = by_chain(read_events(origin, admin, topics.audit(env.origin)))
        assert set(chains) == {ChainId(env.name, source, p) for p in ends}  # nothing else
        public = load_signing_key(env.keys, env.origin).public_key()
        keys = {signer_id(public): public}
        signed = {"origin": read_checkpoints(origin, admin, topics.audit_checkpoints(env.origin)),
                  "destination": read_checkpoints(dest, admin, topics.checkpoint_copy(env.origin))}
        copies = [(c.chain, c.seq) for c in signed["destination"]]
        assert len(copies) == len(set(copies))  # the destination's copy: once per head signed
        counted = 0
        for chain, log in chains.items():
            for where, checkpoints in signed.items():
                report = verify_with_checkpoints(log, checkpoints, keys)
                assert report.ok, (where, chain, report.chain.broken, report.failure)
                assert report.checkpoints >= 1, (where, chain)  # at least the clean stop's
            # The head of every chain is signed in both zones (the final clean stop).
            assert any(c.chain == chain and c.seq == report.chain.head_seq
                       for c in signed["destination"])
            replays = set(report.chain.replays)
            events = [decode_event(v) for i, v in enumerate(log) if i not in replays]
            assert [e.seq for e in events] == list(range(len(events)))
            covered = [(e.summary.first_offset, e.summary.last_offset) for e in events]
            assert covered[0][0] == 0 and covered[-1][1] == ends[chain.partition] - 1, covered
            assert all(b[0] == a[1] + 1 for a, b in pairwise(covered)), covered
            counted += sum(sum(e.summary.outcomes.values()) for e in events)
        assert counted == TOTAL
        _audit_verify_catches_tampering(env, zones, make_topic)


def _audit_verify(env, *args: str) -> tuple[int, dict]:
    done = subprocess.run([sys.executable, "-m", "corridor.cli", "audit", "verify", "--zone",
                           env.origin, "--as", "admin", "-o", "json", "-c", str(env.path), *args],
                          capture_output=True, text=True, cwd=REPO, timeout=300,
                          env={**os.environ, "CORRIDOR_HOME": str(REPO)})
    assert done.returncode in (0, 1), done.stderr
    return done.returncode, json.loads(done.stdout)


def _audit_verify_catches_tampering(env, zones, make_topic) -> None:
    """`corridor audit verify` on the run's own evidence: it passes; then on copies of the
    real audit topic, each with one change, it fails naming the first break's kind."""
    code, doc = _audit_verify(env)
    assert code == 0 and doc["ok"], doc["first_break"]
    admin = zones.credentials.admin
    origin = zone_endpoint(env.config, env.origin)
    values = sorted(read_to_end(origin, admin, topics.audit(env.origin)),
                    key=lambda r: r.offset)
    raw = [r.value or b"" for r in values]
    cps = [r.value or b"" for r in sorted(read_to_end(origin, admin,
                                                      topics.audit_checkpoints(env.origin)),
                                          key=lambda r: r.offset)]
    # Two events of one chain with consecutive seqs (the longest chain; no replay between).
    decoded = [decode_event(v) for v in raw]
    chains: dict[ChainId, list[int]] = {}
    for i, e in enumerate(decoded):
        chains.setdefault(e.chain, []).append(i)
    mine = max(chains.values(), key=len)
    a, b = next((i, j) for i, j in pairwise(mine) if decoded[j].seq == decoded[i].seq + 1)
    victim = decoded[a]
    forged = replace(victim, prev="ab" * 32)
    forged = replace(forged, hash=content_hash(forged))
    out = victim.summary.outcomes
    key = next(k for k, v in out.items() if v > 0)
    altered = raw[a].replace(f'"{key}":{out[key]}'.encode(),
                             f'"{key}":{out[key] + 1}'.encode(), 1)
    assert altered != raw[a]
    cases = {
        "altered": (raw[:a] + [altered] + raw[a + 1:], cps),
        "deleted": (raw[:a] + raw[a + 1:], cps),
        "reordered": (raw[:a] + [raw[b]] + raw[a + 1:b] + [raw[a]] + raw[b + 1:], cps),
        "inserted": (raw[:a] + [encode_event(forged)] + raw[a:], cps),
    }
    first = decode_checkpoint(cps[0])
    other = sign_checkpoint(Ed25519PrivateKey.generate(),
                            ChainState(first.chain, first.seq, first.head_hash), first.ts_ms)
    cases["signature"] = (raw, [encode_checkpoint(other)] + cps[1:])
    for kind, (events, checkpoints) in cases.items():
        names = (make_topic("hk", "audit", 1), make_topic("hk", "cp", 1))
        producer = PlainProducer(origin, admin)
        for topic, values_ in zip(names, (events, checkpoints), strict=True):
            for i, value in enumerate(values_):
                producer.produce(topic, value, f"{i}".encode(), partition=0)
        producer.flush(60)
        code, doc = _audit_verify(env, "--events-topic", names[0], "--checkpoints-topic",
                                  names[1])
        assert code == 1 and doc["first_break"]["kind"] == kind, (kind, doc["first_break"])


INSTRUMENT = """\
instruments:
  rmc-test:
    kind: HK-RMC
    reference: TEST-RMC-1
    parties: [Origin Ltd, Destination GmbH]
    signed: 2020-01-01
    expires: {expires}
    purpose: testing the expiry
    retention: 30d
"""


def test_records_stop_crossing_when_the_instrument_expires(zones, tmp_path):
    """The processor's wall clock is shifted so that the end of the instrument's last day
    (UTC) comes 6 s into the run; records keep arriving before and after it."""
    admin = zones.credentials.admin
    today = dt.datetime.now(dt.UTC).date()

    def edit(text: str) -> str:
        text = text.replace("    legal_basis: TEST-BASIS\n",
                            "    legal_basis: TEST-BASIS\n    instrument: rmc-test\n")
        return text + INSTRUMENT.format(expires=today.isoformat())

    with corridor(zones, tmp_path, edit=edit) as env:
        end_of_day_ms = int(dt.datetime.combine(today + dt.timedelta(days=1), dt.time(),
                                                dt.UTC).timestamp() * 1000)
        expiry_real_ms = int(time.time() * 1000) + 6000
        shift = end_of_day_ms - expiry_real_ms
        with structlog.testing.capture_logs() as logged:
            runner = make_runner(env.config, env.name, "0", structlog.get_logger(),
                                 wall_ms=lambda: int(time.time() * 1000) + shift)
            stop = threading.Event()
            thread = threading.Thread(target=runner.run, args=(stop,), daemon=True)
            thread.start()
            try:
                sent = _produce_for(env, admin, seconds=12.0)
                wait_until(lambda: committed(env, admin) >= sent, 120, "every record committed")
            finally:
                stop.set()
                thread.join(60)
        events = [e["event"] for e in logged]
        assert "instrument_expiring" in events and "instrument_expired" in events

        report = verify(env, admin)
        assert_exactly_once(report, sent)
        reason = "instrument_expired: rmc-test"
        assert report.delivered > 0 and report.withheld_by_reason.get(reason, 0) > 0

        origin, dest = zone_endpoint(env.config, env.origin), zone_endpoint(env.config, env.dest)
        source = topics.outbound(env.origin, DATASET)
        stamp = {Lineage(r.topic, r.partition, r.offset): r.timestamp_ms
                 for r in read_to_end(origin, admin, source)}
        late = {lin for lin, ts in stamp.items() if ts >= expiry_real_ms}
        assert late, "no record was produced after the expiry"
        # Everything that reached the destination's disk, aborted transactions included.
        crossed = read_to_end(dest, admin, topics.corridor_topic(env.origin, env.dest, DATASET),
                              uncommitted=True)
        for rec in crossed:
            assert rec.header("corridor-instrument") == "rmc-test"
            topic, partition, offset = (rec.header(LINEAGE) or "").rsplit("/", 2)
            lineage = Lineage(topic, int(partition), int(offset))
            assert lineage not in late, f"{lineage} was produced after the expiry and crossed"
        withheld = {r.key.decode(): r.header(REASON)
                    for r in read_to_end(origin, admin, topics.withheld(env.corridor))
                    if r.key is not None}
        for lin in late:
            assert withheld.get(str(lin)) == reason, lin


def _produce_for(env, admin, seconds: float) -> int:
    """Records at a steady pace for ``seconds``; how many were sent."""
    from corridor.dev.sample import generate_records

    values = generate_records(DATASET, 4000, seed=33)
    producer = PlainProducer(zone_endpoint(env.config, env.origin), admin)
    source = topics.outbound(env.origin, DATASET)
    sent, deadline = 0, time.monotonic() + seconds
    while time.monotonic() < deadline and sent < len(values):
        for value in values[sent:sent + 50]:
            producer.produce(source, value, f"k{sent}".encode())
            sent += 1
        producer.flush(30)
        time.sleep(0.1)  # the pace of a park, not a wait on a condition
    return sent


def test_provision_turns_a_compacted_audit_topic_into_one_kept_by_time(zones, tmp_path):
    """An audit topic left compacted by an older provision: compaction would keep one event
    per key, so provision sets it to delete by time, for the file's retention."""
    from corridor.commands.provision import provision_topics
    from corridor.core.topics import COMPACTED
    from corridor.kafka.topic_config import set_topic_config, topic_config

    with corridor(zones, tmp_path) as env:
        name, client = topics.audit(env.origin), zones.admin("hk")

        def settled(policy: str) -> None:  # a config change reaches describe a moment later
            wait_until(lambda: topic_config(client, name, "cleanup.policy") == policy, 30,
                       f"cleanup.policy={policy}")

        set_topic_config(client, name, {**COMPACTED, "retention.ms": None})  # as made before
        settled("compact")
        provision_topics(str(env.path), 3)
        settled("delete")
        assert topic_config(client, name, "retention.ms") == str(3 * 365 * 86_400_000)
