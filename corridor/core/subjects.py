"""Data subjects: the subject id, and the origin zone's yearly volume ledger, as values.

**Subject id.** ``HMAC-SHA256(subject key, raw id)``, first 15 bytes, base64url: the
20-character token of ``corridor.core.policy.values`` (that kernel, under a key of its own).
The subject key is HKDF-SHA256 of the origin zone's subject secret (named
:func:`subject_secret_name`), with the zone in the info: one id per person per origin zone.
The raw id is the text of the dataset's ``subject`` field: a string's UTF-8, an int or
long's decimal digits (so ``42`` and ``"42"`` are one person, and a consent record keyed by
the text ``42`` finds them). A null subject has no id (null).

Collisions: 15 bytes are 120 bits. Among n subjects the chance that two share an id is
at most n²/2¹²¹: for 1,000,000 subjects 10¹²/2.7·10³⁶ ≈ 4·10⁻²⁵; for 10⁹, 4·10⁻¹⁹. A
collision could only make the ledger count two people as one; it never lets data cross.

**Ledger.** Per origin zone and calendar year (UTC, of the batch's processing time:
:func:`calendar_year`), the distinct subjects whose personal data crossed (class
``personal``: a personal or sensitive field or record key crossed in any form but dropped),
and separately those whose sensitive data crossed (``sensitive``). An entry also names the
destination zone it reached, for erasure (:meth:`LedgerState.destinations_of`); the count is
of distinct subjects whatever the destination.

:func:`admit` decides one batch (one dataset) against a :class:`LedgerState` without
changing it, and returns the rows it withholds and the ledger *delta* (entries not yet in
the state). It is a function of the state and of the *set* of subjects in the batch:

- a subject already counted (this zone, year and class) always crosses;
- new subjects are admitted in subject-id order (not arrival order, so a replayed batch
  admits exactly the same ones whatever its row order) while each of their classes with a
  ceiling and ``on_reach: withhold-new-subjects`` has room; the others' rows are withheld
  ``volume_threshold: ...``; with ``warn`` (or no ceiling) everyone crosses;
- a row without a subject is withheld ``subject_missing`` (it could not be counted);
- a class crossing 80% of its ceiling, or reaching it, gives a :class:`ThresholdAlert` (once:
  on the batch where the level changes).

**Where and when** (``corridor.processor.subjects``): the ledger lives in the ORIGIN zone
(topic ``topics.subject_ledger(origin)``, compacted): the subject id never leaves the origin.
The processor writes a batch's delta (:func:`ledger_record`) with the batch's side output
(runner step 2, acknowledged before the destination commit of step 3) and applies it to its
state right after that acknowledgement; on start it rebuilds the state from the topic
(read_committed), and it follows the topic while it runs (entries of other processors).
So a subject is counted no later than the batch that crosses it commits. After a crash
between steps 2 and 3 the replay processes the same records; the subject, now known,
crosses, and its key is rewritten (the key is the whole entry; :meth:`LedgerState.apply` of
entries already there changes nothing): the count is the distinct subjects that crossed.
The only over-count is a subject whose retry is then withheld for another reason in between
(consent withdrawn, instrument expired): over, never under, the safe side of a ceiling.

The ceiling is exact with one admitting processor per origin zone. Within one processor a
round prepares several chunks before step 2: each chunk is admitted against the state plus
the deltas already prepared (*reserved*), so the round cannot pass the ceiling either.
Several processors admitting for one zone (instances of a corridor, corridors out of the
zone) each see the others' entries only once written and read back; each re-reads the
ledger to its end before admitting once a class is at 80% of its ceiling, so each admits at
most one round of new subjects (its own in-flight chunks) beyond what the others
counted: the overshoot is at most (processors - 1) x (new subjects in one round).
Ledger records are never tombstones: only the processor's principal may write the topic.
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Collection, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from corridor.core.config import (
    Dataset,
    FieldClass,
    KeyTreatment,
    OnReach,
    Thresholds,
    Transform,
)
from corridor.core.crypto import SecretBytes
from corridor.core.policy.values import pseudonym, pseudonymize_column

COUNTED = (FieldClass.PERSONAL, FieldClass.SENSITIVE)
SUBJECT_MISSING = "subject_missing"
VOLUME_THRESHOLD = "volume_threshold"
LEDGER_VERSION = 1
_SUBJECT_INFO = b"corridor subject id v1\0"
_SEP = "|"
_CLASSES = {c.value: c for c in COUNTED}
Reasons = dict[int, str]
Level = Literal["ok", "warning", "reached"]


def subject_secret_name(zone: str) -> str:
    """Name of the origin zone's subject secret (resolved beside its pseudonym secrets)."""
    return f"{zone}.subjects"


def subject_key(zone: str, secret: SecretBytes | bytes) -> SecretBytes:
    """The zone's subject-id key: HKDF-SHA256 of its secret, the zone in the info."""
    material = secret.reveal() if isinstance(secret, SecretBytes) else bytes(secret)
    return SecretBytes(HKDF(SHA256(), 32, None, _SUBJECT_INFO + zone.encode()).derive(material))


def subject_ids(values: pa.Array | pa.ChunkedArray, key: SecretBytes) -> pa.Array:
    """The subject id (``pa.string()``) of every value of a string, int or long column; nulls
    stay null. Equal raw ids (an int and its decimal text included) give equal ids."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if pa.types.is_integer(values.type):
        values = pc.cast(values, pa.string())
    return pseudonymize_column(values, key.reveal())


def subject_id(raw: str | int, key: SecretBytes) -> str:
    """The subject id of one raw id (the per-value reference of :func:`subject_ids`)."""
    return pseudonym(str(raw).encode("utf-8"), key.reveal())


def calendar_year(now_ms: int) -> int:
    """The UTC calendar year of *now_ms* (Unix milliseconds): the ledger's year."""
    return dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).year


def crossing_classes(
    dataset: Dataset, transforms: Mapping[str, Transform], key: KeyTreatment
) -> frozenset[FieldClass]:
    """The ledger classes a record of *dataset* adds its subject to on a corridor with these
    transforms and key treatment: ``personal`` when a personal or sensitive field (not dropped,
    nor inside a dropped record) or record key (not dropped) crosses, plus ``sensitive`` when a
    sensitive one does."""
    dropped = [p for p, t in transforms.items() if t is Transform.DROP]
    crossing = {c for p, c in dataset.fields.items()
                if not any(p == d or p.startswith(d + ".") for d in dropped)}
    if key is not KeyTreatment.DROP:
        crossing.add(dataset.key_class)
    out = {FieldClass.PERSONAL} if crossing & set(COUNTED) else set()
    if FieldClass.SENSITIVE in crossing:
        out.add(FieldClass.SENSITIVE)
    return frozenset(out)


@dataclass(frozen=True, order=True)
class LedgerEntry:
    """One subject of one origin zone, year and class, reached one destination zone."""

    zone: str
    year: int
    field_class: FieldClass
    destination: str
    subject: str

    @property
    def record_key(self) -> bytes:
        """``zone|year|class|destination|subject``: a replay rewrites the same key."""
        return _SEP.join((self.zone, str(self.year), self.field_class.value, self.destination,
                          self.subject)).encode()

    @classmethod
    def from_record_key(cls, key: bytes) -> LedgerEntry:
        """Parse a ledger record key; ValueError naming what is wrong."""
        parts = key.decode("utf-8").split(_SEP)
        if len(parts) != 5 or not parts[1].isdigit() or not all(parts):
            raise ValueError(f"not a ledger key (zone|year|class|destination|subject): {key!r}")
        field_class = FieldClass(parts[2])
        if field_class not in COUNTED:
            raise ValueError(f"ledger class must be personal or sensitive, got {parts[2]!r}")
        return cls(parts[0], int(parts[1]), field_class, parts[3], parts[4])


def fold_ledger(keys: Iterable[bytes | None]) -> tuple[LedgerState, int]:
    """The ledger folded from its records' keys, and how many records were not ledger
    entries (ignored)."""
    state = LedgerState()
    ignored = state.apply_keys(keys)
    return state, ignored


def ledger_record(entry: LedgerEntry, corridor: str) -> tuple[bytes, bytes]:
    """The compacted ledger topic's record of *entry* (key, value): the value names the
    corridor that first carried it there (deterministic: a replay writes the same bytes)."""
    value = json.dumps({"v": LEDGER_VERSION, "corridor": corridor}, separators=(",", ":"))
    return entry.record_key, value.encode()


class LedgerState:
    """The ledger's entries, folded. :meth:`apply` is idempotent and order-insensitive (a set
    union); :func:`admit` reads it and never changes it."""

    __slots__ = ("_known",)

    def __init__(self, entries: Iterable[LedgerEntry] = ()) -> None:
        # (zone, year, class) -> subject -> destinations reached (one frozenset per set seen).
        self._known: dict[tuple[str, int, FieldClass], dict[str, frozenset[str]]] = {}
        self.apply(entries)

    def apply(self, entries: Iterable[LedgerEntry]) -> None:
        """Add *entries* (a committed delta, or records read back); repeats change nothing."""
        interned: dict[frozenset[str], frozenset[str]] = {}
        for e in entries:
            subjects = self._known.setdefault((e.zone, e.year, e.field_class), {})
            reached = subjects.get(e.subject, frozenset()) | {e.destination}
            subjects[e.subject] = interned.setdefault(reached, reached)

    def apply_keys(self, keys: Iterable[bytes | None]) -> int:
        """:meth:`apply` of ledger record keys, parsed as :meth:`LedgerEntry.from_record_key`
        does without building entries (a rebuild reads a million of them); returns how many
        keys were not ledger entries (ignored)."""
        ignored = 0
        interned: dict[frozenset[str], frozenset[str]] = {}
        for key in keys:
            try:
                parts = (key or b"").decode("utf-8").split(_SEP)
            except UnicodeDecodeError:
                parts = []
            field_class = _CLASSES.get(parts[2]) if len(parts) == 5 else None
            if field_class is None or not parts[1].isdigit() or "" in parts:
                ignored += 1
                continue
            subjects = self._known.setdefault((parts[0], int(parts[1]), field_class), {})
            before, destination = subjects.get(parts[4]), parts[3]
            if before is None or destination not in before:
                reached = before | {destination} if before else frozenset((destination,))
                subjects[parts[4]] = interned.setdefault(reached, reached)
        return ignored

    def count(self, zone: str, year: int, field_class: FieldClass) -> int:
        """Distinct subjects of *zone* counted in *year* for *field_class*."""
        return len(self._known.get((zone, year, field_class), {}))

    def reached(
        self, zone: str, year: int, field_class: FieldClass, subject: str
    ) -> frozenset[str]:
        """Destinations *subject* reached in that zone, year and class (empty: not counted)."""
        return self._known.get((zone, year, field_class), {}).get(subject, frozenset())

    def by_destination(self, zone: str, year: int, field_class: FieldClass) -> dict[str, int]:
        """Distinct subjects of that zone, year and class per destination zone reached."""
        out: dict[str, int] = {}
        for reached in self._known.get((zone, year, field_class), {}).values():
            for destination in reached:
                out[destination] = out.get(destination, 0) + 1
        return dict(sorted(out.items()))

    def destinations_of(self, zone: str, subject: str) -> frozenset[str]:
        """Every destination zone *subject* of *zone* reached, any year and class (erasure)."""
        out: set[str] = set()
        for (z, _, _), subjects in self._known.items():
            if z == zone:
                out |= subjects.get(subject, frozenset())
        return frozenset(out)

    def count_beyond(self, other: LedgerState, zone: str, year: int,
                     field_class: FieldClass) -> int:
        """Subjects counted here and not in *other* (zone, year, class): a reservation's
        share of the ceiling."""
        known = other._known.get((zone, year, field_class), {})
        return sum(1 for s in self._known.get((zone, year, field_class), {}) if s not in known)

    def clear(self) -> None:
        """Forget every entry (a reservation written or given up)."""
        self._known.clear()

    def counts(self) -> dict[tuple[str, int, FieldClass], int]:
        """Every (zone, year, class) with its count."""
        return {k: len(v) for k, v in sorted(self._known.items())}

    def entries(self) -> Iterator[LedgerEntry]:
        """Every entry, in order."""
        for (zone, year, cls), subjects in sorted(self._known.items()):
            for subject, reached in sorted(subjects.items()):
                for destination in sorted(reached):
                    yield LedgerEntry(zone, year, cls, destination, subject)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LedgerState):
            return NotImplemented
        return list(self.entries()) == list(other.entries())

    __hash__ = None  # type: ignore[assignment]


@dataclass(frozen=True)
class ThresholdAlert:
    """A class of a zone's ledger crossed 80% of its ceiling (``warning``) or reached it."""

    zone: str
    year: int
    field_class: FieldClass
    count: int
    ceiling: int
    level: Level


@dataclass(frozen=True)
class Admission:
    """What :func:`admit` decided: rows withheld (row -> reason), the ledger entries to write
    with the batch (sorted, each once), and alerts."""

    withheld: Reasons
    delta: tuple[LedgerEntry, ...]
    alerts: tuple[ThresholdAlert, ...]


def level(count: int, ceiling: int) -> Level:
    """``reached`` at the ceiling, ``warning`` from 80% of it, else ``ok``."""
    if count >= ceiling:
        return "reached"
    return "warning" if count * 5 >= ceiling * 4 else "ok"


def volume_reason(zone: str, year: int, field_class: FieldClass, ceiling: int) -> str:
    return (f"{VOLUME_THRESHOLD}: {field_class.value} subjects of zone {zone} in {year} "
            f"reached the ceiling {ceiling}")


def admit(
    state: LedgerState,
    subjects: Sequence[str | None],
    *,
    zone: str,
    destination: str,
    year: int,
    classes: Collection[FieldClass],
    thresholds: Thresholds | None,
    skip: Collection[int] = (),
    reserved: LedgerState | None = None,
) -> Admission:
    """Decide one batch: see the module docstring. ``subjects[row]`` is the row's subject id;
    rows in *skip* (already withheld or quarantined) are neither decided nor counted.
    *classes*: :func:`crossing_classes` of the batch's dataset (none: nothing is counted).
    *reserved*: entries admitted by chunks not yet written (the same round): they count
    toward the ceiling and their subjects cross, but the delta still holds every entry not
    in *state* (written twice, one key), so a reservation that is never written loses
    nothing."""
    counted = [c for c in COUNTED if c in classes]
    if not counted:
        return Admission({}, (), ())
    present: set[str | None] = set(subjects) if not skip else {
        s for row, s in enumerate(subjects) if row not in skip}
    named = {s for s in present if s is not None}
    # The common case first, in C-speed lookups: a subject that already reached this
    # destination in every counted class has nothing to decide and nothing to write.
    undecided_set: set[str] = set()
    for c in counted:
        known = state._known.get((zone, year, c), {})
        undecided_set.update(s for s in named if destination not in known.get(s, ()))
    undecided = sorted(undecided_set)
    ceilings = {c: thresholds.ceiling(c) if thresholds is not None else None for c in counted}
    limited = thresholds is not None and thresholds.on_reach is OnReach.WITHHOLD_NEW_SUBJECTS
    spare = reserved if reserved is not None else LedgerState()
    before = {c: state.count(zone, year, c) + spare.count_beyond(state, zone, year, c)
              for c in counted}
    added = dict.fromkeys(counted, 0)
    delta: dict[FieldClass, list[LedgerEntry]] = {c: [] for c in counted}  # each in order
    refused: dict[str, str] = {}
    for subject in undecided:
        reached = {c: state.reached(zone, year, c, subject) for c in counted}
        fresh = [c for c in counted
                 if not reached[c] and not spare.reached(zone, year, c, subject)]
        full = [c for c in fresh if limited and _at_ceiling(before[c] + added[c], ceilings[c])]
        if full:
            refused[subject] = volume_reason(zone, year, full[0], ceilings[full[0]] or 0)
            continue
        for c in fresh:
            added[c] += 1
        for c in counted:
            if destination not in reached[c]:
                delta[c].append(LedgerEntry(zone, year, c, destination, subject))
    withheld: Reasons = {}
    if refused or None in present:
        for row, name in enumerate(subjects):
            if row in skip:
                continue
            if name is None:
                withheld[row] = SUBJECT_MISSING
            elif name in refused:
                withheld[row] = refused[name]
    alerts = tuple(
        ThresholdAlert(zone, year, c, before[c] + added[c], ceiling, level(before[c] + added[c],
                                                                           ceiling))
        for c in counted
        if (ceiling := ceilings[c]) is not None
        and level(before[c], ceiling) != level(before[c] + added[c], ceiling))
    return Admission(withheld, tuple(e for c in counted for e in delta[c]), alerts)


def _at_ceiling(count: int, ceiling: int | None) -> bool:
    return ceiling is not None and count >= ceiling
