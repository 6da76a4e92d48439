"""Data subjects in a running corridor: the subject key, the volume ledger and the consent view.

A :class:`SubjectGate` is made by ``processor.wiring`` for a corridor one of whose datasets
names its subject, and called by the runner at three points (``processor.runner``):

- Each turn of the loop, :meth:`SubjectGate.refresh`: what arrived on both topics is
  applied (no wait), so the view stays fresh while the corridor is idle.
- Step 1, before each chunk, :meth:`SubjectGate.ready`: on the first call the ledger is
  rebuilt from the origin's ``<zone>.subjects`` (read to the end offsets seen at start,
  read_committed, by assignment) and the consent view starts from ``<zone>.consent``
  (``consent_view_rebuilding``: nothing is decided until it is as of its start). Then, each
  time: the ledger entries other processors wrote meanwhile are applied (the gate follows
  the topic); once a class is at 80% of a ``withhold-new-subjects`` ceiling, the ledger is
  read to its current end first. New consent records are applied; every ``REFRESH_S`` the
  consent topic's end offsets are asked at time T, and once everything below them is read
  the view is *as of* T. While the view is older than its bound (``consent.MAX_STALENESS_MS``)
  or has never caught up, the corridor pauses: nothing is decided, so nothing crosses
  (``consent_view_stale`` logged once, ``consent_view_fresh`` when it ends; /readyz fails).
  A pause longer than the consumer's ``max.poll.interval.ms`` (10 min) gives the
  partitions to another instance, as any stalled loop would.
  Then :meth:`SubjectGate.inputs` for the pipeline, and :meth:`SubjectGate.reserve` with its
  result: the chunk's delta counts toward the ceiling for the next chunks of the round.
- Step 2, :meth:`SubjectGate.records`: the round's ledger deltas as records of the origin's
  ledger topic, written with the side output and acknowledged before any destination commit.
- After step 2's acknowledgement, :meth:`SubjectGate.acknowledged`: the deltas are applied
  to the ledger state, the reservation cleared, the threshold alerts logged
  (``subjects_ceiling_near`` at 80%, ``subjects_ceiling_reached``) and counted.

Why this order, and what it guarantees: ``corridor.core.subjects`` (module docstring). A
round that is given up before step 2 (stopping) leaves its reservation in place: the
runner stops, and until then the count is only higher (the safe side).

Owns: the running ledger state and consent view, and when they are fresh enough. Does not
own: the decisions (``corridor.core.policy.subjects``), the reading
(``corridor.kafka.ledger``), the subject secret (``processor.resolve.subject_secret``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any, Protocol

from corridor.core import topics
from corridor.core.config import FieldClass, OnReach
from corridor.core.consent import MAX_STALENESS_MS, ConsentRecord, ConsentView
from corridor.core.crypto import SecretBytes
from corridor.core.errors import KafkaUnavailable
from corridor.core.model import OutMessage
from corridor.core.pipeline import BatchResult
from corridor.core.plan import CorridorPlan
from corridor.core.policy.subjects import SubjectInputs
from corridor.core.subjects import (
    LedgerState,
    ThresholdAlert,
    calendar_year,
    ledger_record,
    level,
    subject_id,
)
from corridor.kafka.io import Record
from corridor.kafka.ledger import Ends
from corridor.processor import retry
from corridor.processor.metrics import RunObserver

Log = Any  # a structlog bound logger
REFRESH_S = 1.0  # the consent topic's end offsets are asked at most this often
PAUSE_S = 0.2  # while paused, the view is looked at again this often
# The state of a step before anything was logged: reaching it again is not news.
QUIET = {"consent read": "origin_available"}
EVENTS = {"warning": "subjects_ceiling_near", "reached": "subjects_ceiling_reached"}


def consent_record(record: Record, key: SecretBytes) -> ConsentRecord | None:
    """A record of the consent topic with its raw key turned into the subject id; None when
    its key is not usable (empty or not UTF-8)."""
    try:
        raw = (record.key or b"").decode("utf-8")
    except UnicodeDecodeError:
        return None
    if not raw:
        return None
    return ConsentRecord(subject_id(raw, key), record.value, record.partition, record.offset,
                         record.timestamp_ms or 0)


class Feed(Protocol):
    """What the gate needs of ``kafka.ledger.TopicFeed`` (tests pass fakes)."""

    def poll(self, timeout_s: float = 0.5, max_records: int = 500) -> list[Record]: ...

    def end_offsets(self) -> Ends: ...

    def reached(self, ends: Ends) -> bool: ...

    def close(self) -> None: ...


class NoSubjects:
    """The gate of a corridor whose datasets name no subject: nothing to do."""

    def refresh(self, stop: threading.Event) -> None:
        pass

    def ready(self, stop: threading.Event) -> bool:
        return True

    def inputs(self) -> SubjectInputs | None:
        return None

    def reserve(self, result: BatchResult) -> None:
        pass

    def records(self, results: Iterable[BatchResult]) -> list[OutMessage]:
        return []

    def acknowledged(self, results: Iterable[BatchResult]) -> None:
        pass

    def close(self) -> None:
        pass


class SubjectGate:
    """One corridor's ledger state and consent view (module docstring). ``ledger_feed`` and
    ``consent_feed`` make the followers of the origin's topics (``consent_feed`` None: the
    corridor has no purposes); ``wall_ms`` is the record time (the view's T, the ledger's
    year), ``clock`` monotonic seconds (refresh cadence)."""

    def __init__(self, plan: CorridorPlan, key: SecretBytes,
                 classes: Mapping[str, frozenset[FieldClass]], *,
                 ledger_feed: Callable[[], Feed], consent_feed: Callable[[], Feed] | None,
                 log: Log, observer: RunObserver,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 clock: Callable[[], float] = time.monotonic,
                 bound_ms: int = MAX_STALENESS_MS) -> None:
        self.plan, self.key, self.classes = plan, key, classes
        self.log, self.observer = log, observer
        self.wall_ms, self.clock, self.bound_ms = wall_ms, clock, bound_ms
        self._make_ledger, self._make_consent = ledger_feed, consent_feed
        self.ledger, self.reserved = LedgerState(), LedgerState()
        self.view = ConsentView() if consent_feed is not None else None
        self._ledger: Feed | None = None
        self._consent: Feed | None = None
        self._asked: tuple[int, Ends] | None = None  # (T, end offsets at T) not yet reached
        self._asked_at = float("-inf")
        self._started = False
        self._state: dict[str, str] = {}
        self.ignored = 0  # consent records without a usable key

    # -- step 1 --------------------------------------------------------------------------

    def refresh(self, stop: threading.Event) -> None:
        """Each turn of the loop, records or not: started, and the ledger and consent
        records that arrived applied (without waiting), so the view stays fresh while the
        corridor is idle."""
        if not self._started and not self._start(stop):
            return
        assert self._ledger is not None
        self._apply_ledger(self._ledger.poll(0.0, 5000))
        if self.view is not None:
            self._refresh_consent()

    def ready(self, stop: threading.Event) -> bool:
        """Started, caught up with the others' ledger entries, the consent view fresh
        (waiting, paused, while it is not). False: *stop* was set first."""
        if not self._started and not self._start(stop):
            return False
        self._follow_ledger(stop)
        while self.view is not None:
            applied = self._refresh_consent()
            now = self.wall_ms()
            staleness = self.view.staleness_ms(now)
            if not self.view.stale(now, self.bound_ms):
                self._notify("consent_view_fresh", {"step": "consent", "staleness_ms": staleness,
                                                    "subjects": len(self.view)})
                break
            if staleness is None:  # rebuilding from the topic (start)
                self._notify("consent_view_rebuilding", {"step": "consent"})
            else:
                self._notify("consent_view_stale", {
                    "step": "consent", "staleness_ms": staleness, "bound_ms": self.bound_ms,
                    "action": "corridor paused: nothing is decided, nothing crosses"})
            self.observer.turned()
            if not applied and stop.wait(PAUSE_S):
                return False
            if stop.is_set():
                return False
        return True

    def inputs(self) -> SubjectInputs:
        """What the pipeline reads for the next chunk (after :meth:`ready`)."""
        return SubjectInputs(self.key, self.classes, self.ledger, self.view, self.reserved)

    def reserve(self, result: BatchResult) -> None:
        """A chunk was decided: its new subjects hold their place until written."""
        self.reserved.apply(result.ledger)

    # -- step 2 and after ----------------------------------------------------------------

    def records(self, results: Iterable[BatchResult]) -> list[OutMessage]:
        """The ledger records of a round, for the side output (step 2)."""
        topic, corridor = topics.subject_ledger(self.plan.origin), self.plan.name
        out = []
        for result in results:
            for entry in result.ledger:
                key, value = ledger_record(entry, corridor)
                out.append(OutMessage(topic, value, key))
        return out

    def acknowledged(self, results: Sequence[BatchResult]) -> None:
        """Step 2 was acknowledged: the deltas are counted, the alerts told."""
        entries = [e for r in results for e in r.ledger]
        self.ledger.apply(entries)
        self.reserved.clear()
        for alert in (a for r in results for a in r.alerts):
            self._alert(alert)
        self._gauges({(e.zone, e.year, e.field_class) for e in entries})

    def close(self) -> None:
        for feed in (self._ledger, self._consent):
            if feed is not None:
                feed.close()

    # -- inside ------------------------------------------------------------------------

    def _start(self, stop: threading.Event) -> bool:
        started = self.clock()
        if self._ledger is None:
            self._ledger = self._retrying(self._make_ledger, "open ledger", stop)
        if not self._catch_up(self._ledger, self._apply_ledger, stop):
            return False
        if self._make_consent is not None and self._consent is None:
            self._consent = self._retrying(self._make_consent, "open consent", stop)
        self._started = True
        year = calendar_year(self.wall_ms())
        self.log.info("subjects_ready", zone=self.plan.origin, year=year,
                      counts={f"{z}/{y}/{c.value}": n for (z, y, c), n in
                              self.ledger.counts().items() if z == self.plan.origin},
                      seconds=round(self.clock() - started, 3))
        keys = {(self.plan.origin, year, c) for c in (FieldClass.PERSONAL, FieldClass.SENSITIVE)}
        self._gauges(keys, announce=True)
        return True

    def _catch_up(self, feed: Feed, apply: Callable[[list[Record]], None],
                  stop: threading.Event) -> bool:
        """Read *feed* until everything below its end offsets (asked now) is applied."""
        ends = self._retrying(feed.end_offsets, "end offsets", stop)
        while not feed.reached(ends):
            if stop.is_set():
                return False
            self.observer.turned()
            apply(self._retrying(lambda: feed.poll(0.2, 5000), "read", stop))
        return True

    def _follow_ledger(self, stop: threading.Event) -> None:
        assert self._ledger is not None
        self._apply_ledger(self._ledger.poll(0.0, 5000))
        if self._near_ceiling():
            self._catch_up(self._ledger, self._apply_ledger, stop)

    def _near_ceiling(self) -> bool:
        limits = self.plan.thresholds
        if limits is None or limits.on_reach is not OnReach.WITHHOLD_NEW_SUBJECTS:
            return False
        year = calendar_year(self.wall_ms())
        for field_class in (FieldClass.PERSONAL, FieldClass.SENSITIVE):
            ceiling = limits.ceiling(field_class)
            count = self.ledger.count(self.plan.origin, year, field_class)
            if ceiling is not None and level(count, ceiling) != "ok":
                return True
        return False

    def _apply_ledger(self, records: list[Record]) -> None:
        # A record that is not a ledger entry is ignored (`subjects count` reports them).
        self.ledger.apply_keys(r.key for r in records)

    def _apply_consent(self, records: list[Record]) -> None:
        assert self.view is not None
        for record in records:
            consent = consent_record(record, self.key)
            if consent is None:
                self.ignored += 1
                continue
            withdrew = self.view.apply(consent)
            ours = sorted(withdrew & set(self.plan.purposes))
            if ours and self.view.as_of_ms is not None:  # not while rebuilding
                self.log.info("consent_withdrawn", partition=record.partition,
                              offset=record.offset, purposes=ours)

    def _refresh_consent(self) -> int:
        """New consent records (how many); the end offsets asked every REFRESH_S; the view
        moved to T once everything below the offsets asked at T is applied. A failure to
        read leaves the view where it is (it grows stale: the corridor pauses)."""
        assert self._consent is not None and self.view is not None
        records: list[Record] = []
        try:
            records = self._consent.poll(0.0, 5000)
            self._apply_consent(records)
            if self._asked is not None and self._consent.reached(self._asked[1]):
                self.view.caught_up(self._asked[0])
                self._asked = None
            if self._asked is None and self.clock() - self._asked_at >= REFRESH_S:
                self._asked_at = self.clock()
                as_of = self.wall_ms()
                self._asked = (as_of, self._consent.end_offsets())
            self._notify("origin_available", {"step": "consent read"})
        except KafkaUnavailable as exc:
            self._notify("origin_unavailable", {"step": "consent read", "error": str(exc)})
        self.observer.consent_staleness(self.view.staleness_ms(self.wall_ms()))
        return len(records)

    def _alert(self, alert: ThresholdAlert) -> None:
        event = EVENTS.get(alert.level)
        if event is None:
            return
        on_reach = self.plan.thresholds.on_reach.value if self.plan.thresholds else None
        self.log.warning(event, zone=alert.zone, year=alert.year,
                         **{"class": alert.field_class.value}, subjects=alert.count,
                         ceiling=alert.ceiling, on_reach=on_reach)
        self.observer.subject_alert(alert.zone, alert.field_class.value, alert.level)

    def _gauges(self, keys: Iterable[tuple[str, int, FieldClass]],
                announce: bool = False) -> None:
        limits = self.plan.thresholds
        for zone, year, field_class in keys:
            count = self.ledger.count(zone, year, field_class)
            ceiling = limits.ceiling(field_class) if limits is not None else None
            self.observer.subjects(zone, year, field_class.value, count, ceiling)
            if announce and ceiling is not None and level(count, ceiling) != "ok":
                self._alert(ThresholdAlert(zone, year, field_class, count, ceiling,
                                           level(count, ceiling)))

    def _retrying(self, fn: Callable[[], Any], step: str, stop: threading.Event) -> Any:
        return retry.retrying(fn, event="origin_unavailable", step=f"subjects: {step}",
                              notify=self._notify, stop=stop, clock=self.clock)

    def _notify(self, event: str, fields: dict[str, Any]) -> None:
        """Log a state change once per step (repeats of the same state are not logged)."""
        step = str(fields.get("step", ""))
        if self._state.get(step, QUIET.get(step, "")) == event:
            return
        self._state[step] = event
        self.observer.event(event, fields)
        warn = "unavailable" in event or event == "consent_view_stale"
        (self.log.warning if warn else self.log.info)(event, **fields)
