"""What crossed where, under which instrument: the report's values, built from audit events.

Owns: :func:`build_report` (decoded audit events + the corridor file + a window -> a
:class:`Report`), replay de-duplication, the per-chain reconciliation. Does not own:
reading the audit topic (``corridor.kafka``), walking the hash chain (``core.audit``,
whose :class:`~corridor.core.audit.ChainReport` per chain comes in as a separate input),
rendering (``render_md``, ``render_html``, ``document``). Pure: no I/O, no clock.

**Counting.** An event of a batch replayed after an aborted transaction is byte-identical
to the first (same chain and seq, same bytes): it is counted once (``replays``). Two
different events at one (chain, seq) are a ``conflict``: the first in log order is counted, and the
chain does not reconcile. The window is ``[from_ms, to_ms)`` on the events' ``ts_ms``.

**Reasons.** An event counts withheld records by reason (``reasons``) and quarantined
records by reason (``quarantine_reasons``) apart. The terms are those of ``corridor verify`` (``withheld_by_reason``,
``quarantined_by_reason``: the reason text of the side records).

**Reconciliation** (per chain, over its events in the window, in seq order): the chain
is *contiguous* when each event's seq is one past the previous one and its first source
offset one past the previous event's last; it *reconciles* when it is contiguous, has
no conflict, and its outcome counts add up to the source offsets its batch events
cover (``last - first + 1`` summed; ``gap`` events cover offsets that retention
removed at the origin before they crossed, which have no outcome). The rule takes a
source offset for one record: a source message that is an Arrow IPC batch of many rows,
or offsets taken by transaction markers, show as a difference, named per event.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field

from corridor.core.audit import (
    PROTECTIONS,
    AuditEvent,
    BatchSummary,
    ChainId,
    ChainReport,
    encode_event,
)
from corridor.core.config import Config, Instrument

KEY_EPOCH = re.compile(r"-dek-e(\d+)-")


@dataclass(frozen=True)
class Window:
    """Event times ``[from_ms, to_ms)``, epoch milliseconds (UTC)."""

    from_ms: int
    to_ms: int

    def __post_init__(self) -> None:
        if self.to_ms <= self.from_ms:
            raise ValueError(f"empty window: to {self.to_ms} is not after from {self.from_ms}")

    def holds(self, ts_ms: int) -> bool:
        return self.from_ms <= ts_ms < self.to_ms


@dataclass
class Tally:
    """Records by outcome, and withheld/quarantined records by reason."""

    delivered: int = 0
    withheld: int = 0
    quarantined: int = 0
    withheld_by_reason: Counter[str] = field(default_factory=Counter)
    quarantined_by_reason: Counter[str] = field(default_factory=Counter)

    @property
    def records(self) -> int:
        return self.delivered + self.withheld + self.quarantined

    def add(self, summary: BatchSummary) -> None:
        out = summary.outcomes
        self.delivered += out.get("delivered", 0)
        self.withheld += out.get("withheld", 0)
        self.quarantined += out.get("quarantined", 0)
        self.withheld_by_reason.update(summary.reasons)
        self.quarantined_by_reason.update(summary.quarantine_reasons)

    def merge(self, other: Tally) -> None:
        self.delivered += other.delivered
        self.withheld += other.withheld
        self.quarantined += other.quarantined
        self.withheld_by_reason.update(other.withheld_by_reason)
        self.quarantined_by_reason.update(other.quarantined_by_reason)


def key_epoch(key_id: str) -> int | None:
    """The epoch in a data key id ``<corridor>-dek-e<epoch>-<hex>``, or None."""
    found = KEY_EPOCH.search(key_id)
    return int(found.group(1)) if found else None


@dataclass(frozen=True)
class Span:
    """First and last event time (ms) and the number of events of something in use."""

    first_ms: int
    last_ms: int
    events: int


@dataclass
class InstrumentUse:
    """What crossed under one instrument (None: the events named none).

    ``protections[p][path]``: delivered records of the batches that sent *path* under
    protection *p* (one of :data:`~corridor.core.audit.PROTECTIONS`)."""

    instrument: str | None
    legal_basis: set[str] = field(default_factory=set)
    tally: Tally = field(default_factory=Tally)
    protections: dict[str, Counter[str]] = field(
        default_factory=lambda: {p: Counter() for p in PROTECTIONS})
    events: int = 0


@dataclass(frozen=True)
class Mismatch:
    """A batch event whose outcome counts differ from the source offsets it covers."""

    seq: int
    first_offset: int
    last_offset: int
    records: int


@dataclass
class ChainSection:
    """One chain's events in the window, and whether they reconcile.

    ``ranges``: the source offsets covered by batch events, merged, inclusive;
    ``gaps``: those of gap events; ``status``: the chain walked over its whole log
    (None when no status was given)."""

    chain: ChainId
    events: int = 0
    replays: int = 0
    conflicts: int = 0
    ranges: list[tuple[int, int]] = field(default_factory=list)
    gaps: list[tuple[int, int]] = field(default_factory=list)
    offsets: int = 0
    gap_offsets: int = 0
    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    discontinuities: list[str] = field(default_factory=list)
    mismatches: list[Mismatch] = field(default_factory=list)
    status: ChainReport | None = None

    @property
    def contiguous(self) -> bool:
        return not self.discontinuities

    @property
    def reconciles(self) -> bool:
        return self.contiguous and not self.conflicts and self.records == self.offsets


@dataclass
class CorridorSection:
    """One corridor: per instrument, policy versions and keys in use, chains, totals.

    ``origin``/``destination``/``configured_instrument`` come from the corridor file
    (None for a corridor the events name but the file does not)."""

    name: str
    origin: str | None
    destination: str | None
    configured_instrument: str | None
    instruments: dict[str | None, InstrumentUse] = field(default_factory=dict)
    policies: dict[str, Span] = field(default_factory=dict)
    keys: dict[str, Span] = field(default_factory=dict)
    chains: dict[ChainId, ChainSection] = field(default_factory=dict)
    totals: Tally = field(default_factory=Tally)

    @property
    def reconciles(self) -> bool:
        return all(c.reconciles for c in self.chains.values())

    @property
    def verified(self) -> bool:
        """Every chain with events in the window was walked and is unbroken."""
        return all(c.status is not None and c.status.ok for c in self.chains.values())


@dataclass
class Report:
    """The whole report. ``instruments``: the corridor file's, by id; ``events``: distinct
    events counted; ``outside``: distinct events outside the window (of the corridors
    reported on); ``undecodable``: audit records that are no event (counted by the reader)."""

    window: Window
    generated_ms: int
    corridors: dict[str, CorridorSection]
    instruments: Mapping[str, Instrument] = field(default_factory=dict)
    totals: Tally = field(default_factory=Tally)
    events: int = 0
    replays: int = 0
    conflicts: int = 0
    outside: int = 0
    undecodable: int = 0

    @property
    def reconciles(self) -> bool:
        return all(c.reconciles for c in self.corridors.values())

    @property
    def verified(self) -> bool:
        return self.undecodable == 0 and all(c.verified for c in self.corridors.values())


def distinct_events(log: Iterable[AuditEvent]) -> tuple[list[AuditEvent], Counter[ChainId],
                                                        Counter[ChainId]]:
    """Events once each, in log order, and replays (byte-identical events at a seq seen) and
    conflicts (other bytes at a seq seen) per chain."""
    seen: dict[tuple[ChainId, int], bytes] = {}
    out: list[AuditEvent] = []
    replays: Counter[ChainId] = Counter()
    conflicts: Counter[ChainId] = Counter()
    for event in log:
        known, data = seen.get((event.chain, event.seq)), encode_event(event)
        if known is None:
            seen[(event.chain, event.seq)] = data
            out.append(event)
        elif known == data:
            replays[event.chain] += 1
        else:
            conflicts[event.chain] += 1
    return out, replays, conflicts


def build_report(
    events: Iterable[AuditEvent],
    config: Config,
    window: Window,
    *,
    corridors: Collection[str] | None = None,
    statuses: Mapping[ChainId, ChainReport] | None = None,
    undecodable: int = 0,
    generated_ms: int = 0,
) -> Report:
    """The report on *corridors* (default: every corridor of *config* and every corridor
    the events name) over *window*. *statuses*: :func:`~corridor.core.audit.verify_chain`
    of each chain's whole log, by chain. *generated_ms* is printed, not used."""
    distinct, replays, conflicts = distinct_events(events)
    names = set(config.corridors) | {e.corridor for e in distinct} if corridors is None \
        else set(corridors)
    report = Report(window, generated_ms, {n: _corridor_section(n, config)
                                           for n in sorted(names)},
                    config.instruments, undecodable=undecodable)
    inside: dict[ChainId, list[AuditEvent]] = {}
    for event in distinct:
        if event.corridor not in names:
            continue
        if not window.holds(event.ts_ms):
            report.outside += 1
            continue
        inside.setdefault(event.chain, []).append(event)
    for chain in sorted(inside):
        section = report.corridors[chain.corridor]
        chain_events = sorted(inside[chain], key=lambda e: e.seq)
        for event in chain_events:
            _count(section, event)
        found = _chain_section(chain, chain_events)
        found.replays, found.conflicts = replays[chain], conflicts[chain]
        found.status = (statuses or {}).get(chain)
        section.chains[chain] = found
        report.events += len(chain_events)
        report.replays += found.replays
        report.conflicts += found.conflicts
    for section in report.corridors.values():
        report.totals.merge(section.totals)
    return report


def _corridor_section(name: str, config: Config) -> CorridorSection:
    c = config.corridors.get(name)
    if c is None:
        return CorridorSection(name, None, None, None)
    return CorridorSection(name, c.origin, c.destination, c.instrument)


def _widen(spans: dict[str, Span], key: str, ts_ms: int) -> None:
    old = spans.get(key)
    spans[key] = Span(ts_ms, ts_ms, 1) if old is None else Span(
        min(old.first_ms, ts_ms), max(old.last_ms, ts_ms), old.events + 1)


def _count(section: CorridorSection, event: AuditEvent) -> None:
    s = event.summary
    _widen(section.policies, s.policy_hash, event.ts_ms)
    for key_id in s.key_ids:
        _widen(section.keys, key_id, event.ts_ms)
    use = section.instruments.setdefault(s.instrument, InstrumentUse(s.instrument))
    use.events += 1
    use.legal_basis.add(s.legal_basis)
    if s.kind != "batch":
        return
    use.tally.add(s)
    section.totals.add(s)
    delivered = s.outcomes.get("delivered", 0)
    for protection, paths in s.protections.items():
        for path in paths:
            use.protections[protection][path] += delivered


def _chain_section(chain: ChainId, events: Sequence[AuditEvent]) -> ChainSection:
    """Offsets, counts and reconciliation of one chain's events (distinct, in seq order)."""
    out = ChainSection(chain, events=len(events))
    if not events:
        return out
    out.first_seq, out.last_seq = events[0].seq, events[-1].seq
    previous: AuditEvent | None = None
    for event in events:
        s = event.summary
        width = s.last_offset - s.first_offset + 1
        if s.kind == "gap":
            out.gaps.append((s.first_offset, s.last_offset))
            out.gap_offsets += width
        else:
            _merge_range(out.ranges, s.first_offset, s.last_offset)
            out.offsets += width
            records = sum(s.outcomes.values())
            out.records += records
            if records != width:
                out.mismatches.append(Mismatch(event.seq, s.first_offset, s.last_offset,
                                               records))
        if previous is not None:
            problem = _discontinuity(previous, event)
            if problem is not None:
                out.discontinuities.append(problem)
        previous = event
    return out


def _merge_range(ranges: list[tuple[int, int]], first: int, last: int) -> None:
    if ranges and ranges[-1][1] + 1 == first:
        ranges[-1] = (ranges[-1][0], last)
    else:
        ranges.append((first, last))


def _discontinuity(before: AuditEvent, after: AuditEvent) -> str | None:
    if after.seq != before.seq + 1:
        return (f"seq {before.seq} is followed by seq {after.seq} "
                f"(seq {before.seq + 1} to {after.seq - 1} not in the window's events)")
    expected = before.summary.last_offset + 1
    first = after.summary.first_offset
    if first > expected:
        return (f"seq {after.seq} starts at offset {first}: offsets {expected} to "
                f"{first - 1} are in no event")
    if first < expected:
        return (f"seq {after.seq} starts at offset {first}, inside seq {before.seq}'s "
                f"offsets (up to {expected - 1})")
    return None
