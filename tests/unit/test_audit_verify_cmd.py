"""`corridor audit verify` on values: grouping into chains, the first break, copies, output.

No broker: the evidence is built with ``core.audit`` as the processor would write it and
handed to ``core.audit_check.check_zone``; the CLI is exercised up to reading topics.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corridor.cli import cli
from corridor.commands.audit import as_json, describe_break
from corridor.core.audit import (
    AuditEvent,
    BatchSummary,
    ChainState,
    Checkpoint,
    content_hash,
    encode_checkpoint,
    encode_event,
    next_event,
    sign_checkpoint,
    signer_id,
)
from corridor.core.audit_check import Evidence, Logged, ZoneCheck, check_zone
from corridor.core.errors import ConfigError, KeyFileError, KeyNotFound
from corridor.keys.signing import (
    init_signing_key,
    load_public_key,
    public_key_path,
    public_pem,
    signing_key_path,
    zone_public_key,
)
from corridor.processor.resolve import acting_principal
from corridor.zones.credentials import load_or_create_credentials
from tests.unit.audit_fixtures import TS, chains

REPO = Path(__file__).resolve().parents[2]
KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
KEYS = {signer_id(KEY.public_key()): KEY.public_key()}
EVENTS, CPS, COPY = "hk.audit", "hk.audit.checkpoints", "_corridor.checkpoints.hk"
SOURCE = "hk.outbound.trade.shipment"
DESTS = {"hk-eu": "eu", "hk-sg": "asean"}


def batch(i: int) -> BatchSummary:
    """The summary of a chain's batch *i*: 100 records, all delivered."""
    return BatchSummary("hk-eu-rmc", "PDPO", "0123abcd", 100 * i, 100 * i + 99,
                        outcomes={"delivered": 100})


def build(n: int = 6, corridor: str = "hk-eu", partition: int = 0,
          key: Ed25519PrivateKey = KEY) -> tuple[list[AuditEvent], list[Checkpoint]]:
    """A chain of *n* events and a checkpoint after every second one."""
    return chains(corridor, SOURCE, key, n, batch, (partition,))


def logged(topic: str, values: Sequence[bytes | None]) -> list[Logged]:
    return [Logged(topic, 0, offset, v) for offset, v in enumerate(values)]


def two_chains() -> tuple[list[bytes], list[bytes]]:
    """Two chains of one corridor, their events interleaved as on the topic."""
    events, cps = chains("hk-eu", SOURCE, KEY, 6, batch, (0, 1))
    return [encode_event(e) for e in events], [encode_checkpoint(c) for c in cps]


def check(events: Sequence[bytes | None], cps: Sequence[bytes | None],
          copy: Sequence[bytes | None] | None = None, corridor: str | None = None,
          from_genesis: bool = True) -> ZoneCheck:
    copies = {"eu": logged(COPY, list(cps) if copy is None else copy)}
    return check_zone(Evidence("hk", logged(EVENTS, events), logged(CPS, cps), copies,
                               from_genesis), KEYS, DESTS, corridor)


def first(result: ZoneCheck) -> tuple[str, str, int, int | None]:
    b = result.breaks[0]
    return b.kind, b.topic, b.offset, b.seq


def test_clean_evidence_verifies_per_chain() -> None:
    events, cps = two_chains()
    result = check(events, cps)
    assert result.ok and result.breaks == ()
    assert [(s.chain.partition, s.events, s.head_seq, s.checkpoints) for s in result.chains] \
        == [(0, 6, 5, 3), (1, 6, 5, 3)]
    assert result.copies == {"eu": 6}


def test_a_byte_identical_replay_is_accepted() -> None:
    events, cps = two_chains()
    result = check(events[:4] + events[2:], cps)
    assert result.ok
    assert [s.replays for s in result.chains] == [1, 1]


@pytest.mark.parametrize(("tamper", "expected"), [
    # events[2k] is chain 0's seq k, events[2k+1] chain 1's seq k
    (lambda ev: ev[:4] + [ev[4].replace(b'"delivered":100', b'"delivered":99')] + ev[5:],
     ("altered", EVENTS, 4, 2)),
    (lambda ev: ev[:4] + ev[5:], ("deleted", EVENTS, 5, 3)),  # chain 0 lost its seq 2
    (lambda ev: ev[:2] + [ev[4], ev[3], ev[2]] + ev[5:], ("reordered", EVENTS, 2, 2)),
    (lambda ev: ev[:6] + [b"not json"] + ev[6:], ("undecodable", EVENTS, 6, None)),
    (lambda ev: ev[:6] + [None] + ev[6:], ("undecodable", EVENTS, 6, None)),
])
def test_the_first_break_is_named_with_its_topic_offset(tamper, expected) -> None:
    events, cps = two_chains()
    result = check(tamper(events), cps)
    assert not result.ok
    assert first(result) == expected


def test_an_inserted_event_is_named() -> None:
    events, cps = two_chains()
    chain0, _ = build(partition=0)
    unhashed = replace(chain0[2], prev="ab" * 32)  # seq 2 after a head that is not there
    intruder = replace(unhashed, hash=content_hash(unhashed))
    tampered = events[:4] + [encode_event(intruder)] + events[4:]
    assert first(check(tampered, cps)) == ("inserted", EVENTS, 4, 2)


def test_breaks_are_ordered_by_offset_across_chains() -> None:
    events, cps = two_chains()
    tampered = list(events)
    tampered[9] = tampered[9].replace(b'"delivered":100', b'"delivered":1')  # chain 1 seq 4
    tampered[6] = tampered[6].replace(b'"delivered":100', b'"delivered":1')  # chain 0 seq 3
    result = check(tampered, cps)
    assert [(b.kind, b.offset, b.chain.partition) for b in result.breaks] == [
        ("altered", 6, 0), ("altered", 9, 1)]


def test_a_checkpoint_signed_with_another_key_is_a_signature_break() -> None:
    events, cps = two_chains()
    _, other = build(partition=1, key=Ed25519PrivateKey.generate())
    tampered = list(cps)
    tampered[3] = encode_checkpoint(other[1])  # chain 1, seq 3, re-signed
    result = check(events, tampered, copy=tampered)
    assert first(result) == ("signature", CPS, 3, 3)


def test_a_truncated_tail_is_caught_by_its_checkpoint() -> None:
    events, cps = two_chains()
    tampered = [e for i, e in enumerate(events) if not (i % 2 == 0 and i >= 8)]  # chain 0 4,5
    result = check(tampered, cps)
    assert first(result) == ("truncated", CPS, 4, 5)


def test_a_history_rewritten_with_the_zone_key_is_caught_by_the_copy() -> None:
    """The origin holds the key: it can rewrite its events and re-sign its checkpoints,
    and its own evidence then verifies. The destination's copy does not agree."""
    events, cps = two_chains()
    state = ChainState.start("hk-eu", SOURCE, 0)
    rewritten, resigned = [], []
    for i in range(6):
        summary = BatchSummary("hk-eu-rmc", "PDPO", "0123abcd", 100 * i, 100 * i + 99,
                               outcomes={"delivered": 50, "withheld": 50})
        event, state = next_event(state, summary, TS + i)
        rewritten.append(encode_event(event))
        if i % 2 == 1:
            resigned.append(encode_checkpoint(sign_checkpoint(KEY, state, 1)))
    forged_events = [rewritten[i // 2] if i % 2 == 0 else e for i, e in enumerate(events)]
    forged_cps = [resigned[i // 2] if i % 2 == 0 else c for i, c in enumerate(cps)]
    alone = check(forged_events, forged_cps, copy=forged_cps)
    assert alone.ok  # the origin's evidence alone cannot show it
    result = check(forged_events, forged_cps, copy=cps)
    assert first(result) == ("copy-differs", COPY, 0, 1)


def test_a_copy_missing_or_extra_checkpoint_is_a_break() -> None:
    events, cps = two_chains()
    missing = check(events, cps, copy=cps[:2] + cps[3:])
    assert first(missing) == ("copy-missing", CPS, 2, 3)
    extra = check(events, cps[:5], copy=cps)
    assert {b.kind for b in extra.breaks} == {"copy-extra"}
    assert (extra.breaks[0].topic, extra.breaks[0].offset) == (COPY, 5)


def test_chain_breaks_come_before_copy_breaks() -> None:
    events, cps = two_chains()
    result = check(events[:10] + [events[11]], cps, copy=cps[:1])
    assert [b.kind for b in result.breaks][:1] == ["truncated"]
    assert {b.kind for b in result.breaks[1:]} == {"copy-missing"}


def test_corridor_filter_checks_only_that_corridors_chains() -> None:
    events, cps = two_chains()
    other, other_cps = build(corridor="hk-sg")
    bad_other = [encode_event(e) for e in other][1:]  # hk-sg lost its seq 0
    result = check(events + bad_other, cps + [encode_checkpoint(c) for c in other_cps],
                   copy=cps, corridor="hk-eu")
    assert result.ok and {s.chain.corridor for s in result.chains} == {"hk-eu"}
    assert first(check(events + bad_other, cps, copy=cps)) == ("deleted", EVENTS, 12, 1)


def test_after_retention_the_first_event_is_the_anchor() -> None:
    events, cps = two_chains()
    result = check(events[4:], cps, from_genesis=False)
    assert result.ok
    assert [(s.first_seq, s.checkpoints, s.unverifiable) for s in result.chains] == [
        (2, 2, 1), (2, 2, 1)]
    assert first(check(events[4:], cps)) == ("deleted", EVENTS, 0, 2)


def test_json_and_text_name_the_first_break() -> None:
    events, cps = two_chains()
    result = check(events[:4] + events[5:], cps)
    doc = as_json([({"zone": "hk", "copies": {"eu": {"topic": COPY}}}, result)])
    assert doc["ok"] is False and doc["breaks_count"] == len(result.breaks)
    assert doc["first_break"] == {
        "zone": "hk", "kind": "deleted", "seq": 3, "topic": EVENTS, "partition": 0,
        "offset": 5, "detail": doc["first_break"]["detail"],
        "chain": {"corridor": "hk-eu", "topic": SOURCE, "partition": 0}}
    assert describe_break(doc["first_break"]).startswith(
        f"deleted: chain hk-eu {SOURCE}/0 seq 3, at {EVENTS} partition 0 offset 5: ")
    assert doc["corridors"]["hk-eu"]["chains"] == 2
    json.dumps(doc)  # serialisable as it is


# --- the CLI up to the brokers ---------------------------------------------------------------


def test_overrides_need_one_zone() -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", "-c", str(REPO / "corridors.yaml"),
                                      "--events-topic", "x"])
    assert result.exit_code == 2 and "exactly one zone" in result.output


def test_unknown_corridor_is_refused() -> None:
    result = CliRunner().invoke(cli, ["audit", "verify", "-c", str(REPO / "corridors.yaml"),
                                      "--corridor", "nope"])
    assert isinstance(result.exception, ConfigError)


def test_help_says_what_is_proved_and_what_is_not() -> None:
    text = CliRunner().invoke(cli, ["audit", "verify", "--help"]).output
    assert "What it proves" in text and "What it does not prove" in text
    assert "--events-topic" not in text  # hidden: for tests of tampered copies


# --- public key files ------------------------------------------------------------------------


def test_public_key_file_is_written_and_loads(tmp_path: Path) -> None:
    key = init_signing_key(tmp_path, "hk")
    path = public_key_path(tmp_path, "hk")
    assert path == tmp_path / "audit" / "hk.ed25519.pub"
    assert public_pem(load_public_key(path)) == public_pem(key)
    assert public_pem(zone_public_key(tmp_path, "hk")) == public_pem(key)


def test_public_key_alone_is_enough_to_verify(tmp_path: Path) -> None:
    key = init_signing_key(tmp_path, "hk")
    signing_key_path(tmp_path, "hk").unlink()  # an auditor's folder: the public key only
    assert public_pem(zone_public_key(tmp_path, "hk")) == public_pem(key)


def test_a_replaced_public_key_file_is_refused(tmp_path: Path) -> None:
    init_signing_key(tmp_path, "hk")
    public_key_path(tmp_path, "hk").write_bytes(public_pem(Ed25519PrivateKey.generate()))
    with pytest.raises(KeyFileError, match="does not match"):
        zone_public_key(tmp_path, "hk")


def test_no_key_or_not_a_key(tmp_path: Path) -> None:
    with pytest.raises(KeyNotFound, match="no audit key for zone eu"):
        zone_public_key(tmp_path, "eu")
    bad = tmp_path / "bad.pem"
    bad.write_bytes(b"-----BEGIN PUBLIC KEY-----\nnope\n-----END PUBLIC KEY-----\n")
    with pytest.raises(KeyFileError, match="not an Ed25519 public key"):
        load_public_key(bad)



def test_acting_principal_prefers_the_zone_auditor(tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "credentials.json"
    creds = load_or_create_credentials(path)
    monkeypatch.setenv("CORRIDOR_CREDENTIALS", str(path))
    assert acting_principal("hk", None).username == "admin"  # before provision --acls
    creds.add("auditor-hk")
    assert acting_principal("hk", None).username == "auditor-hk"
    assert acting_principal("hk", "auditor").username == "auditor-hk"
    assert acting_principal("hk", "admin").username == "admin"
    with pytest.raises(ConfigError, match="auditor-eu"):
        acting_principal("eu", "auditor")


def test_operators_notices_on_the_audit_topic_are_no_break() -> None:
    """`corridor held release` and `corridor erase` write their notices to the same topic."""
    events, cps = two_chains()
    release = json.dumps({"event": "release", "corridor": "hk-eu", "by": "ops"}).encode()
    erase = json.dumps({"event": "erase", "subject": "3f2a", "recipients": ["eu"]}).encode()
    assert check(events[:3] + [release] + events[3:] + [erase], cps).ok
    # an unknown "event" is still a break: only the named notices are skipped
    other = json.dumps({"event": "rewrite", "corridor": "hk-eu"}).encode()
    assert first(check(events[:3] + [other] + events[3:], cps))[0] == "undecodable"
