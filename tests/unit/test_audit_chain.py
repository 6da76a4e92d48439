"""The audit chain: build, verify, every break kind at its position, replays, checkpoints, key files."""

from __future__ import annotations

import json
import os
import stat
from dataclasses import replace
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.audit import (
    GENESIS,
    AuditDecodeError,
    AuditEvent,
    BatchSummary,
    ChainState,
    content_hash,
    decode_checkpoint,
    decode_event,
    encode_checkpoint,
    encode_event,
    next_event,
    sign_checkpoint,
    signer_id,
    verify_chain,
    verify_checkpoint,
    verify_with_checkpoints,
)
from corridor.core.errors import KeyFileError, KeyNotFound
from corridor.keys.signing import (
    init_signing_key,
    load_or_init_signing_key,
    load_signing_key,
    public_pem,
    signing_key_path,
)


def summary(first: int, size: int = 10) -> BatchSummary:
    return BatchSummary(
        "hk-eu-rmc", "PDPO-RMCC", "0123456789ab", first, first + size - 1,
        outcomes={"delivered": size - 3, "withheld": 2, "quarantined": 1},
        reasons={"rule: consent == false": 2, "decode: truncated": 1},
        protections={"encrypted": ("contact_email",), "pseudonymized": ("contact_name",),
                     "dropped": ("national_id",)},
        key_ids=("hk-eu/3", "hk-eu/3"))


def chain(n: int, partition: int = 0) -> tuple[list[AuditEvent], ChainState]:
    state = ChainState.start("hk-eu", "hk.outbound.trade.shipment", partition)
    events = []
    for i in range(n):
        event, state = next_event(state, summary(100 + 10 * i), 1_700_000_000_000 + i)
        events.append(event)
    return events, state


def forge(event: AuditEvent, **changes: object) -> AuditEvent:
    """*event* changed and re-hashed: what someone without a signing key can do."""
    changed = replace(event, **changes)  # type: ignore[arg-type]
    return replace(changed, hash=content_hash(changed))


# --- build and encode -----------------------------------------------------------------------


def test_chain_links_and_verifies() -> None:
    events, state = chain(5)
    assert events[0].prev == GENESIS and events[0].seq == 0
    assert [e.prev for e in events[1:]] == [e.hash for e in events[:-1]]
    assert (state.seq, state.head) == (4, events[-1].hash)
    report = verify_chain(events)
    assert report.ok and report.verified == 5 and report.head_hash == events[-1].hash
    assert verify_chain([encode_event(e) for e in events]).ok


def test_encoding_is_canonical_and_round_trips() -> None:
    event = chain(1)[0][0]
    data = encode_event(event)
    doc = json.loads(data)
    assert data == json.dumps(doc, sort_keys=True, separators=(",", ":"),
                              ensure_ascii=False).encode("utf-8")
    assert "hash" in doc and doc["prev"] == GENESIS
    assert data.startswith(b'{"corridor":"hk-eu","first_offset":100,')
    assert decode_event(data) == event
    assert event.summary.key_ids == ("hk-eu/3",)  # deduplicated, sorted


def test_next_event_is_deterministic_so_a_replay_is_byte_identical() -> None:
    state = ChainState.start("hk-eu", "t", 0)
    assert encode_event(next_event(state, summary(0), 5)[0]) == \
        encode_event(next_event(state, summary(0), 5)[0])


def test_non_canonical_bytes_are_refused() -> None:
    data = encode_event(chain(1)[0][0])
    with pytest.raises(AuditDecodeError, match="canonical"):
        decode_event(data.replace(b'"seq":0', b'"seq": 0'))


# --- breaks -----------------------------------------------------------------------------------


def test_exact_duplicate_of_a_replayed_batch_is_accepted() -> None:
    events, _ = chain(4)
    log = [*events[:3], events[2], events[3]]  # batch 2 written twice (aborted, replayed)
    report = verify_chain(log)
    assert report.ok and report.replays == (3,) and report.verified == 4


def test_altered_event_is_named_at_its_position() -> None:
    events, _ = chain(5)
    tampered = replace(events[2], ts_ms=1)
    report = verify_chain([*events[:2], tampered, *events[3:]])
    assert report.broken is not None
    assert (report.broken.kind, report.broken.position, report.broken.seq) == ("altered", 2, 2)


def test_deleted_event_is_a_seq_gap() -> None:
    events, _ = chain(5)
    report = verify_chain([*events[:2], *events[3:]])
    assert report.broken is not None
    assert (report.broken.kind, report.broken.position, report.broken.seq) == ("deleted", 2, 3)
    assert "seq 2 to 2 are missing" in report.broken.detail


def test_deleted_and_renumbered_is_still_deleted() -> None:
    events, _ = chain(4)
    renumbered = forge(events[3], seq=2)  # seq continues, prev names the removed event
    report = verify_chain([*events[:2], renumbered])
    assert report.broken is not None and (report.broken.kind, report.broken.position) == (
        "deleted", 2)


def test_deleting_the_first_event_is_detected() -> None:
    events, _ = chain(3)
    report = verify_chain(events[1:])
    assert report.broken is not None and (report.broken.kind, report.broken.position) == (
        "deleted", 0)
    assert verify_chain(events[1:], from_genesis=False).ok  # retention removed it


def test_two_swapped_events_are_reordered() -> None:
    events, _ = chain(5)
    report = verify_chain([events[0], events[1], events[3], events[2], events[4]])
    assert report.broken is not None
    assert (report.broken.kind, report.broken.position, report.broken.seq) == ("reordered", 2, 3)


def test_inserted_event_with_the_rest_renumbered() -> None:
    events, _ = chain(4)
    intruder = forge(events[2], summary=summary(999))  # seq 2, prev = seq 1's hash
    shifted = [forge(e, seq=e.seq + 1) for e in events[2:]]  # hashes recomputed, prev kept
    report = verify_chain([*events[:2], intruder, *shifted])
    assert report.broken is not None
    assert (report.broken.kind, report.broken.position) == ("inserted", 3)
    assert "seq 2 before it is not part of the chain" in report.broken.detail


def test_inserted_event_with_a_foreign_prev() -> None:
    events, _ = chain(4)
    intruder = forge(events[2], prev="ab" * 32)
    report = verify_chain([*events[:2], intruder, *events[2:]])
    assert report.broken is not None and (report.broken.kind, report.broken.position) == (
        "inserted", 2)


def test_event_of_another_chain_is_inserted() -> None:
    events, _ = chain(3)
    other, _ = chain(3, partition=1)
    report = verify_chain([events[0], other[1], *events[1:]])
    assert report.broken is not None and (report.broken.kind, report.broken.position) == (
        "inserted", 1)


def test_same_seq_with_other_content_is_a_conflict() -> None:
    events, _ = chain(4)
    rival = forge(events[2], summary=summary(120, size=5))  # same seq and prev, other batch
    report = verify_chain([*events[:3], rival, events[3]])
    assert report.broken is not None
    assert (report.broken.kind, report.broken.position, report.broken.seq) == ("conflict", 3, 2)


def test_undecodable_bytes_are_a_break() -> None:
    events, _ = chain(3)
    log = [encode_event(e) for e in events]
    log[1] = b"{not json"
    report = verify_chain(log)
    assert report.broken is not None and (report.broken.kind, report.broken.position) == (
        "undecodable", 1)


@settings(max_examples=300, deadline=None)
@given(st.data())
def test_any_single_byte_change_breaks_verification(data: st.DataObject) -> None:
    events, _ = chain(3)
    log = [encode_event(e) for e in events]
    which = data.draw(st.integers(0, len(log) - 1))
    at = data.draw(st.integers(0, len(log[which]) - 1))
    byte = data.draw(st.integers(0, 255).filter(lambda b: b != log[which][at]))
    changed = bytearray(log[which])
    changed[at] = byte
    log[which] = bytes(changed)
    report = verify_chain(log)
    assert report.broken is not None
    assert report.broken.position == which
    assert report.broken.kind in ("altered", "undecodable")


# --- checkpoints ------------------------------------------------------------------------------


def test_checkpoint_signs_and_verifies() -> None:
    key = Ed25519PrivateKey.generate()
    _, state = chain(3)
    cp = sign_checkpoint(key, state, 1_700_000_100_000)
    assert (cp.seq, cp.head_hash, cp.signer) == (2, state.head, signer_id(key.public_key()))
    assert verify_checkpoint(key.public_key(), cp)
    assert not verify_checkpoint(key.public_key(), replace(cp, seq=1))
    assert decode_checkpoint(encode_checkpoint(cp)) == cp


def test_verify_with_checkpoints_passes_and_fails_on_the_first_bad_one() -> None:
    key, other = Ed25519PrivateKey.generate(), Ed25519PrivateKey.generate()
    keys = {signer_id(key.public_key()): key.public_key()}
    events, _ = chain(6)
    good = [sign_checkpoint(key, ChainState.after(events[i]), i) for i in (1, 3, 5)]
    assert verify_with_checkpoints(events, good, keys).ok

    resigned = replace(sign_checkpoint(other, ChainState.after(events[3]), 3),
                       signer=good[1].signer)  # re-signed with another key, same claimed signer
    report = verify_with_checkpoints(events, [good[0], resigned, good[2]], keys)
    assert report.failure is not None and report.failure.index == 1
    assert "signature does not verify" in report.failure.reason

    unknown = sign_checkpoint(other, ChainState.after(events[3]), 3)
    report = verify_with_checkpoints(events, [unknown], keys)
    assert report.failure is not None and "unknown key" in report.failure.reason


def test_checkpoint_detects_a_rewritten_history_and_a_truncated_tail() -> None:
    key = Ed25519PrivateKey.generate()
    keys = {signer_id(key.public_key()): key.public_key()}
    events, _ = chain(5)
    cps = [sign_checkpoint(key, ChainState.after(events[4]), 9)]
    # A consistent rewrite: every hash recomputed from seq 2 on; the chain alone passes.
    state = ChainState.after(events[1])
    rewritten = list(events[:2])
    for e in events[2:]:
        forged, state = next_event(state, summary(7), e.ts_ms)
        rewritten.append(forged)
    report = verify_with_checkpoints(rewritten, cps, keys)
    assert report.chain.ok and report.failure is not None
    assert "not the signed head hash" in report.failure.reason
    truncated = verify_with_checkpoints(events[:3], cps, keys)
    assert truncated.failure is not None and "verified up to seq 2" in truncated.failure.reason


def test_checkpoint_before_the_retained_start_is_unverifiable_not_failed() -> None:
    key = Ed25519PrivateKey.generate()
    keys = {signer_id(key.public_key()): key.public_key()}
    events, _ = chain(5)
    cps = [sign_checkpoint(key, ChainState.after(events[0]), 0),
           sign_checkpoint(key, ChainState.after(events[4]), 1)]
    report = verify_with_checkpoints(events[2:], cps, keys, from_genesis=False)
    assert report.ok and report.unverifiable == (0,)


# --- key files --------------------------------------------------------------------------------


def test_signing_key_file_is_created_0600_and_loads(tmp_path: Path) -> None:
    key = init_signing_key(tmp_path, "hk")
    path = signing_key_path(tmp_path, "hk")
    assert path == tmp_path / "audit" / "hk.ed25519"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert stat.S_IMODE(path.parent.stat().st_mode) == 0o700
    loaded = load_signing_key(tmp_path, "hk")
    assert public_pem(loaded) == public_pem(key)
    assert public_pem(load_or_init_signing_key(tmp_path, "hk")) == public_pem(key)
    with pytest.raises(KeyFileError, match="already exists"):
        init_signing_key(tmp_path, "hk")


def test_signing_key_file_readable_by_others_is_refused(tmp_path: Path) -> None:
    init_signing_key(tmp_path, "hk")
    path = signing_key_path(tmp_path, "hk")
    os.chmod(path, 0o644)
    with pytest.raises(KeyFileError, match="0644"):
        load_signing_key(tmp_path, "hk")


def test_signing_key_missing_or_not_a_key(tmp_path: Path) -> None:
    with pytest.raises(KeyNotFound):
        load_signing_key(tmp_path, "eu")
    load_or_init_signing_key(tmp_path, "eu")  # creates it
    path = signing_key_path(tmp_path, "eu")
    path.write_bytes(b"not a key")
    with pytest.raises(KeyFileError, match="not an Ed25519"):
        load_signing_key(tmp_path, "eu")


def test_a_zombies_late_write_of_an_old_event_after_later_seqs_is_a_replay() -> None:
    """A resumed zombie flushes event 2 after the new owner wrote 3 and 4."""
    events = [encode_event(e) for e in chain(5)[0]]
    report = verify_chain([*events, events[2]])
    assert report.ok and report.replays == (5,) and report.head_seq == 4
