"""The tamper-evident audit chain: one hash-linked event per batch, and signed checkpoints.

Owns: the audit event as a value and its canonical bytes, building the next event of a
chain (:func:`next_event`), walking a chain (:func:`verify_chain`), Ed25519 checkpoints
over a chain's head (:func:`sign_checkpoint`, :func:`verify_with_checkpoints`). Does not
own: writing events or checkpoints (the processor, through ``core.outbox``), key files
(``corridor.keys.signing``), reading the audit topic (``corridor.kafka``). Pure: no I/O,
no clock (``ts_ms`` comes in), no logging.

**One chain per corridor and source partition.** A source partition's batches are
committed in offset order by exactly one owner at a time: the partition's transactional
id fences any previous owner before the new one reads the stored offset. So the events of
one (corridor, topic, partition) have a single writer and a single order, and the chain
is linear without any coordination between processes: the owner only needs the head
(``seq``, ``hash``) of the last batch it committed. A zone-wide (or corridor-wide) chain
would need one global order over batches of different partitions, committed by different
processes in independent transactions; the processors do not have that order, and making
one would serialise every commit of the zone through a lock or a single writer.

**Replays.** A batch processed again after an aborted transaction must re-emit the SAME
event: same ``seq``, ``prev``, offsets, counts and ``ts_ms`` (so ``ts_ms`` must be a value of
the batch, not of the wall clock at the retry). Its bytes are then identical, and
:func:`verify_chain` accepts a byte-identical event at a seq already seen as a replay.
Two different events at one seq are a ``conflict``.

**What the chain proves, and what it does not.** SHA-256 needs no secret: whoever can
rewrite the whole log from some event onward can recompute every hash. The chain makes
any local change (alter, delete, insert, reorder one event) visible; the signed
checkpoints (the head hash at a seq, signed by the origin zone's audit key and copied
to the destination) make a rewrite of the history before a checkpoint, and the
truncation of the tail after it, visible too.

Canonical encoding: JSON, keys sorted, no spaces, UTF-8 (not ASCII-escaped). ``hash`` is
the hex SHA-256 of the canonical bytes of the event without its ``hash`` field; ``prev``
is the previous event's ``hash`` (64 zeros for ``seq`` 0). What goes on the audit topic is
:func:`encode_event` (the canonical bytes with ``hash``).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from types import MappingProxyType
from typing import Any, Literal

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

from corridor.core.errors import CorridorError

VERSION = 1
GENESIS = "0" * 64
PROTECTIONS = ("dropped", "masked", "pseudonymized", "encrypted")
EventKind = Literal["batch", "gap"]
BreakKind = Literal["undecodable", "altered", "deleted", "reordered", "inserted", "conflict"]


class AuditDecodeError(CorridorError):
    """Bytes that are not the canonical encoding of an audit event or checkpoint."""


def canonical(doc: Mapping[str, Any]) -> bytes:
    """Canonical JSON: keys sorted, no spaces, UTF-8."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False,
                      allow_nan=False).encode("utf-8")


def _frozen_counts(counts: Mapping[str, int]) -> Mapping[str, int]:
    return MappingProxyType(dict(sorted(counts.items())))


@dataclass(frozen=True)
class BatchSummary:
    """What one batch did, as the audit records it.

    ``outcomes``: record counts by outcome (``delivered``, ``withheld``, ``quarantined``);
    ``reasons``: withheld record counts by reason; ``quarantine_reasons``: quarantined
    record counts by reason; ``protections``: the dotted field
    paths that crossed under each of :data:`PROTECTIONS`; ``key_ids``: data keys used.
    ``first_offset``/``last_offset``: the batch's source offsets, inclusive. ``kind``
    ``gap``: source offsets deleted at the origin before they crossed (no counts).
    """

    instrument: str | None
    legal_basis: str
    policy_hash: str
    first_offset: int
    last_offset: int
    outcomes: Mapping[str, int] = field(default_factory=dict)
    reasons: Mapping[str, int] = field(default_factory=dict)
    protections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    key_ids: tuple[str, ...] = ()
    kind: EventKind = "batch"
    quarantine_reasons: Mapping[str, int] = field(default_factory=dict)

    def __post_init__(self) -> None:
        unknown = set(self.protections) - set(PROTECTIONS)
        if unknown:
            raise ValueError(f"unknown protections {sorted(unknown)} (expected {PROTECTIONS})")
        if self.last_offset < self.first_offset:
            raise ValueError(f"last offset {self.last_offset} < first {self.first_offset}")
        object.__setattr__(self, "outcomes", _frozen_counts(self.outcomes))
        object.__setattr__(self, "reasons", _frozen_counts(self.reasons))
        object.__setattr__(self, "quarantine_reasons", _frozen_counts(self.quarantine_reasons))
        object.__setattr__(self, "protections", MappingProxyType(
            {p: tuple(sorted(self.protections.get(p, ()))) for p in PROTECTIONS}))
        object.__setattr__(self, "key_ids", tuple(sorted(set(self.key_ids))))


@dataclass(frozen=True)
class AuditEvent:
    """One link of a chain: a batch's summary at position ``seq`` of its partition's chain."""

    corridor: str
    topic: str
    partition: int
    seq: int
    prev: str
    ts_ms: int
    summary: BatchSummary
    hash: str

    @property
    def chain(self) -> ChainId:
        return ChainId(self.corridor, self.topic, self.partition)


@dataclass(frozen=True, order=True)
class ChainId:
    """Which chain: a corridor's events about one source partition."""

    corridor: str
    topic: str
    partition: int


def _body(corridor: str, topic: str, partition: int, seq: int, prev: str, ts_ms: int,
          s: BatchSummary) -> dict[str, Any]:
    return {
        "v": VERSION, "kind": s.kind, "corridor": corridor, "topic": topic,
        "partition": partition, "seq": seq, "prev": prev, "ts_ms": ts_ms,
        "instrument": s.instrument, "legal_basis": s.legal_basis, "policy_hash": s.policy_hash,
        "first_offset": s.first_offset, "last_offset": s.last_offset,
        "outcomes": dict(s.outcomes), "reasons": dict(s.reasons),
        "quarantine_reasons": dict(s.quarantine_reasons),
        "protections": {p: list(v) for p, v in s.protections.items()},
        "key_ids": list(s.key_ids),
    }


def body_bytes(event: AuditEvent) -> bytes:
    """The canonical bytes that ``hash`` covers: the event without its ``hash``."""
    return canonical(_body(event.corridor, event.topic, event.partition, event.seq,
                           event.prev, event.ts_ms, event.summary))


def content_hash(event: AuditEvent) -> str:
    """The hash *event* should carry (compare with ``event.hash``)."""
    return hashlib.sha256(body_bytes(event)).hexdigest()


def encode_event(event: AuditEvent) -> bytes:
    """The event's canonical bytes, ``hash`` included: the audit record's value."""
    doc = _body(event.corridor, event.topic, event.partition, event.seq, event.prev,
                event.ts_ms, event.summary)
    doc["hash"] = event.hash
    return canonical(doc)


@dataclass(frozen=True)
class ChainState:
    """The head of one chain: what the owner of a partition needs to build the next event.

    ``seq`` is the last event's position (-1 before the first), ``head`` its hash
    (:data:`GENESIS` before the first). Advance it only once the batch is committed."""

    chain: ChainId
    seq: int = -1
    head: str = GENESIS

    @classmethod
    def start(cls, corridor: str, topic: str, partition: int) -> ChainState:
        return cls(ChainId(corridor, topic, partition))

    @classmethod
    def after(cls, event: AuditEvent) -> ChainState:
        """The state whose next event follows *event*."""
        return cls(event.chain, event.seq, event.hash)


def next_event(state: ChainState, summary: BatchSummary, ts_ms: int) -> tuple[AuditEvent,
                                                                               ChainState]:
    """The event after *state* and the state after it. Deterministic: the same arguments
    give byte-identical events (that is what makes a replay recognisable)."""
    c = state.chain
    unhashed = AuditEvent(c.corridor, c.topic, c.partition, state.seq + 1, state.head, ts_ms,
                          summary, "")
    event = replace(unhashed, hash=content_hash(unhashed))
    return event, ChainState.after(event)


def decode_event(data: bytes) -> AuditEvent:
    """The event encoded in *data*; AuditDecodeError unless *data* is exactly the canonical
    encoding of one (so any byte change is either a hash mismatch or this error)."""
    try:
        doc = json.loads(data.decode("utf-8"))
        event = _from_doc(doc)
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise AuditDecodeError(f"not an audit event: {exc}") from None
    if encode_event(event) != data:
        raise AuditDecodeError("not an audit event: not in canonical form")
    return event


# Operators' notices that share the audit topic but are no link of a chain: `corridor held
# release` and `corridor erase` write one JSON document each, ``{"event": <kind>, ...}``
# (who, when, why, what). They are skipped by the chain walk and listed by the report; the
# same who/why is also kept on the destination's side (release markers, erase markers).
NOTICES = ("release", "erase")


def notice_kind(data: bytes | None) -> str | None:
    """The kind of the operator's notice in *data* (one of :data:`NOTICES`), or None when
    *data* is not such a notice (an event, or garbage)."""
    if not data or not data.startswith(b"{"):
        return None
    try:
        doc = json.loads(data.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    kind = doc.get("event") if isinstance(doc, dict) else None
    return kind if kind in NOTICES and "seq" not in doc else None


def _int(value: Any) -> int:
    if not isinstance(value, int) or isinstance(value, bool):
        raise TypeError(f"expected an integer, got {value!r}")
    return value


def _str(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"expected a string, got {value!r}")
    return value


def _from_doc(doc: Any) -> AuditEvent:
    expected = {"v", "kind", "corridor", "topic", "partition", "seq", "prev", "ts_ms",
                "instrument", "legal_basis", "policy_hash", "first_offset", "last_offset",
                "outcomes", "reasons", "quarantine_reasons", "protections", "key_ids", "hash"}
    if not isinstance(doc, dict) or set(doc) != expected or doc["v"] != VERSION:
        raise ValueError("unexpected fields or version")
    if doc["kind"] not in ("batch", "gap"):
        raise ValueError(f"unknown kind {doc['kind']!r}")
    summary = BatchSummary(
        None if doc["instrument"] is None else _str(doc["instrument"]),
        _str(doc["legal_basis"]), _str(doc["policy_hash"]),
        _int(doc["first_offset"]), _int(doc["last_offset"]),
        {_str(k): _int(v) for k, v in doc["outcomes"].items()},
        {_str(k): _int(v) for k, v in doc["reasons"].items()},
        {_str(p): tuple(_str(f) for f in v) for p, v in doc["protections"].items()},
        tuple(_str(k) for k in doc["key_ids"]), doc["kind"],
        {_str(k): _int(v) for k, v in doc["quarantine_reasons"].items()})
    return AuditEvent(_str(doc["corridor"]), _str(doc["topic"]), _int(doc["partition"]),
                      _int(doc["seq"]), _str(doc["prev"]), _int(doc["ts_ms"]), summary,
                      _str(doc["hash"]))


# --- verification --------------------------------------------------------------------------


@dataclass(frozen=True)
class ChainBreak:
    """The first place a chain is not what its writer wrote: ``position`` is the index in
    the log (0-based) of the event where the break is detected; ``seq`` that event's seq
    (None when it could not be decoded)."""

    kind: BreakKind
    position: int
    seq: int | None
    detail: str


@dataclass(frozen=True)
class ChainReport:
    """The result of walking one chain. ``hashes`` maps each verified seq to its hash
    (checkpoints are checked against it); ``replays`` are the log positions of
    byte-identical duplicates; ``first_seq`` is where verification started (0 from the
    genesis, more when retention removed the beginning and ``from_genesis`` was False)."""

    chain: ChainId | None
    verified: int
    replays: tuple[int, ...]
    first_seq: int | None
    head_seq: int | None
    head_hash: str | None
    hashes: Mapping[int, str]
    broken: ChainBreak | None

    @property
    def ok(self) -> bool:
        return self.broken is None


class _Walk:
    """State of one :func:`verify_chain` walk."""

    def __init__(self, events: list[AuditEvent | None], from_genesis: bool) -> None:
        self.events = events
        self.anchored = from_genesis  # False: the first event is taken as it is
        self.hashes: dict[int, str] = {}
        self.replays: list[int] = []
        self.chain: ChainId | None = None
        self.first_seq: int | None = None
        self.head_seq, self.head = -1, GENESIS

    def later(self, position: int) -> list[AuditEvent]:
        return [e for e in self.events[position + 1:] if e is not None]

    def accept(self, event: AuditEvent) -> None:
        if self.first_seq is None:
            self.first_seq, self.chain = event.seq, event.chain
        self.hashes[event.seq] = event.hash
        self.head_seq, self.head = event.seq, event.hash

    def check(self, i: int, event: AuditEvent) -> tuple[BreakKind, str] | None:
        """What break *event* at position *i* makes, or None (it is accepted or a replay)."""
        if content_hash(event) != event.hash:
            return "altered", "its hash does not match its content"
        if self.chain is not None and event.chain != self.chain:
            return "inserted", f"it belongs to another chain ({event.chain})"
        if not self.anchored:
            self.anchored = True
            self.accept(event)
            return None
        if event.seq <= self.head_seq:
            if self.hashes.get(event.seq) == event.hash:
                self.replays.append(i)
                return None
            if event.seq in self.hashes:
                return "conflict", f"seq {event.seq} was already seen with other content"
            return "reordered", f"seq {event.seq} comes after seq {self.head_seq}"
        if event.seq > self.head_seq + 1:
            missing = set(range(self.head_seq + 1, event.seq))
            moved = missing & {e.seq for e in self.later(i)}
            if moved:
                return "reordered", f"seq {event.seq} comes before seq {min(moved)}"
            return "deleted", f"seq {min(missing)} to {max(missing)} are missing"
        if event.prev != self.head:
            return self._prev_mismatch(i, event)
        self.accept(event)
        return None

    def _prev_mismatch(self, i: int, event: AuditEvent) -> tuple[BreakKind, str]:
        later = self.later(i)
        if any(e.hash == event.prev for e in later):
            return "reordered", "its prev is the hash of an event later in the log"
        earlier = [s for s, h in self.hashes.items() if h == event.prev]
        if earlier:
            return "inserted", (f"its prev is seq {earlier[0]}: the event at seq "
                                f"{self.head_seq} before it is not part of the chain")
        if event.seq == 0 or any(e.seq == event.seq for e in later):
            return "inserted", "its prev is not the previous event's hash"
        return "deleted", ("its prev names an event that is not in the log (removed, and "
                           "the events after it renumbered)")


def verify_chain(log: Sequence[AuditEvent | bytes], *, from_genesis: bool = True) -> ChainReport:
    """Walk one chain's events in log order and report the FIRST break.

    *log* holds events or their encoded bytes (bytes are decoded strictly). With
    *from_genesis* the chain must start at seq 0 with prev = 64 zeros; without it (the
    audit topic's retention removed the start) the first event is taken as the anchor.
    Rules, for the event at position i, after the last verified event (seq s, hash h):

    1. ``undecodable``: the bytes are not the canonical encoding of an event.
    2. ``altered``: its hash does not match its content.
    3. ``inserted``: it belongs to another (corridor, topic, partition) than the first.
    4. seq <= s: a *replay* (accepted, listed in ``replays``) when that seq was verified
       with the same hash; ``conflict`` when it was verified with another;
       ``reordered`` when that seq was never seen (it precedes the anchor).
    5. seq > s + 1: ``reordered`` when a skipped seq appears later in the log, else
       ``deleted``.
    6. seq = s + 1 but prev != h: ``reordered`` when prev is the hash of an event later
       in the log; ``inserted`` when prev is the hash of an earlier verified event (so
       the event at s was put in between), when another event later has the same seq,
       or at seq 0; else ``deleted`` (its predecessor is gone and the rest renumbered).

    The data cannot always tell the stories apart (a fabricated first event of a
    renumbered tail looks like a deletion); each rule names the most direct reading.
    """
    events: list[AuditEvent | None] = []
    undecodable: tuple[int, str] | None = None
    for i, item in enumerate(log):
        if isinstance(item, AuditEvent):
            events.append(item)
            continue
        try:
            events.append(decode_event(item))
        except AuditDecodeError as exc:
            events.append(None)
            undecodable = undecodable or (i, str(exc))
    walk = _Walk(events, from_genesis)
    broken: ChainBreak | None = None
    for i, event in enumerate(events):
        if event is None:
            assert undecodable is not None
            broken = ChainBreak("undecodable", i, None, undecodable[1])
            break
        found = walk.check(i, event)
        if found is not None:
            broken = ChainBreak(found[0], i, event.seq, found[1])
            break
    return ChainReport(walk.chain, len(walk.hashes), tuple(walk.replays), walk.first_seq,
                       walk.head_seq if walk.hashes else None,
                       walk.head if walk.hashes else None,
                       MappingProxyType(dict(walk.hashes)), broken)


# --- signed checkpoints --------------------------------------------------------------------


@dataclass(frozen=True)
class Checkpoint:
    """A signed statement: chain ``corridor``/``topic``/``partition`` had ``head_hash`` at
    ``seq``, at ``ts_ms``. ``signer`` is the key id of the signing key
    (:func:`signer_id`); ``signature`` the hex Ed25519 signature of :func:`checkpoint_body`."""

    corridor: str
    topic: str
    partition: int
    seq: int
    head_hash: str
    ts_ms: int
    signer: str
    signature: str

    @property
    def chain(self) -> ChainId:
        return ChainId(self.corridor, self.topic, self.partition)


def signer_id(public_key: Ed25519PublicKey) -> str:
    """``ed25519:<16 hex>``: the first 8 bytes of SHA-256 of the raw public key."""
    raw = public_key.public_bytes(Encoding.Raw, PublicFormat.Raw)
    return "ed25519:" + hashlib.sha256(raw).hexdigest()[:16]


def checkpoint_body(cp: Checkpoint) -> bytes:
    """The canonical bytes a checkpoint's signature covers (everything but the signature)."""
    return canonical({"v": VERSION, "corridor": cp.corridor, "topic": cp.topic,
                      "partition": cp.partition, "seq": cp.seq, "head_hash": cp.head_hash,
                      "ts_ms": cp.ts_ms, "signer": cp.signer})


def sign_checkpoint(private_key: Ed25519PrivateKey, head: ChainState, ts_ms: int) -> Checkpoint:
    """A checkpoint of *head* (a chain state after at least one event), signed."""
    if head.seq < 0:
        raise ValueError("a checkpoint needs a chain with at least one event")
    c = head.chain
    unsigned = Checkpoint(c.corridor, c.topic, c.partition, head.seq, head.head, ts_ms,
                          signer_id(private_key.public_key()), "")
    return replace(unsigned, signature=private_key.sign(checkpoint_body(unsigned)).hex())


def verify_checkpoint(public_key: Ed25519PublicKey, checkpoint: Checkpoint) -> bool:
    """Whether *checkpoint* was signed by *public_key* (and names it as its signer)."""
    if checkpoint.signer != signer_id(public_key):
        return False
    try:
        public_key.verify(bytes.fromhex(checkpoint.signature), checkpoint_body(checkpoint))
    except (InvalidSignature, ValueError):
        return False
    return True


def encode_checkpoint(cp: Checkpoint) -> bytes:
    """A checkpoint's canonical bytes, signature included: the checkpoint record's value."""
    doc = json.loads(checkpoint_body(cp))
    doc["signature"] = cp.signature
    return canonical(doc)


def decode_checkpoint(data: bytes) -> Checkpoint:
    """The checkpoint encoded in *data* (AuditDecodeError if it is not one)."""
    try:
        doc = json.loads(data.decode("utf-8"))
        if not isinstance(doc, dict) or doc.pop("v", None) != VERSION:
            raise ValueError("unexpected version")
        cp = Checkpoint(_str(doc.pop("corridor")), _str(doc.pop("topic")),
                        _int(doc.pop("partition")), _int(doc.pop("seq")),
                        _str(doc.pop("head_hash")), _int(doc.pop("ts_ms")),
                        _str(doc.pop("signer")), _str(doc.pop("signature")))
        if doc:
            raise ValueError(f"unexpected fields {sorted(doc)}")
    except (UnicodeDecodeError, ValueError, TypeError, KeyError) as exc:
        raise AuditDecodeError(f"not a checkpoint: {exc}") from None
    return cp


@dataclass(frozen=True)
class CheckpointFailure:
    """The first checkpoint that does not hold: its index in the checkpoints given."""

    index: int
    checkpoint: Checkpoint
    reason: str


@dataclass(frozen=True)
class AuditReport:
    """A chain walked and its checkpoints checked. ``unverifiable``: indexes of checkpoints
    whose seq precedes the chain's first retained event (signature checked, head not)."""

    chain: ChainReport
    checkpoints: int
    unverifiable: tuple[int, ...]
    failure: CheckpointFailure | None

    @property
    def ok(self) -> bool:
        return self.chain.ok and self.failure is None


def verify_with_checkpoints(
    log: Sequence[AuditEvent | bytes],
    checkpoints: Sequence[Checkpoint],
    public_keys: Mapping[str, Ed25519PublicKey],
    *,
    from_genesis: bool = True,
) -> AuditReport:
    """Walk the chain, then check each checkpoint of it, in the order given: it fails when
    its signer is unknown or its signature does not verify, or when the chain has no
    event at its seq (deleted, or the tail truncated) or another hash there. Checkpoints of
    other chains are ignored. *public_keys* maps signer ids (:func:`signer_id`) to keys."""
    report = verify_chain(log, from_genesis=from_genesis)
    unverifiable: list[int] = []
    checked = 0
    for index, cp in enumerate(checkpoints):
        if report.chain is not None and cp.chain != report.chain:
            continue
        checked += 1
        reason = _checkpoint_problem(cp, report, public_keys)
        if reason == "before":
            unverifiable.append(index)
        elif reason is not None:
            return AuditReport(report, checked, tuple(unverifiable),
                               CheckpointFailure(index, cp, reason))
    return AuditReport(report, checked, tuple(unverifiable), None)


def _checkpoint_problem(cp: Checkpoint, report: ChainReport,
                        public_keys: Mapping[str, Ed25519PublicKey]) -> str | None:
    key = public_keys.get(cp.signer)
    if key is None:
        return f"signed by unknown key {cp.signer}"
    if not verify_checkpoint(key, cp):
        return f"signature does not verify with {cp.signer}"
    if report.first_seq is not None and cp.seq < report.first_seq:
        return "before"
    found = report.hashes.get(cp.seq)
    if found is None:
        head = "no event" if report.head_seq is None else f"verified up to seq {report.head_seq}"
        return f"the chain has no verified event at seq {cp.seq} ({head})"
    if found != cp.head_hash:
        return f"the chain's hash at seq {cp.seq} is not the signed head hash"
    return None
