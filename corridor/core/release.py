"""Remediation of held records, as values (`corridor held list|show|release`). Pure.

A record the corridor withheld or quarantined stays in the origin (``core.outbox``). A
*release* re-runs held records through the corridor's CURRENT plan, with the same
``core.pipeline.process`` the processor runs, so a release cannot bypass the policy: a
record crosses only when today's policy delivers it; one it still withholds or
quarantines stays held (its side record is not rewritten). This module owns:

- ``HeldRecord`` (one side record, parsed) and ``Selection`` (the operator's filters:
  reason prefix, held since, lineages or lineage ranges);
- ``triage``: which selected records a release takes: not those an earlier release took
  (its ``Marker`` is in ``_corridor.released.<corridor>``), not those at or above the
  committed position (their batch may still be replayed by the processor), not a lineage
  held twice;
- ``classify``: what the pipeline's result makes of the re-run records;
- ``release_messages``: the released records (with ``corridor-released: <release id>``)
  and one ``Marker`` per lineage, for ONE destination transaction, so a record and its
  marker commit together and a second release of the same lineage finds the marker;
- ``release_event``: the JSON event a release adds to the origin's audit topic
  (``"event": "release"``: a kind of its own, outside the per-batch hash chain).

Does not own: reading or writing Kafka (``kafka.held``), the order of the steps
(``processor.release``), the accounting of released records (``core.verify``).
"""

from __future__ import annotations

import json
import re
from collections import Counter, defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from corridor.core import topics, wire
from corridor.core.codec.arrow_batches import looks_like_ipc
from corridor.core.model import Lineage, Outcome, OutMessage
from corridor.core.outbox import delivered
from corridor.core.pipeline import BatchResult

Partition = tuple[str, int]
HELD = (Outcome.WITHHELD, Outcome.QUARANTINED)
_DURATION = re.compile(r"^(\d+)([smhd])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}


@dataclass(frozen=True, slots=True)
class HeldRecord:
    """One withheld or quarantined record as the origin keeps it: the original value, the
    source key (``corridor-source-key``; None when the source key was null or the record
    was held before that header existed), the reason, and when it was held."""

    lineage: Lineage
    outcome: Outcome
    reason: str
    value: bytes | None
    key: bytes | None = None
    held_at_ms: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] = ()

    @property
    def size(self) -> int:
        return len(self.value or b"")


def held_record(outcome: Outcome, key: bytes | None, value: bytes | None,
                headers: Sequence[tuple[str, bytes | None]],
                timestamp_ms: int | None) -> HeldRecord | None:
    """The held record of one side-topic record; None when its key is no lineage."""
    try:
        lineage = Lineage.parse((key or b"").decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        return None
    reason, source_key = "", None
    for name, v in headers:
        if name == wire.REASON and v is not None:
            reason = v.decode("utf-8", errors="replace")
        elif name == wire.SOURCE_KEY:
            source_key = v
    return HeldRecord(lineage, outcome, reason, value, source_key, timestamp_ms, tuple(headers))


@dataclass(frozen=True, slots=True)
class LineagePattern:
    """``topic/partition/offset[#row]`` (one record) or ``topic/partition/first-last``."""

    topic: str
    partition: int
    first: int
    last: int
    row: int | None = None

    @classmethod
    def parse(cls, text: str) -> LineagePattern:
        """Raises ValueError naming the text when it is neither form."""
        try:
            topic, partition, rest = text.rsplit("/", 2)
            if "-" in rest:
                first, last = rest.split("-", 1)
                return cls(topic, int(partition), int(first), int(last))
            one = Lineage.parse(text)
        except ValueError:
            raise ValueError(f"{text!r} is not a lineage (topic/partition/offset[#row]) "
                             "nor a range (topic/partition/first-last)") from None
        return cls(one.topic, one.partition, one.offset, one.offset,
                   one.row if "#" in rest else None)

    def covers(self, lineage: Lineage) -> bool:
        return (lineage.topic == self.topic and lineage.partition == self.partition
                and self.first <= lineage.offset <= self.last
                and (self.row is None or lineage.row == self.row))


@dataclass(frozen=True, slots=True)
class Selection:
    """Which held records an operator means: every filter given must match."""

    reason: str | None = None  # prefix of the held reason
    since_ms: int | None = None  # held at or after (ms since the epoch)
    lineages: tuple[LineagePattern, ...] = ()  # any of them

    def matches(self, record: HeldRecord) -> bool:
        if self.reason is not None and not record.reason.startswith(self.reason):
            return False
        if self.since_ms is not None and (record.held_at_ms or 0) < self.since_ms:
            return False
        return not self.lineages or any(p.covers(record.lineage) for p in self.lineages)

    def select(self, records: Iterable[HeldRecord]) -> list[HeldRecord]:
        """The matching records, by lineage."""
        return sorted((r for r in records if self.matches(r)), key=lambda r: r.lineage)


def parse_since(text: str, now_ms: int) -> int:
    """``30m``/``2h``/``7d``/``45s`` ago, or an ISO-8601 time (UTC when it names no zone),
    as ms since the epoch. Raises ValueError naming the text."""
    found = _DURATION.match(text.strip())
    if found:
        return now_ms - int(found.group(1)) * _SECONDS[found.group(2)] * 1000
    try:
        when = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is neither a duration (30m, 2h, 7d) nor an ISO-8601 "
                         "time (2024-05-01T12:00:00Z)") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return int(when.timestamp() * 1000)


@dataclass(frozen=True, slots=True)
class Release:
    """One run of `corridor held release`: who, why, when, under which policy."""

    corridor: str
    release_id: str
    by: str  # the operator (user name)
    principal: str  # the Kafka principal it ran as
    reason: str
    ts_ms: int
    policy: str  # policy_id of the plan the records were re-run through


def release_id(now_ms: int, nonce: str) -> str:
    """``20240501T120000Z-<nonce>``: sortable by time, unique by the nonce."""
    stamp = datetime.fromtimestamp(now_ms / 1000, UTC).strftime("%Y%m%dT%H%M%SZ")
    return f"{stamp}-{nonce}"


@dataclass(frozen=True, slots=True)
class Marker:
    """What ``_corridor.released.<corridor>`` keeps per released lineage (key: the lineage)."""

    lineage: str
    release: str
    by: str
    principal: str
    reason: str
    ts_ms: int
    previous: str  # the outcome it was held under: withheld / quarantined
    previous_reason: str
    policy: str

    def encode(self) -> bytes:
        return json.dumps({s: getattr(self, s) for s in self.__slots__},
                          sort_keys=True).encode()

    @classmethod
    def decode(cls, value: bytes) -> Marker:
        """Raises ValueError when ``value`` is not a marker."""
        try:
            doc = json.loads(value)
            return cls(**{s: doc[s] for s in cls.__slots__})
        except (TypeError, KeyError, UnicodeDecodeError) as exc:
            raise ValueError(f"not a release marker: {exc}") from None

    @classmethod
    def of(cls, release: Release, record: HeldRecord) -> Marker:
        return cls(str(record.lineage), release.release_id, release.by, release.principal,
                   release.reason, release.ts_ms, record.outcome.value, record.reason,
                   release.policy)


@dataclass(frozen=True)
class Triage:
    """The selected records, split: ``todo`` is what a release re-runs."""

    todo: list[HeldRecord]
    already: list[tuple[HeldRecord, str]]  # taken by an earlier release: its id
    pending: list[HeldRecord]  # at or above the committed position
    refused: list[tuple[HeldRecord, str]]  # cannot be re-run: why


def triage(selected: Sequence[HeldRecord], released: Mapping[str, Marker],
           committed: Mapping[Partition, int]) -> Triage:
    """Split ``selected`` (see ``Triage``). A record at or above its partition's committed
    position is left alone: the batch that held it may not have committed, and its replay
    would decide it again. A lineage both withheld and quarantined is refused (``corridor
    verify`` reports it as a conflict). An Arrow row that did not decode is held as a
    one-row Arrow stream, which the pipeline would read as row 0: refused too."""
    count = Counter(r.lineage for r in selected)
    out = Triage([], [], [], [])
    for r in selected:
        marker = released.get(str(r.lineage))
        if marker is not None:
            out.already.append((r, marker.release))
        elif r.lineage.offset >= committed.get((r.lineage.topic, r.lineage.partition), 0):
            out.pending.append(r)
        elif count[r.lineage] > 1:
            out.refused.append((r, "held twice (withheld and quarantined): see corridor verify"))
        elif r.lineage.row >= 0 and looks_like_ipc(r.value):
            out.refused.append((r, "an Arrow row that did not decode: re-run its whole source "
                                   "message instead (not supported by release)"))
        else:
            out.todo.append(r)
    return out


@dataclass(frozen=True)
class Rerun:
    """What today's policy made of re-run records."""

    crossing: list[HeldRecord]
    held: list[tuple[HeldRecord, Outcome, str]]  # still held: the outcome and reason now


def classify(records: Sequence[HeldRecord], result: BatchResult) -> Rerun:
    """Each of ``records`` (the inputs of ``result``) as crossing or still held."""
    outcomes = result.outcomes()
    reasons = {s.lineage: s.reason for s in (*result.withheld, *result.quarantined)}
    out = Rerun([], [])
    for r in records:
        outcome = outcomes[r.lineage]
        if outcome is Outcome.DELIVERED:
            out.crossing.append(r)
        else:
            out.held.append((r, outcome, reasons[r.lineage]))
    return out


def release_messages(result: BatchResult, records: Mapping[Lineage, HeldRecord],
                     release: Release, destination_topic: str,
                     partition: int | None) -> list[OutMessage]:
    """The delivered records of ``result`` (re-run ``records`` of one source partition),
    each with ``corridor-released``, then a marker per released lineage. ``partition``:
    the destination partition (None: the producer's partitioner), as the processor does."""
    tag = (wire.RELEASED, release.release_id.encode())
    out = [m._replace(headers=[*(m.headers or []), tag])
           for m in delivered(result, destination_topic, partition)]
    markers = topics.released_topic(release.corridor)
    out += [OutMessage(markers, Marker.of(release, records[lin]).encode(), str(lin).encode())
            for d in result.delivered for lin in d.lineages()]
    return out


def ranges(lineages: Iterable[Lineage]) -> list[str]:
    """Lineages as few texts as possible: consecutive offsets of a partition as one
    ``topic/partition/first-last`` (rows of Arrow messages stay one by one)."""
    runs: dict[Partition, list[int]] = defaultdict(list)
    single: list[str] = []
    for lin in sorted(set(lineages)):
        if lin.row >= 0:
            single.append(str(lin))
        else:
            runs[(lin.topic, lin.partition)].append(lin.offset)
    out = []
    for (topic, partition), offsets in sorted(runs.items()):
        start = prev = offsets[0]
        for o in [*offsets[1:], None]:
            if o is not None and o == prev + 1:
                prev = o
                continue
            out.append(wire.lineage_text(topic, partition, start) if start == prev
                       else f"{topic}/{partition}/{start}-{prev}")
            if o is not None:
                start = prev = o
    return out + single


def release_event(release: Release, crossed: Sequence[HeldRecord], still_held: int,
                  already: int) -> dict[str, object]:
    """The audit event of one release (``"event": "release"``), for the origin's audit
    topic: who, why, under which policy, how many crossed (by the outcome they were held
    under) and which (as ``ranges``)."""
    return {"event": "release", "corridor": release.corridor, "release": release.release_id,
            "by": release.by, "principal": release.principal, "reason": release.reason,
            "policy": release.policy, "ts_ms": release.ts_ms, "count": len(crossed),
            "previous": dict(Counter(r.outcome.value for r in crossed)),
            "lineages": ranges(r.lineage for r in crossed), "still_held": still_held,
            "already_released": already}


def event_key(release: Release) -> bytes:
    return f"{release.corridor}|release|{release.release_id}".encode()


def summarize(markers: Iterable[Marker]) -> list[dict[str, object]]:
    """One line per release that the markers name: id, who, why, when, records by the
    outcome they were held under; oldest first."""
    by_release: dict[str, list[Marker]] = defaultdict(list)
    for m in markers:
        by_release[m.release].append(m)
    ordered = sorted(by_release.items(), key=lambda item: (item[1][0].ts_ms, item[0]))
    return [{"release": rid, "by": group[0].by, "reason": group[0].reason,
             "ts_ms": group[0].ts_ms, "policy": group[0].policy, "records": len(group),
             "previous": dict(Counter(m.previous for m in group))} for rid, group in ordered]
