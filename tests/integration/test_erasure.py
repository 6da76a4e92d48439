"""Erasure by key destruction on real brokers (issue 16): subjects S and T cross through two
corridors to two zones (on eu's and asean's clusters); `corridor erase --subject S` makes
consumers in both zones get Erased on S's erasable field only (S's other fields and all of
T's still read, a running consumer too), the audit lists both recipients, a second erase
says already erased, S's data crossing afterwards reads under a new key, and once
`_corridor.subject_keys` compacts, Kafka's own DumpLogSegments finds no copy of S's wrapped
keys in either destination's log files (and still finds T's). And a consent withdrawal
chained to erasure: `corridor consent follow --on-withdraw erase`."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import uuid
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from corridor.core import topics
from corridor.core.config import load_config
from corridor.core.consent import Consent, PurposeConsent
from corridor.core.crypto.subject_keys import SubjectKeyRecord, key_id_secret, subject_tag
from corridor.core.errors import Erased
from corridor.core.subjects import subject_id, subject_key
from corridor.dev.sample import generate_rows
from corridor.kafka.io import PlainProducer, read_to_end
from corridor.kafka.subject_keys_topic import read_subject_keys
from corridor.kafka.topic_config import set_topic_config
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import subject_secret, zone_endpoint
from corridor.sdk import CorridorConsumer, ParkProducer

from .corridor_env import REPO
from .processor_env import DATASET, Processor, verify, wait_until

pytestmark = pytest.mark.integration
S, T = "S-4711", "T-0815"
PER_SUBJECT = 6

TEMPLATE = """\
zones:
  {o}: {{bootstrap: "{ob}", jurisdiction: HK, keys: {{provider: local, path: "{keys}"}}}}
  {d}: {{bootstrap: "{db}", jurisdiction: EU, keys: {{provider: local, path: "{keys}"}}}}
  {a}: {{bootstrap: "{ab}", jurisdiction: SG, keys: {{provider: local, path: "{keys}"}}}}
datasets:
  trade.shipment:
    schema: {repo}/schemas/trade/shipment.avsc
    subject: national_id
    fields: {{contact_name: personal, contact_email: personal, national_id: sensitive}}
corridors:
  {o}-{d}:
    from: {o}
    to: {d}
    datasets: [trade.shipment]
    legal_basis: TEST-BASIS
    transform: {{national_id: drop, contact_email: encrypt}}
    erasable: [contact_email]
  {o}-{a}:
    from: {o}
    to: {a}
    datasets: [trade.shipment]
    legal_basis: TEST-BASIS
    transform: {{national_id: drop, contact_email: encrypt}}
    erasable: [contact_email]
"""
# Only the subject keys topic is shared with others; its compaction settings are the test's
# for the while and put back afterwards (provisioned: compact, lag 60 s).
# file.delete.delay.ms: a cleaned segment's old file lingers as *.deleted (60 s by default)
# and still holds the keys; the test waits until it is gone too.
COMPACT_NOW = {"segment.ms": "1000", "min.cleanable.dirty.ratio": "0.01",
               "min.compaction.lag.ms": "0", "delete.retention.ms": "1000",
               "file.delete.delay.ms": "1000"}
RESTORE: dict[str, str | None] = {"segment.ms": None, "min.cleanable.dirty.ratio": None,
                                  "min.compaction.lag.ms": "60000", "delete.retention.ms": None,
                                  "file.delete.delay.ms": None}
LEFTOVERS = (".deleted", ".cleaned", ".swap")  # files of a segment being replaced


def _env(zones: Any, tmp_path: Path, purposes: tuple[str, str] | None = None
         ) -> SimpleNamespace:
    """Two corridors out of a new origin; *purposes*: the first corridor's and the second's
    (with a consent view bound of 2 s)."""
    from corridor.commands.provision import provision_topics

    tag = uuid.uuid4().hex[:8]
    o, d, a = f"o{tag}", f"d{tag}", f"a{tag}"
    keys = tmp_path / "keys"
    path = tmp_path / "corridors.yaml"
    text = TEMPLATE.format(o=o, d=d, a=a, keys=keys, repo=REPO,
                           ob=zones.endpoint("hk").bootstrap, db=zones.endpoint("eu").bootstrap,
                           ab=zones.endpoint("asean").bootstrap)
    if purposes is not None:  # after each corridor's erasable line
        line = "    erasable: [contact_email]\n"
        first, second, rest = text.split(line)
        text = "".join([first, line, _consent_lines(purposes[0]), second, line,
                        _consent_lines(purposes[1]), rest])
    path.write_text(text)
    provision_topics(str(path), 2)
    ring = LocalKekProvider(keys)
    for zone in (d, a):
        ring.init(zone)
    config = load_config(path)
    return SimpleNamespace(path=path, config=config, origin=o, ring=ring, name=f"{o}-{d}",
                           dests={d: "eu", a: "asean"},
                           corridors={f"{o}-{d}": d, f"{o}-{a}": a})


def _consent_lines(purpose: str) -> str:
    return f"    purposes: [{purpose}]\n    consent_staleness_seconds: 2\n"


def _produce(env: SimpleNamespace, start: int, count: int) -> None:
    """*count* records each for S and T, emails numbered from *start*."""
    park = ParkProducer(env.config, env.origin, DATASET)
    rows = generate_rows(DATASET, 2 * count, seed=start)
    for i, row in enumerate(rows):
        who = S if i % 2 == 0 else T
        row.update(national_id=who, contact_email=f"{who}.{start + i // 2}@example.com",
                   consent=True)
        park.send(row, key=f"{who}-{start + i}")
    park.flush()


def _topic(env: SimpleNamespace, corridor: str) -> str:
    return topics.corridor_topic(env.origin, env.corridors[corridor], DATASET)


def _read_all(env: SimpleNamespace, corridor: str, expected: int) -> list[Any]:
    with CorridorConsumer(env.config, _topic(env, corridor), kek_provider=env.ring) as c:
        records = list(c.records(max_records=expected, idle_timeout_s=20))
    assert len(records) == expected
    return records


def _erase(env: SimpleNamespace, *extra: str) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-m", "corridor.cli", "erase", "--subject", S, "--reason", "test",
         "-c", str(env.path), "-o", "json", *extra],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "CORRIDOR_HOME": str(REPO), "CORRIDOR_OPERATOR": "dpo@example"})
    assert done.returncode == 0, done.stderr[-3000:]
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def _folder(cluster: str) -> Path:
    """The cluster's log folder of the subject key topic (its one partition)."""
    return REPO / ".zones" / cluster / "data" / f"{topics.SUBJECT_KEYS}-0"


def _dump(cluster: str) -> str:
    """Kafka's DumpLogSegments over every log segment of the cluster's subject key topic."""
    java = os.environ.get("CORRIDOR_JAVA") or shutil.which("java")
    assert java is not None, "no java on PATH (the brokers need it too)"
    files = sorted(str(f) for f in _folder(cluster).glob("*.log"))
    done = subprocess.run([java, "-cp", str(REPO / ".kafka" / "libs" / "*"),
                           "kafka.tools.DumpLogSegments", "--print-data-log", "--files",
                           ",".join(files)], capture_output=True, text=True, timeout=120)
    return done.stdout if done.returncode == 0 else ""


def _keys(env: SimpleNamespace, raw: str, admin: Any) -> dict[str, dict[str, str]]:
    """Cluster -> key id -> the base64 wrapped key bytes of *raw*'s live keys, as published."""
    key = subject_key(env.origin, subject_secret(env.config, env.origin))
    sid, secret = subject_id(raw, key), key_id_secret(key)
    out: dict[str, dict[str, str]] = {}
    for corridor, dest in env.corridors.items():
        book = read_subject_keys(zone_endpoint(env.config, dest), admin)
        records: list[SubjectKeyRecord] = book.keys_of(subject_tag(secret, corridor, sid))
        out[env.dests[dest]] = {r.key_id: json.loads(r.to_json())["wrapped"] for r in records}
    return out


def _verified(env: SimpleNamespace, admin: Any) -> None:
    """`corridor verify` of both corridors: every source record has exactly one outcome."""
    for corridor, dest in env.corridors.items():
        one = SimpleNamespace(config=env.config, origin=env.origin, dest=dest,
                              corridor=env.config.corridors[corridor])
        report = verify(one, admin)
        assert report.ok and report.delivered == 2 * (PER_SUBJECT + 1), report


def test_erase_destroys_one_subjects_keys_in_both_zones(zones, tmp_path):
    env = _env(zones, tmp_path)
    admin = zones.credentials.admin
    _produce(env, 0, PER_SUBJECT)
    names = list(env.corridors)
    proc = Processor(SimpleNamespace(path=env.path, name=names[0]), tmp_path, "erasure",
                     "--corridor", names[1])
    try:
        total = 2 * PER_SUBJECT
        for corridor in names:
            records = _read_all(env, corridor, total)
            emails = sorted(r.value_at("contact_email") for r in records)
            assert emails == sorted(f"{w}.{i}@example.com" for w in (S, T)
                                    for i in range(PER_SUBJECT))
            assert all(not r.erased for r in records)
        s_keys, t_keys = _keys(env, S, admin), _keys(env, T, admin)
        assert all(s_keys[c] and t_keys[c] for c in ("eu", "asean")), (s_keys, t_keys)
        for cluster in ("eu", "asean"):  # the check after compaction sees wrapped keys at all
            dump = _dump(cluster)
            assert all(w in dump for w in [*s_keys[cluster].values(),
                                           *t_keys[cluster].values()])
        running = CorridorConsumer(env.config, _topic(env, names[0]), kek_provider=env.ring)
        assert len(list(running.records(max_records=total, idle_timeout_s=20))) == total

        done = _erase(env)
        [origin] = done["origins"]
        assert origin["status"] == "erased", done
        assert {(r["corridor"], r["zone"]) for r in origin["recipients"]} == set(
            env.corridors.items())
        assert origin["keys"] == sum(len(k) for k in s_keys.values())

        # A running consumer learns of it from the subject key topic.
        erased_id = next(iter(s_keys["eu"]))

        def learnt() -> bool:
            running.poll(0.2)
            try:
                running.catalog[erased_id]
            except Erased:
                return True
            return False

        wait_until(learnt, 30, "the running consumer to learn of the erasure")
        running.close()

        for corridor in names:
            records = _read_all(env, corridor, total)
            gone = [r for r in records if r.erased]
            kept = [r for r in records if not r.erased]
            assert len(gone) == len(kept) == PER_SUBJECT
            for r in gone:
                assert r.value["contact_email"] is None
                with pytest.raises(Erased) as err:
                    r.value_at("contact_email")
                assert err.value.field == "contact_email"
                assert r.value["contact_name"] and r.value["shipment_id"]  # the rest reads
            assert sorted(r.value_at("contact_email") for r in kept) == [
                f"{T}.{i}@example.com" for i in range(PER_SUBJECT)]

        events = [json.loads(r.value) for r in read_to_end(
            zone_endpoint(env.config, env.origin), admin, topics.audit(env.origin))
            if r.value and b'"erase"' in r.value]
        [event] = events
        assert event["reason"] == "test" and event["operator"] == "dpo@example"
        assert event["ts_ms"] > 0 and event["keys"] == origin["keys"]
        assert {(r["corridor"], r["zone"]) for r in event["recipients"]} == set(
            env.corridors.items())

        again = _erase(env)
        assert again["origins"][0]["status"] == "already erased"
        assert again["erasure_id"] is None

        # S's data crossing after the erasure gets a key of the next generation and reads.
        _produce(env, 100, 1)
        for corridor in names:
            after = _read_all(env, corridor, total + 2)
            assert sum(1 for r in after if r.erased) == PER_SUBJECT
            assert {f"{S}.100@example.com", f"{T}.100@example.com"} <= {
                r.value_at("contact_email") for r in after if not r.erased}
    finally:
        assert proc.stop() == 0, proc.log()[-3000:]
        proc.close()
    _verified(env, admin)

    try:
        for cluster in ("eu", "asean"):
            set_topic_config(zones.admin(cluster), topics.SUBJECT_KEYS, COMPACT_NOW)
        wait_until(lambda: _compacted(zones, s_keys, t_keys), 180,
                   "the subject key topics to compact")
    finally:
        for cluster in ("eu", "asean"):
            set_topic_config(zones.admin(cluster), topics.SUBJECT_KEYS, RESTORE)


def _compacted(zones: Any, erased: dict[str, dict[str, str]],
               kept: dict[str, dict[str, str]]) -> bool:
    """Roll each active segment (a tombstone of an unused id), then True once every dump
    lacks S's wrapped keys and still holds T's, and no replaced segment file is left."""
    for cluster in ("eu", "asean"):
        roller = PlainProducer(zones.endpoint(cluster), zones.credentials.admin)
        roller.produce(topics.SUBJECT_KEYS, None, f"roll-{uuid.uuid4().hex}".encode())
        roller.flush(30)
    for cluster in ("eu", "asean"):
        if any(f.name.endswith(LEFTOVERS) for f in _folder(cluster).iterdir()):
            return False
        dump = _dump(cluster)
        if not dump or any(w in dump for w in erased[cluster].values()):
            return False
        assert all(w in dump for w in kept[cluster].values()), "compaction removed a live key"
    return True


# -- consent withdrawal chained to erasure (`corridor consent follow --on-withdraw erase`) --

FULFIL, MARKETING = "order-fulfilment", "marketing"
GIVEN, WITHDRAWN = 1_700_000_000_000, 1_800_000_000_000


def _write_consent(env: SimpleNamespace, admin: Any, raw: str,
                   withdrawn: frozenset[str] = frozenset()) -> None:
    value = Consent({p: PurposeConsent(GIVEN, WITHDRAWN if p in withdrawn else None)
                     for p in (FULFIL, MARKETING)}).to_json()
    producer = PlainProducer(zone_endpoint(env.config, env.origin), admin)
    producer.produce(topics.consent(env.origin), value, raw.encode())
    producer.flush(30)


def _follow(env: SimpleNamespace) -> list[dict[str, Any]]:
    """`corridor consent follow --on-withdraw erase --once -o json`: one object a line."""
    done = subprocess.run(
        [sys.executable, "-m", "corridor.cli", "consent", "follow", "--on-withdraw", "erase",
         "--once", "-c", str(env.path), "-o", "json"],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "CORRIDOR_HOME": str(REPO)})
    assert done.returncode == 0, done.stderr[-3000:]
    return [json.loads(line) for line in done.stdout.splitlines() if line.strip()]


def _erase_events(env: SimpleNamespace, admin: Any) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in read_to_end(
        zone_endpoint(env.config, env.origin), admin, topics.audit(env.origin))
        if r.value and b'"erase"' in r.value]


def test_a_withdrawal_followed_with_on_withdraw_erase_erases_that_purposes_corridor_only(
        zones, tmp_path):
    """S withdraws order-fulfilment (the first corridor's purpose), keeps marketing (the
    second's): once the bound has passed, `consent follow --on-withdraw erase` erases S's
    keys of the first corridor only, with the withdrawal as the audit's trigger; T and the
    second corridor read on; a second run is a no-op; S's next record is withheld on the
    first corridor and crosses the second; `verify` passes on both."""
    env = _env(zones, tmp_path, purposes=(FULFIL, MARKETING))
    admin = zones.credentials.admin
    fulfil, marketing = list(env.corridors)
    for raw in (S, T):
        _write_consent(env, admin, raw)
    _produce(env, 0, PER_SUBJECT)
    total = 2 * PER_SUBJECT
    proc = Processor(SimpleNamespace(path=env.path, name=fulfil), tmp_path, "withdrawal",
                     "--corridor", marketing)
    try:
        for corridor in (fulfil, marketing):
            _read_all(env, corridor, total)
        _write_consent(env, admin, S, withdrawn=frozenset({FULFIL}))
        wait_until(lambda: "consent_withdrawn" in proc.log(), 60,
                   "the processor's consent view to reach the withdrawal")

        [done] = _follow(env)
        sid = subject_id(S, subject_key(env.origin, subject_secret(env.config, env.origin)))
        assert (done["subject"], done["purposes"], done["corridors"]) == (sid, [FULFIL],
                                                                          [fulfil])
        assert done["action"] == "erased" and done["keys"] >= 1
        assert [(e["corridor"], e["zone"]) for e in done["erased"]] == [
            (fulfil, env.corridors[fulfil])]
        records = _read_all(env, fulfil, total)
        assert sum(1 for r in records if r.erased) == PER_SUBJECT
        assert sorted(r.value_at("contact_email") for r in records if not r.erased) == [
            f"{T}.{i}@example.com" for i in range(PER_SUBJECT)]
        assert not any(r.erased for r in _read_all(env, marketing, total))
        [event] = _erase_events(env, admin)
        assert event["reason"] == f"consent withdrawn: {FULFIL}"
        assert event["operator"] == "consent-follow" and event["subject"] == sid
        assert event["trigger"]["consent_withdrawn"] == [FULFIL]
        assert [(r["corridor"], r["zone"]) for r in event["recipients"]] == [
            (fulfil, env.corridors[fulfil])]

        assert [d["action"] for d in _follow(env)] == ["already erased"]
        assert len(_erase_events(env, admin)) == 1

        _produce(env, 100, 1)  # one more record each of S and T
        assert not any(r.erased for r in _read_all(env, marketing, total + 2))
        assert f"{S}.100@example.com" not in {
            r.value_at("contact_email") for r in _read_all(env, fulfil, total + 1)
            if not r.erased}
    finally:
        assert proc.stop() == 0, proc.log()[-3000:]
        proc.close()
    for corridor, delivered, withheld in ((fulfil, total + 1, 1), (marketing, total + 2, 0)):
        one = SimpleNamespace(config=env.config, origin=env.origin,
                              dest=env.corridors[corridor],
                              corridor=env.config.corridors[corridor])
        report = verify(one, admin)
        assert report.ok and (report.delivered, report.withheld) == (delivered, withheld), report
        if withheld:
            assert report.withheld_by_reason == {f"consent_withdrawn: {FULFIL}": 1}
