"""Consent: the origin zone's consent topic folded into a view, and the per-row check.

**Record** (topic ``<zone>.consent`` in the origin zone, compacted; written by parks or a
consent service):

- key: the subject's *raw* id as UTF-8 text, the text of the dataset's ``subject`` field (a
  string as it is, an int or long as decimal digits). Raw, because the writers do not hold
  the zone's subject secret; the topic never leaves the origin. The processor turns each
  key into the subject id (``corridor.core.subjects.subject_ids``) and keeps only that.
- value: the subject's whole consent state (a compacted topic keeps one record per key)::

      {"v": 1, "purposes": {"order-fulfilment": {"given": 1735689600000, "withdrawn": null},
                            "marketing": {"given": 1735689600000, "withdrawn": 1738368000000}}}

  Times are Unix milliseconds (UTC). A purpose is consented when ``given`` is set and it was
  not withdrawn at or after it (``withdrawn < given``: given again after a withdrawal). Other
  top-level keys are ignored (a writer may add its name or a reference).
- a null value (tombstone): the subject has no consent record any more.

**Latest wins**: per subject, the record at the highest offset (Kafka keeps one key in one
partition); a subject seen in two partitions (the topic was repartitioned) takes the record
with the later record timestamp, then the higher partition. The times inside values never
order records: writers' clocks differ. A malformed latest record replaces the one before
it and fails closed (``consent_invalid``).

**Check**: :meth:`ConsentView.check` gives, for each row of a batch on a corridor with
``purposes``, the reason it is withheld, or nothing: ``subject_missing`` (null subject),
``consent_missing`` (no record, or a tombstone: a corridor with purposes requires consent;
this is decided, not configurable), ``consent_invalid`` (the latest record is malformed),
else for the first of the corridor's purposes, in its order, not consented:
``consent_withdrawn: <purpose>`` (given, then withdrawn) or ``consent_missing: <purpose>``
(never given).

**Staleness**: the view is *as of* T when every consent record written before T is in it:
the processor reads the topic's end offsets at T, folds up to them, then calls
:meth:`ConsentView.caught_up` with T. ``staleness(now) = now - T``. The processor refreshes at
least every ``bound / 2`` and decides no batch while :meth:`ConsentView.stale` (it pauses the
corridor): so a withdrawal written at W holds back every batch decided after W + bound
(the corridor's ``consent_staleness_seconds``, default :data:`MAX_STALENESS_MS`). A view
that never caught up (just started, rebuilding from the topic) is stale.

**Withdrawals** (``corridor consent follow --on-withdraw erase``): :meth:`ConsentView.apply`
returns the purposes a record newly withdrew, for a running follower;
:meth:`ConsentView.withdrawals` gives every subject whose latest record withdraws a purpose,
for a start (compaction may have removed the record that gave it). A
:class:`WithdrawalQueue` holds each one until a bound has passed since it was seen (then every
processor's view has it, so none of the subject's records crosses any more) and gives it
back only if its purposes are still withdrawn. The erase itself is elsewhere
(``corridor.commands.consent``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

from corridor.core.errors import ConsentRecordError

CONSENT_VERSION = 1
MAX_STALENESS_MS = 30_000
SUBJECT_MISSING = "subject_missing"
CONSENT_MISSING = "consent_missing"
CONSENT_INVALID = "consent_invalid"
CONSENT_WITHDRAWN = "consent_withdrawn"
Reasons = dict[int, str]


@dataclass(frozen=True)
class PurposeConsent:
    """One purpose's consent: when it was given and withdrawn (Unix ms, None: never)."""

    given: int | None
    withdrawn: int | None = None

    @property
    def granted(self) -> bool:
        return self.given is not None and (self.withdrawn is None or self.withdrawn < self.given)


@dataclass(frozen=True)
class Consent:
    """A subject's consent state: purpose -> PurposeConsent."""

    purposes: Mapping[str, PurposeConsent]
    # The purposes granted now, computed once: the check runs once per row of a batch.
    granted: frozenset[str] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "granted",
                           frozenset(p for p, c in self.purposes.items() if c.granted))

    def reason(self, purposes: Sequence[str]) -> str | None:
        """Why these purposes are not all consented (the first one's reason), or None."""
        if self.granted.issuperset(purposes):
            return None
        for purpose in purposes:
            state = self.purposes.get(purpose)
            if state is not None and state.granted:
                continue
            if state is not None and state.withdrawn is not None:
                return f"{CONSENT_WITHDRAWN}: {purpose}"
            return f"{CONSENT_MISSING}: {purpose}"
        return None

    def to_json(self) -> bytes:
        """The record value (what a consent service writes)."""
        purposes = {p: {"given": c.given, "withdrawn": c.withdrawn}
                    for p, c in sorted(self.purposes.items())}
        doc = {"v": CONSENT_VERSION, "purposes": purposes}
        return json.dumps(doc, separators=(",", ":")).encode()


def decode_consent(value: bytes) -> Consent:
    """Parse a consent record value; ConsentRecordError naming what is wrong."""
    try:
        doc = json.loads(value)
    except (ValueError, UnicodeDecodeError):
        raise ConsentRecordError("not JSON") from None
    if not isinstance(doc, dict) or doc.get("v") != CONSENT_VERSION:
        raise ConsentRecordError(f"expected an object with v={CONSENT_VERSION}")
    purposes = doc.get("purposes")
    if not isinstance(purposes, dict):
        raise ConsentRecordError("purposes must be an object of purpose -> {given, withdrawn}")
    out: dict[str, PurposeConsent] = {}
    for name, state in purposes.items():
        if not isinstance(state, dict) or not set(state) <= {"given", "withdrawn"}:
            raise ConsentRecordError(f"purpose {name!r}: expected {{given, withdrawn}}")
        out[name] = PurposeConsent(_time(state.get("given"), name), _time(state.get("withdrawn"),
                                                                         name))
    return Consent(MappingProxyType(out))


def _time(value: Any, purpose: str) -> int | None:
    if value is None or (isinstance(value, int) and not isinstance(value, bool) and value >= 0):
        return value
    raise ConsentRecordError(f"purpose {purpose!r}: times are Unix milliseconds or null")


@dataclass(frozen=True)
class ConsentRecord:
    """One record of the consent topic, its key already turned into the subject id."""

    subject: str
    value: bytes | None
    partition: int
    offset: int
    timestamp_ms: int


@dataclass(frozen=True)
class _Held:
    partition: int
    offset: int
    timestamp_ms: int
    consent: Consent | None  # None: tombstone
    invalid: str | None = None  # why the latest record is malformed

    def older_than(self, record: ConsentRecord) -> bool:
        if record.partition == self.partition:
            return record.offset > self.offset
        return (record.timestamp_ms, record.partition) > (self.timestamp_ms, self.partition)


class ConsentView:
    """The consent topic folded (latest record per subject); see the module docstring."""

    __slots__ = ("_held", "as_of_ms")

    def __init__(self) -> None:
        self._held: dict[str, _Held] = {}
        self.as_of_ms: int | None = None

    def apply(self, record: ConsentRecord) -> frozenset[str]:
        """Fold one record (any order: an older one than the subject's latest is ignored).
        Returns the purposes it newly withdrew (granted before, withdrawn now)."""
        held = self._held.get(record.subject)
        if held is not None and not held.older_than(record):
            return frozenset()
        consent, invalid = None, None
        if record.value is not None:
            try:
                consent = decode_consent(record.value)
            except ConsentRecordError as exc:
                invalid = exc.reason
        self._held[record.subject] = _Held(record.partition, record.offset, record.timestamp_ms,
                                           consent, invalid)
        before = held.consent.purposes if held is not None and held.consent is not None else {}
        after = consent.purposes if consent is not None else {}
        return frozenset(p for p, c in after.items() if c.withdrawn is not None and not c.granted
                         and p in before and before[p].granted)

    def caught_up(self, as_of_ms: int) -> None:
        """Every record written before *as_of_ms* has been applied (see staleness)."""
        self.as_of_ms = max(as_of_ms, self.as_of_ms or as_of_ms)

    def staleness_ms(self, now_ms: int) -> int | None:
        """How old the view is at *now_ms*; None before its first catch-up."""
        return None if self.as_of_ms is None else max(0, now_ms - self.as_of_ms)

    def stale(self, now_ms: int, bound_ms: int = MAX_STALENESS_MS) -> bool:
        """True when no batch may be decided with this view (older than *bound_ms*, or never
        caught up)."""
        staleness = self.staleness_ms(now_ms)
        return staleness is None or staleness > bound_ms

    def consent_of(self, subject: str) -> Consent | None:
        held = self._held.get(subject)
        return held.consent if held is not None else None

    def reason(self, subject: str | None, purposes: Sequence[str]) -> str | None:
        """Why a record of *subject* may not cross for *purposes*, or None."""
        if subject is None:
            return SUBJECT_MISSING
        held = self._held.get(subject)
        if held is not None and held.invalid is not None:
            return CONSENT_INVALID
        if held is None or held.consent is None:
            return CONSENT_MISSING
        return held.consent.reason(purposes)

    def check(self, subjects: Sequence[str | None], purposes: Sequence[str],
              skip: Collection[int] = ()) -> Reasons:
        """Rows withheld for consent (row -> reason); rows in *skip* are not looked at.
        No purposes: nothing is withheld."""
        if not purposes:
            return {}
        cache: dict[str | None, str | None] = {}
        out: Reasons = {}
        for row, subject in enumerate(subjects):
            if row in skip:
                continue
            if subject not in cache:
                cache[subject] = self.reason(subject, purposes)
            reason = cache[subject]
            if reason is not None:
                out[row] = reason
        return out

    def withdrawn(self, purposes: Collection[str]) -> Iterator[str]:
        """Subjects whose latest record withdraws one of *purposes* (sorted)."""
        for subject, _ in self.withdrawals(purposes):
            yield subject

    def withdrawals(self, purposes: Collection[str]) -> Iterator[tuple[str, frozenset[str]]]:
        """(subject, which of *purposes* its latest record withdraws), sorted by subject."""
        for subject in sorted(self._held):
            found = self.withdrawn_of(subject, purposes)
            if found:
                yield subject, found

    def withdrawn_of(self, subject: str, purposes: Collection[str]) -> frozenset[str]:
        """Which of *purposes* the subject's latest record withdraws (given, then withdrawn)."""
        held = self._held.get(subject)
        consent = held.consent if held is not None else None
        if consent is None:
            return frozenset()
        return frozenset(p for p in purposes if (c := consent.purposes.get(p)) is not None
                         and c.withdrawn is not None and not c.granted)

    def __len__(self) -> int:
        return len(self._held)


@dataclass(frozen=True)
class Withdrawal:
    """A subject's withdrawal of *purposes*, first seen at *seen_ms* (the follower's clock)."""

    subject: str
    purposes: frozenset[str]
    seen_ms: int


class WithdrawalQueue:
    """Withdrawals waiting for every processor's consent view to hold them: each is due
    *bound_ms* after it was seen (see the module docstring)."""

    def __init__(self, bound_ms: int) -> None:
        self.bound_ms = bound_ms
        self._waiting: dict[str, Withdrawal] = {}

    def seen(self, subject: str, purposes: Collection[str], now_ms: int) -> None:
        """The subject withdrew *purposes*; a subject already waiting keeps its first time."""
        if not purposes:
            return
        held = self._waiting.get(subject)
        if held is None:
            self._waiting[subject] = Withdrawal(subject, frozenset(purposes), now_ms)
        else:
            self._waiting[subject] = Withdrawal(subject, held.purposes | frozenset(purposes),
                                                held.seen_ms)

    def due(self, now_ms: int, view: ConsentView) -> list[Withdrawal]:
        """The withdrawals whose bound has passed, taken off the queue, with the purposes
        *view* still has withdrawn (one given again meanwhile is dropped), by subject."""
        out = []
        for subject, w in sorted(self._waiting.items()):
            if now_ms - w.seen_ms < self.bound_ms:
                continue
            del self._waiting[subject]
            still = view.withdrawn_of(subject, w.purposes)
            if still:
                out.append(Withdrawal(subject, still, w.seen_ms))
        return out

    def next_due_ms(self) -> int | None:
        """When the earliest waiting withdrawal is due; None: none waits."""
        return min((w.seen_ms + self.bound_ms for w in self._waiting.values()), default=None)

    def __len__(self) -> int:
        return len(self._waiting)
