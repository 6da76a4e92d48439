"""The accounting invariant: every committed source record in exactly one outcome."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.model import Lineage
from corridor.core.verify import Gap, verify

T = "hk.outbound.trade.shipment"


def ln(p: int, o: int, topic: str = T) -> str:
    return f"{topic}/{p}/{o}"


def source(*counts: int) -> list[tuple[str, int, int]]:
    return [(T, p, o) for p, n in enumerate(counts) for o in range(n)]


def test_every_record_accounted_for_holds() -> None:
    report = verify(
        source(3, 2), {(T, 0): 3, (T, 1): 2},
        delivered=[ln(0, 0), ln(1, 1)],
        withheld=[(ln(0, 1), "consent == false")],
        quarantined=[(ln(0, 2), "bad magic"), (ln(1, 0), "bad magic")],
    )
    assert report.ok
    assert (report.source, report.delivered, report.withheld, report.quarantined) == (5, 2, 1, 2)
    assert report.withheld_by_reason == {"consent == false": 1}
    assert report.quarantined_by_reason == {"bad magic": 2}
    assert report.accounted == report.source


def test_a_lost_record_is_missing() -> None:
    report = verify(source(3), {(T, 0): 3}, delivered=[ln(0, 0), ln(0, 2)])
    assert not report.ok
    assert report.missing == (Lineage(T, 0, 1),)


def test_a_double_delivery_is_a_violation() -> None:
    report = verify(source(2), {(T, 0): 2}, delivered=[ln(0, 0), ln(0, 1), ln(0, 1)])
    assert not report.ok
    assert report.delivered_duplicates == (Lineage(T, 0, 1),)
    assert report.delivered == 2


def test_side_rewrites_are_counted_not_violations() -> None:
    report = verify(source(2), {(T, 0): 2}, delivered=[ln(0, 0)],
                    withheld=[(ln(0, 1), "old"), (ln(0, 1), "new")])
    assert report.ok
    assert report.side_rewrites == 1
    assert report.withheld_by_reason == {"new": 1}  # compaction keeps the last value


def test_two_outcomes_for_one_record_conflict() -> None:
    report = verify(source(1), {(T, 0): 1}, delivered=[ln(0, 0)],
                    quarantined=[(ln(0, 0), "x")])
    assert report.conflicts == (Lineage(T, 0, 0),)
    assert not report.ok


def test_outcome_of_no_source_record_is_unknown() -> None:
    report = verify(source(1), {(T, 0): 1}, delivered=[ln(0, 0), ln(0, 7), "garbage"])
    assert report.unknown == ("garbage", ln(0, 7))
    assert not report.ok


def test_records_past_the_committed_position_are_pending_or_ahead() -> None:
    report = verify(source(4), {(T, 0): 2}, delivered=[ln(0, 0), ln(0, 1), ln(0, 2)])
    assert report.ok
    assert (report.source, report.pending, report.ahead) == (2, 2, 1)


def test_no_committed_position_means_nothing_is_checked() -> None:
    report = verify(source(3), {}, delivered=[])
    assert report.ok and report.pending == 3


def test_retention_gaps_and_expired_outcomes() -> None:
    recorded = Gap(T, 0, 0, 5)
    # partition 0: gap event recorded; partition 1: log start 4 with nothing stored below it.
    report = verify([(T, 0, 5), (T, 1, 4)], {(T, 0): 6, (T, 1): 5},
                    delivered=[ln(0, 5), ln(1, 4)], gaps=[recorded],
                    log_start={(T, 0): 5, (T, 1): 4})
    assert not report.ok and report.violations() == 2  # records lost before they crossed
    assert report.gaps == (recorded, Gap(T, 1, 0, 4, "unrecorded"))
    # outcomes below the log start: the source record expired after it was processed
    report = verify([(T, 0, 5)], {(T, 0): 6}, delivered=[ln(0, 3), ln(0, 5)],
                    log_start={(T, 0): 5})
    assert report.ok and report.expired == 1 and report.gaps == ()


# --- properties ----------------------------------------------------------------------

OUTCOMES = ("delivered", "withheld", "quarantined")


@st.composite
def accounted(draw: st.DrawFn) -> tuple[list[tuple[str, int, int]], dict, dict[str, list[str]]]:
    """A source, its committed positions, and a random split of the committed records."""
    counts = draw(st.lists(st.integers(0, 12), min_size=1, max_size=4))
    records = source(*counts)
    committed = {(T, p): draw(st.integers(0, n)) for p, n in enumerate(counts)}
    split: dict[str, list[str]] = {o: [] for o in OUTCOMES}
    for topic, p, o in records:
        if o < committed[(topic, p)]:
            split[draw(st.sampled_from(OUTCOMES))].append(ln(p, o))
    return records, committed, split


def run(records: list, committed: dict, split: dict[str, list[str]]):  # -> VerifyReport
    return verify(records, committed, split["delivered"],
                  [(x, "rule") for x in split["withheld"]],
                  [(x, "bad") for x in split["quarantined"]])


@settings(max_examples=150, deadline=None)
@given(accounted())
def test_any_split_into_outcomes_verifies(case) -> None:
    records, committed, split = case
    report = run(records, committed, split)
    assert report.ok
    assert report.accounted == report.source == sum(len(v) for v in split.values())


@settings(max_examples=150, deadline=None)
@given(accounted(), st.data())
def test_any_single_perturbation_fails(case, data: st.DataObject) -> None:
    records, committed, split = case
    nonempty = [o for o in OUTCOMES if split[o]]
    if not nonempty:
        return
    outcome = data.draw(st.sampled_from(nonempty))
    victim = data.draw(st.sampled_from(split[outcome]))
    kinds = ["drop", "two-outcomes"] + (["duplicate"] if split["delivered"] else [])
    kind = data.draw(st.sampled_from(kinds))
    if kind == "drop":
        split[outcome].remove(victim)
    elif kind == "duplicate":
        split["delivered"].append(data.draw(st.sampled_from(split["delivered"])))
    else:
        other = data.draw(st.sampled_from([o for o in OUTCOMES if o != outcome]))
        split[other].append(victim)
    report = run(records, committed, split)
    assert not report.ok
    if kind == "drop":
        assert len(report.missing) == 1 and report.violations() == 1
    elif kind == "duplicate":
        assert len(report.delivered_duplicates) == 1
    else:
        assert len(report.conflicts) == 1


# --- released records (`corridor held release`) ------------------------------------------


def test_a_released_record_is_one_record_with_one_final_outcome() -> None:
    report = verify(
        source(4), {(T, 0): 4},
        delivered=[ln(0, 0), ln(0, 1), ln(0, 2)],
        withheld=[(ln(0, 3), "consent == false"), (ln(0, 2), "consent == false")],
        quarantined=[(ln(0, 1), "decode: unknown schema id 9")],
        released=[ln(0, 1), ln(0, 2)],
    )
    assert report.ok, report
    assert (report.source, report.delivered, report.withheld, report.quarantined,
            report.released) == (4, 1, 1, 0, 2)
    assert report.released_by_previous == {"quarantined": 1, "withheld": 1}
    assert report.quarantined_by_reason == {}  # released records are no longer held
    assert report.withheld_by_reason == {"consent == false": 1}
    assert report.accounted == report.source


def test_held_and_delivered_without_a_release_marker_is_a_conflict() -> None:
    report = verify(source(2), {(T, 0): 2}, delivered=[ln(0, 0), ln(0, 1)],
                    quarantined=[(ln(0, 1), "bad magic")])
    assert not report.ok
    assert report.conflicts == (Lineage(T, 0, 1),) and report.released == 0


def test_a_released_record_delivered_twice_is_a_duplicate() -> None:
    report = verify(source(2), {(T, 0): 2}, delivered=[ln(0, 0), ln(0, 1), ln(0, 1)],
                    quarantined=[(ln(0, 1), "bad magic")], released=[ln(0, 1)])
    assert not report.ok
    assert report.delivered_duplicates == (Lineage(T, 0, 1),)
    assert report.released == 1 and report.conflicts == ()


def test_a_release_marker_without_a_held_record_or_without_a_delivery_is_unknown() -> None:
    never_held = verify(source(2), {(T, 0): 2}, delivered=[ln(0, 0), ln(0, 1)],
                        released=[ln(0, 1)])
    assert not never_held.ok
    assert never_held.unknown == (f"{ln(0, 1)} (released, but not held and delivered)",)
    assert never_held.missing == ()  # it is counted where it is: delivered
    never_delivered = verify(source(2), {(T, 0): 2}, delivered=[ln(0, 0)],
                             quarantined=[(ln(0, 1), "bad magic")], released=[ln(0, 1)])
    assert not never_delivered.ok
    assert never_delivered.quarantined == 1 and len(never_delivered.unknown) == 1


def test_withheld_and_quarantined_and_delivered_is_a_conflict_even_when_released() -> None:
    report = verify(source(1), {(T, 0): 1}, delivered=[ln(0, 0)],
                    withheld=[(ln(0, 0), "r")], quarantined=[(ln(0, 0), "q")],
                    released=[ln(0, 0)])
    assert report.conflicts == (Lineage(T, 0, 0),) and report.released == 0
