"""The accounting invariant of docs/DESIGN.md section 9, checked on values (pure: no Kafka).

Every source record below the committed position of its (topic, partition)
must appear exactly once in exactly one of delivered, withheld or quarantined, or
be ``released``: held (withheld or quarantined) first, then delivered once by
`corridor held release`, which wrote a release marker for its lineage
(``core.release``). A released record counts once, as released (by the outcome
it was held under), not as held nor as delivered.

What counts as a violation (``VerifyReport.ok`` is False):

- ``missing``: a source record below the committed position with no outcome (lost);
- ``delivered_duplicates``: a lineage delivered twice (the corridor topics are
  read at read_committed, so a duplicate there is a real double delivery);
- ``conflicts``: a lineage in two different outcomes (held and delivered without a
  release marker, or withheld and quarantined);
- ``unknown``: an outcome whose lineage is no source record (nor one that
  retention already removed from the source); a release marker whose lineage was
  never held, or whose record was never delivered.

What is counted but is not a violation:

- ``side_rewrites``: the same lineage written twice to withheld or quarantine
  (those topics are compacted and a replay rewrites the same key);
- ``ahead``: outcomes at or above the committed position (written by a batch
  whose transaction had not committed when the snapshot was taken, or side
  output flushed before a crash: a replay rewrites them);
- ``pending``: source records at or above the committed position;
- ``expired``: outcomes below the source's log start (retention removed the source record);
- ``gaps``: source ranges lost to retention before the corridor read them:
  the processor's audit gap events, and a source whose log start is above 0
  with no outcome and no gap event below it (kind "unrecorded").
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from corridor.core.model import Lineage, Outcome

Partition = tuple[str, int]


@dataclass(frozen=True, slots=True, order=True)
class Gap:
    """Source offsets [start, end) of one partition that no outcome can account for."""

    topic: str
    partition: int
    start: int
    end: int
    kind: str = "recorded"  # "recorded" (an audit gap event) or "unrecorded"


@dataclass(frozen=True)
class VerifyReport:
    """Outcome of one check. Counts are of distinct lineages below the committed position."""

    source: int
    pending: int
    delivered: int
    withheld: int
    quarantined: int
    withheld_by_reason: Mapping[str, int]
    quarantined_by_reason: Mapping[str, int]
    missing: tuple[Lineage, ...]
    delivered_duplicates: tuple[Lineage, ...]
    conflicts: tuple[Lineage, ...]
    unknown: tuple[str, ...]
    side_rewrites: int = 0
    ahead: int = 0
    expired: int = 0
    gaps: tuple[Gap, ...] = field(default_factory=tuple)
    released: int = 0
    released_by_previous: Mapping[str, int] = field(default_factory=dict)  # held as -> count

    @property
    def ok(self) -> bool:
        # A gap is records lost before they crossed (retention at the origin): not the
        # corridor's doing, but "nothing lost" does not hold, and the operator must know.
        return not (self.missing or self.delivered_duplicates or self.conflicts or self.unknown
                    or self.gaps)

    @property
    def accounted(self) -> int:
        return self.delivered + self.withheld + self.quarantined + self.released

    def violations(self) -> int:
        return (len(self.missing) + len(self.delivered_duplicates) + len(self.conflicts)
                + len(self.unknown) + len(self.gaps))


def _parse(text: str) -> Lineage | None:
    try:
        return Lineage.parse(text)
    except ValueError:
        return None


def _as_lineage(item: Lineage | tuple[str, int, int]) -> Lineage:
    return item if isinstance(item, Lineage) else Lineage(item[0], int(item[1]), int(item[2]))


@dataclass
class _Outcomes:
    """Each lineage's outcomes, counts per outcome, and reasons."""

    seen: dict[Lineage, set[Outcome]] = field(default_factory=dict)
    delivered_count: Counter[Lineage] = field(default_factory=Counter)
    reasons: dict[tuple[Outcome, Lineage], str] = field(default_factory=dict)
    rewrites: int = 0
    malformed: list[str] = field(default_factory=list)

    def add(self, outcome: Outcome, text: str, reason: str | None = None) -> None:
        lineage = _parse(text)
        if lineage is None:
            self.malformed.append(text)
            return
        outcomes = self.seen.setdefault(lineage, set())
        if outcome is Outcome.DELIVERED:
            self.delivered_count[lineage] += 1
        elif outcome in outcomes:
            self.rewrites += 1
        outcomes.add(outcome)
        if reason is not None:
            self.reasons[(outcome, lineage)] = reason  # compaction keeps the last one


def _collect(delivered: Iterable[str], withheld: Iterable[tuple[str, str]],
             quarantined: Iterable[tuple[str, str]]) -> _Outcomes:
    found = _Outcomes()
    for text in delivered:
        found.add(Outcome.DELIVERED, text)
    for text, reason in withheld:
        found.add(Outcome.WITHHELD, text, reason)
    for text, reason in quarantined:
        found.add(Outcome.QUARANTINED, text, reason)
    return found


def verify(
    source: Iterable[Lineage | tuple[str, int, int]],
    committed: Mapping[Partition, int],
    delivered: Iterable[str],
    withheld: Iterable[tuple[str, str]] = (),
    quarantined: Iterable[tuple[str, str]] = (),
    gaps: Iterable[Gap] = (),
    log_start: Mapping[Partition, int] | None = None,
    released: Iterable[str] = (),
) -> VerifyReport:
    """Check the invariant.

    ``source``: every record present in the source topics (read at read_committed);
    ``committed``: next offset to read per (topic, partition) (absent: nothing committed);
    ``delivered``: the ``corridor-lineage`` of every delivered record, one per record,
    duplicates included; ``withheld`` / ``quarantined``: (lineage key, reason) of every
    record of those topics; ``gaps``: recorded gap events; ``log_start``: first offset
    still in each source partition (defaults to 0); ``released``: the lineage of every
    release marker.
    """
    starts = dict(log_start or {})
    records = {_as_lineage(s) for s in source}
    found = _collect(delivered, withheld, quarantined)
    marked = {ln for ln in map(_parse, released) if ln is not None}
    unknown = sorted(found.malformed)
    unknown += sorted(f"{ln} (released, but not held and delivered)" for ln in marked
                      if not _held_then_delivered(found.seen.get(ln, set())))

    def below(ln: Lineage) -> bool:
        return ln.offset < committed.get((ln.topic, ln.partition), 0)

    checked = {ln for ln in records if below(ln)}
    counts: Counter[Outcome] = Counter()
    previous: Counter[str] = Counter()
    by_reason: dict[Outcome, Counter[str]] = {Outcome.WITHHELD: Counter(),
                                              Outcome.QUARANTINED: Counter()}
    conflicts, ahead, expired = [], 0, 0
    for lineage, outcomes in found.seen.items():
        if lineage not in records:
            if lineage.offset < starts.get((lineage.topic, lineage.partition), 0):
                expired += 1
            else:
                unknown.append(str(lineage))
            continue
        if not below(lineage):
            ahead += 1
            continue
        if lineage in marked and _held_then_delivered(outcomes):
            # held, then released: one record, one final outcome
            previous.update(o.value for o in outcomes if o is not Outcome.DELIVERED)
            continue
        if len(outcomes) > 1:
            conflicts.append(lineage)
        for outcome in outcomes:
            counts[outcome] += 1
            if outcome is not Outcome.DELIVERED:
                by_reason[outcome][found.reasons.get((outcome, lineage), "")] += 1
    return VerifyReport(
        source=len(checked),
        pending=len(records) - len(checked),
        delivered=counts[Outcome.DELIVERED],
        withheld=counts[Outcome.WITHHELD],
        quarantined=counts[Outcome.QUARANTINED],
        withheld_by_reason=dict(by_reason[Outcome.WITHHELD].most_common()),
        quarantined_by_reason=dict(by_reason[Outcome.QUARANTINED].most_common()),
        missing=tuple(sorted(checked - found.seen.keys())),
        delivered_duplicates=tuple(sorted(ln for ln, n in found.delivered_count.items()
                                          if n > 1 and ln in records and below(ln))),
        conflicts=tuple(sorted(conflicts)),
        unknown=tuple(sorted(unknown)),
        side_rewrites=found.rewrites,
        ahead=ahead,
        expired=expired,
        gaps=_gaps(gaps, starts, found.seen.keys()),
        released=sum(previous.values()),
        released_by_previous=dict(previous.most_common()),
    )


def _held_then_delivered(outcomes: set[Outcome]) -> bool:
    """One held outcome and delivered: what a release leaves."""
    return len(outcomes) == 2 and Outcome.DELIVERED in outcomes


def _gaps(recorded: Iterable[Gap], starts: Mapping[Partition, int],
          outcomes: Iterable[Lineage]) -> tuple[Gap, ...]:
    """Recorded gaps, plus a source log start above 0 that nothing explains."""
    out = set(recorded)
    lowest: dict[Partition, int] = {}
    for ln in outcomes:
        key = (ln.topic, ln.partition)
        lowest[key] = min(ln.offset, lowest.get(key, ln.offset))
    for (topic, partition), start in starts.items():
        if start <= 0:
            continue
        explained = any(g.topic == topic and g.partition == partition and g.start < start
                        for g in out)
        if not explained and lowest.get((topic, partition), start) >= start:
            out.add(Gap(topic, partition, 0, start, "unrecorded"))
    return tuple(sorted(out))
