"""Data subjects: the subject id kernel against its per-value reference, the volume ledger's
admission (ceilings, warnings, exactly-once properties), and its compacted-topic records."""

from __future__ import annotations

import random
import sys
import tracemalloc
from pathlib import Path

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.config import (
    FieldClass,
    KeyTreatment,
    OnReach,
    Thresholds,
    Transform,
    load_config,
)
from corridor.core.subjects import (
    SUBJECT_MISSING,
    Admission,
    LedgerEntry,
    LedgerState,
    admit,
    calendar_year,
    crossing_classes,
    ledger_record,
    subject_id,
    subject_ids,
    subject_key,
)

REPO = Path(__file__).resolve().parents[2]
KEY = subject_key("hk", b"s" * 32)
P, S = FieldClass.PERSONAL, FieldClass.SENSITIVE
BOTH = frozenset({P, S})
WITHHOLD = OnReach.WITHHOLD_NEW_SUBJECTS


def ids(n: int, prefix: str = "person") -> list[str]:
    return [subject_id(f"{prefix}-{i}", KEY) for i in range(n)]


def run(state: LedgerState, subjects: list[str | None], thresholds: Thresholds | None,
        classes: frozenset[FieldClass] = BOTH, destination: str = "eu") -> Admission:
    return admit(state, subjects, zone="hk", destination=destination, year=2025,
                 classes=classes, thresholds=thresholds)


# --- subject ids ----------------------------------------------------------------------------


@settings(max_examples=100, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text(max_size=12)), max_size=30))
def test_subject_ids_match_the_per_value_reference(raw: list[str | None]) -> None:
    got = subject_ids(pa.array(raw, pa.string()), KEY).to_pylist()
    assert got == [None if r is None else subject_id(r, KEY) for r in raw]


def test_an_int_subject_and_its_digits_are_one_person() -> None:
    as_long = subject_ids(pa.array([42, None, 7], pa.int64()), KEY).to_pylist()
    as_text = subject_ids(pa.array(["42", None, "7"]), KEY).to_pylist()
    assert as_long == as_text == [subject_id(42, KEY), None, subject_id("7", KEY)]


def test_subject_ids_differ_per_zone_and_never_show_the_raw_id() -> None:
    other = subject_key("eu", b"s" * 32)
    assert subject_id("alice@example.com", KEY) != subject_id("alice@example.com", other)
    token = subject_id("alice@example.com", KEY)
    assert len(token) == 20 and "alice" not in token
    assert "s" * 32 not in repr(KEY)


# --- crossing classes -----------------------------------------------------------------------


def test_crossing_classes_follow_drops_and_the_key() -> None:
    dataset = load_config(REPO / "corridors.yaml").datasets["trade.shipment"]
    keep = {"contact_email": Transform.ENCRYPT, "national_id": Transform.ENCRYPT}
    assert crossing_classes(dataset, keep, KeyTreatment.DROP) == BOTH
    dropped = {"national_id": Transform.DROP}
    assert crossing_classes(dataset, dropped, KeyTreatment.DROP) == {P}
    every = {p: Transform.DROP for p, c in dataset.fields.items() if c in (P, S)}
    assert crossing_classes(dataset, every, KeyTreatment.DROP) == frozenset()
    assert crossing_classes(dataset, every, KeyTreatment.PSEUDONYMIZE) == {P}  # personal key


# --- admission ------------------------------------------------------------------------------


def test_ceiling_with_withhold_new_subjects_admits_exactly_the_ceiling() -> None:
    state, people = LedgerState(), ids(150)
    limit = Thresholds(personal=100, sensitive=None, on_reach=WITHHOLD)
    first = run(state, people[:60], limit)
    assert first.withheld == {} and len(first.delta) == 2 * 60
    state.apply(first.delta)
    second = run(state, people[:60] + people[60:], limit)  # the known 60 again, 90 new
    state.apply(second.delta)
    assert state.count("hk", 2025, P) == 100
    assert len(second.withheld) == 50
    assert all(r.startswith("volume_threshold: personal subjects of zone hk in 2025")
               for r in second.withheld.values())
    assert not set(second.withheld) & set(range(60))  # counted subjects keep crossing
    admitted = {people[i] for i in range(150) if i not in second.withheld}
    assert len(admitted) == 100
    assert {e.subject for e in state.entries()} == admitted


def test_warn_lets_everyone_cross_and_alerts_once_per_level() -> None:
    state, people = LedgerState(), ids(12)
    warn = Thresholds(personal=10, sensitive=None)
    a = run(state, people[:7], warn)
    assert a.alerts == ()
    state.apply(a.delta)
    b = run(state, people[7:9], warn)  # 9 of 10: warning
    assert [(x.level, x.count, x.ceiling) for x in b.alerts] == [("warning", 9, 10)]
    state.apply(b.delta)
    c = run(state, people[9:], warn)  # 12: reached, and nobody withheld
    assert c.withheld == {} and [(x.level, x.count) for x in c.alerts] == [("reached", 12)]
    state.apply(c.delta)
    assert run(state, people, warn).alerts == ()  # no change of level, no alert


def test_sensitive_ceiling_withholds_a_subject_counted_only_as_personal() -> None:
    state, people = LedgerState(), ids(3)
    state.apply(run(state, people, None, classes=frozenset({P})).delta)
    limit = Thresholds(personal=None, sensitive=2, on_reach=WITHHOLD)
    result = run(state, people, limit)
    assert len(result.withheld) == 1
    assert next(iter(result.withheld.values())).startswith("volume_threshold: sensitive")


def test_a_row_without_subject_is_withheld_and_skipped_rows_are_not_counted() -> None:
    state, people = LedgerState(), ids(3)
    result = admit(state, [people[0], None, people[1], people[2]], zone="hk", destination="eu",
                   year=2025, classes=frozenset({P}), thresholds=None, skip={2})
    assert result.withheld == {1: SUBJECT_MISSING}
    assert {e.subject for e in result.delta} == {people[0], people[2]}


def test_no_personal_data_crossing_counts_no_one() -> None:
    result = run(LedgerState(), [None, "x"], Thresholds(1, 1, WITHHOLD), classes=frozenset())
    assert result == Admission({}, (), ())


def test_a_known_subject_reaching_a_new_destination_is_recorded_not_recounted() -> None:
    state, people = LedgerState(), ids(2)
    limit = Thresholds(personal=2, sensitive=None, on_reach=WITHHOLD)
    state.apply(run(state, people, limit, classes=frozenset({P})).delta)
    to_asean = run(state, people, limit, classes=frozenset({P}), destination="asean")
    assert to_asean.withheld == {} and len(to_asean.delta) == 2
    state.apply(to_asean.delta)
    assert state.count("hk", 2025, P) == 2
    assert state.destinations_of("hk", people[0]) == {"eu", "asean"}
    assert state.destinations_of("hk", "nobody") == frozenset()


batches = st.lists(st.lists(st.sampled_from(ids(40)), max_size=25), min_size=1, max_size=6)
ceilings = st.integers(1, 45)


@settings(max_examples=150, deadline=None)
@given(batches, ceilings, st.randoms(use_true_random=False))
def test_replays_and_reorders_never_count_twice_nor_past_the_ceiling(
    stream: list[list[str]], ceiling: int, rnd: random.Random
) -> None:
    limit = Thresholds(personal=ceiling, sensitive=ceiling, on_reach=WITHHOLD)
    state, admitted = LedgerState(), set()
    for batch in stream:
        result = run(state, list(batch), limit)
        # A replayed batch (same or shuffled rows, before or after its delta is applied)
        # decides the same subjects and writes nothing new once applied.
        shuffled = list(batch)
        rnd.shuffle(shuffled)
        again = run(state, shuffled, limit)
        assert {shuffled[r] for r in again.withheld} == {batch[r] for r in result.withheld}
        assert again.delta == result.delta
        state.apply(result.delta)
        state.apply(result.delta)  # applying twice changes nothing
        replay = run(state, list(batch), limit)
        assert replay.delta == () and replay.withheld == result.withheld
        crossed = {s for r, s in enumerate(batch) if r not in result.withheld}
        assert not {batch[r] for r in result.withheld} & admitted  # once counted, admitted
        admitted |= crossed
        assert state.count("hk", 2025, P) == len(admitted) <= ceiling


@settings(max_examples=100, deadline=None)
@given(st.lists(st.lists(st.sampled_from(ids(30)), max_size=10), max_size=6),
       st.randoms(use_true_random=False))
def test_applying_deltas_in_any_order_with_repeats_gives_one_state(
    stream: list[list[str]], rnd: random.Random
) -> None:
    deltas = [run(LedgerState(), list(b), None).delta for b in stream]
    forward = LedgerState(e for d in deltas for e in d)
    mixed = deltas + deltas[: len(deltas) // 2]
    rnd.shuffle(mixed)
    assert LedgerState(e for d in mixed for e in d) == forward


# --- records --------------------------------------------------------------------------------


def test_ledger_record_round_trips_and_a_replay_writes_the_same_bytes() -> None:
    entry = LedgerEntry("hk", 2025, S, "eu", ids(1)[0])
    key, value = ledger_record(entry, "hk-eu")
    assert key == f"hk|2025|sensitive|eu|{entry.subject}".encode()
    assert LedgerEntry.from_record_key(key) == entry
    assert ledger_record(entry, "hk-eu") == (key, value)


@pytest.mark.parametrize("key", [b"hk|2025|personal|eu", b"hk|20x5|personal|eu|abc",
                                 b"hk|2025|public|eu|abc", b"hk|2025|personal||abc"])
def test_a_malformed_ledger_key_is_refused(key: bytes) -> None:
    with pytest.raises(ValueError):
        LedgerEntry.from_record_key(key)


def test_calendar_year_is_utc() -> None:
    assert calendar_year(1735689599999) == 2024  # 2024-12-31T23:59:59.999Z
    assert calendar_year(1735689600000) == 2025


def test_size_of_the_ledger_per_subject() -> None:
    """Bytes per entry on the topic (key + value, before Kafka's per-record framing of about
    10 bytes) and in memory (the state rebuilt from the topic's records): printed for the note."""
    n = 20_000
    records = [ledger_record(LedgerEntry("hk", 2025, P, "eu", s), "hk-eu") for s in ids(n, "z")]
    on_topic = sum(len(k) + len(v) for k, v in records)
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    state = LedgerState(LedgerEntry.from_record_key(k) for k, _ in records)
    in_memory = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    assert state.count("hk", 2025, P) == n
    per_topic, per_memory = on_topic / n, in_memory / n
    sys.stdout.write(f"\nledger: {per_topic:.0f} B/entry on the topic, {per_memory:.0f} B/entry "
                     f"in memory; 1,000,000 subjects: {per_topic:.0f} MB, {per_memory:.0f} MB\n")
    assert per_topic == len("hk|2025|personal|eu|") + 20 + len('{"v":1,"corridor":"hk-eu"}')
    assert per_memory < 250  # the subject's token plus one dict slot; fails if it doubles
