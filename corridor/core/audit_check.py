"""Checking one origin zone's audit evidence as read: the events grouped into chains, each
chain walked with its signed checkpoints, and every destination's copy of the checkpoints
compared with the origin's.

Owns: grouping records into chains, the breaks beyond a chain's own kinds, and which break
is FIRST. Does not own: walking a chain or checking a signature (``core.audit``), reading
the topics (``corridor.kafka.evidence``), printing (``corridor audit verify``). Pure.

Break kinds: a chain's own (``undecodable``, ``altered``, ``deleted``, ``reordered``,
``inserted``, ``conflict``: see ``core.audit.verify_chain``); for a checkpoint that does
not hold, ``signature`` (unknown signer, or the signature does not verify), ``truncated``
(the chain has no event at its seq: the tail after it is gone) or ``rewritten`` (the
chain's hash at its seq is not the signed one); for the copies, ``copy-missing`` (the
origin has a checkpoint the destination's copy lacks), ``copy-extra`` (the copy holds one
the origin lacks) and ``copy-differs`` (both hold the chain's seq, with other content).

Order of breaks: the events topic's, then the checkpoint topic's, then each destination's
copy (by zone: what the copy holds wrongly, then what it lacks, at the origin's offset);
within a topic by partition and offset. Each chain contributes at most
its first break (a chain walk stops there); every copy difference is listed.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Protocol, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from corridor.core.audit import (
    AuditDecodeError,
    AuditEvent,
    AuditReport,
    ChainId,
    ChainReport,
    Checkpoint,
    decode_checkpoint,
    decode_event,
    notice_kind,
    verify_checkpoint,
    verify_with_checkpoints,
)

# Rank of each topic role in the order of breaks.
EVENTS, CHECKPOINTS, COPY = 0, 1, 2


@dataclass(frozen=True)
class Logged:
    """One record of an evidence topic: where it is, and its value (None: a tombstone)."""

    topic: str
    partition: int
    offset: int
    value: bytes | None


@dataclass(frozen=True)
class Evidence:
    """What was read for origin ``zone``: its events and checkpoints in topic order, each
    destination's copy of its checkpoints (by destination zone), and whether the events
    topic still starts at its first offset (``from_genesis``: every chain must start at
    seq 0; False once retention removed the front, and each chain's first event is taken
    as its anchor)."""

    zone: str
    events: Sequence[Logged]
    checkpoints: Sequence[Logged]
    copies: Mapping[str, Sequence[Logged]] = field(default_factory=dict)
    from_genesis: bool = True


@dataclass(frozen=True)
class Break:
    """Where the evidence is not what its writer wrote. ``chain``/``seq``: None when the
    record could not be decoded."""

    zone: str
    kind: str
    topic: str
    partition: int
    offset: int
    chain: ChainId | None
    seq: int | None
    detail: str
    rank: tuple[int, str, int] = (EVENTS, "", 0)


@dataclass(frozen=True)
class ChainSummary:
    """One chain walked: events verified, replays accepted, the seqs it covers, checkpoints
    that held, and checkpoints before its first retained event (signature checked only)."""

    chain: ChainId
    events: int
    replays: int
    first_seq: int | None
    head_seq: int | None
    checkpoints: int
    unverifiable: int


@dataclass(frozen=True)
class ZoneCheck:
    """The result for one origin zone: its chains, the checkpoints each destination's copy
    holds identically (by zone), and its breaks, first first."""

    zone: str
    chains: tuple[ChainSummary, ...]
    copies: Mapping[str, int]
    breaks: tuple[Break, ...]

    @property
    def ok(self) -> bool:
        return not self.breaks


def check_zone(evidence: Evidence, keys: Mapping[str, Ed25519PublicKey],
               destinations: Mapping[str, str], corridor: str | None = None) -> ZoneCheck:
    """Check *evidence* with the zone's public *keys* (by signer id). *destinations* maps
    each corridor of the zone to its destination zone (a checkpoint of a corridor not in
    it is checked against the chain but compared with no copy); *corridor* limits the
    check to one corridor's chains (undecodable records are breaks whichever it is)."""
    breaks: list[Break] = []
    events = _group(evidence.zone, evidence.events, decode_event, corridor, breaks,
                    (EVENTS, "", 0))
    checkpoints = _group(evidence.zone, evidence.checkpoints, decode_checkpoint, corridor,
                         breaks, (CHECKPOINTS, "", 0))
    chains = []
    for chain in sorted(set(events) | set(checkpoints)):
        logged, cps = events.get(chain, []), checkpoints.get(chain, [])
        report = verify_with_checkpoints([e for _, e in logged], [c for _, c in cps], keys,
                                         from_genesis=evidence.from_genesis)
        chains.append(_summary(chain, report))
        found = _chain_break(evidence.zone, chain, report, logged, cps, keys)
        if found is not None:
            breaks.append(found)
    copies: dict[str, int] = {}
    origin = [item for items in checkpoints.values() for item in items]
    for dest, records in sorted(evidence.copies.items()):
        wanted = [(r, c) for r, c in origin if destinations.get(c.corridor) == dest]
        copies[dest] = _compare_copy(evidence.zone, dest, wanted, records, corridor, breaks)
    breaks.sort(key=lambda b: (b.rank, b.partition, b.offset))
    return ZoneCheck(evidence.zone, tuple(chains), copies, tuple(breaks))


class _Chained(Protocol):
    @property
    def chain(self) -> ChainId: ...


C = TypeVar("C", bound=_Chained)


def _group(zone: str, records: Sequence[Logged], decode: Callable[[bytes], C],
           corridor: str | None, breaks: list[Break],
           rank: tuple[int, str, int]) -> dict[ChainId, list[tuple[Logged, C]]]:
    """Decoded records by chain, in topic order; an undecodable one is a break."""
    out: dict[ChainId, list[tuple[Logged, C]]] = defaultdict(list)
    for rec in records:
        if notice_kind(rec.value) is not None:
            continue  # an operator's notice (release, erase): no link of a chain
        try:
            item = decode(rec.value if rec.value is not None else b"")
        except AuditDecodeError as exc:
            detail = "no value (a tombstone)" if rec.value is None else str(exc)
            breaks.append(_at(zone, "undecodable", rec, None, None, detail, rank))
            continue
        if corridor is None or item.chain.corridor == corridor:
            out[item.chain].append((rec, item))
    return out


def _at(zone: str, kind: str, rec: Logged, chain: ChainId | None, seq: int | None,
        detail: str, rank: tuple[int, str, int]) -> Break:
    return Break(zone, kind, rec.topic, rec.partition, rec.offset, chain, seq, detail, rank)


def _summary(chain: ChainId, report: AuditReport) -> ChainSummary:
    walked = report.chain
    held = report.checkpoints - len(report.unverifiable) - (report.failure is not None)
    return ChainSummary(chain, walked.verified, len(walked.replays), walked.first_seq,
                        walked.head_seq, held, len(report.unverifiable))


def _chain_break(zone: str, chain: ChainId, report: AuditReport,
                 logged: Sequence[tuple[Logged, AuditEvent]],
                 cps: Sequence[tuple[Logged, Checkpoint]],
                 keys: Mapping[str, Ed25519PublicKey]) -> Break | None:
    """The chain's first break: in its events, else its first checkpoint that fails."""
    broken = report.chain.broken
    if broken is not None:
        rec = logged[broken.position][0]
        return _at(zone, broken.kind, rec, chain, broken.seq, broken.detail, (EVENTS, "", 0))
    failure = report.failure
    if failure is None:
        return None
    kind = _checkpoint_kind(failure.checkpoint, report.chain, keys)
    return _at(zone, kind, cps[failure.index][0], chain, failure.checkpoint.seq,
               failure.reason, (CHECKPOINTS, "", 0))


def _checkpoint_kind(cp: Checkpoint, walked: ChainReport,
                     keys: Mapping[str, Ed25519PublicKey]) -> str:
    key = keys.get(cp.signer)
    if key is None or not verify_checkpoint(key, cp):
        return "signature"
    if walked.head_seq is None or cp.seq > walked.head_seq:
        return "truncated"
    return "rewritten"


def _compare_copy(zone: str, dest: str, wanted: Sequence[tuple[Logged, Checkpoint]],
                  records: Sequence[Logged], corridor: str | None,
                  breaks: list[Break]) -> int:
    """Compare *dest*'s copy with the origin checkpoints *wanted* there; returns how many
    of the copy's checkpoints the origin holds identically (differences go to *breaks*)."""
    rank, missing = (COPY, dest, 0), (COPY, dest, 1)
    at_origin: dict[tuple[ChainId, int], list[Checkpoint]] = defaultdict(list)
    for _, cp in wanted:
        at_origin[(cp.chain, cp.seq)].append(cp)
    held = _group(zone, records, decode_checkpoint, corridor, breaks, rank)
    equal, in_copy = 0, set()
    for rec, cp in sorted((item for items in held.values() for item in items),
                          key=lambda item: (item[0].partition, item[0].offset)):
        in_copy.add((cp.chain, cp.seq))
        same = at_origin.get((cp.chain, cp.seq))
        if same is None:
            breaks.append(_at(zone, "copy-extra", rec, cp.chain, cp.seq,
                              f"{dest} holds a checkpoint the origin {zone} does not", rank))
        elif cp not in same:
            breaks.append(_at(zone, "copy-differs", rec, cp.chain, cp.seq,
                              f"{dest}'s copy differs from the origin {zone}'s checkpoint",
                              rank))
        else:
            equal += 1
    for rec, cp in wanted:
        if (cp.chain, cp.seq) not in in_copy:
            breaks.append(_at(zone, "copy-missing", rec, cp.chain, cp.seq,
                              f"{dest}'s copy does not hold this checkpoint", missing))
    return equal
