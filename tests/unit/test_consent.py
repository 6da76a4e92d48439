"""Consent: record format, the view's fold (latest wins), the per-row check and its reasons,
withdrawals, and staleness."""

from __future__ import annotations

import random

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.consent import (
    CONSENT_INVALID,
    CONSENT_MISSING,
    SUBJECT_MISSING,
    Consent,
    ConsentRecord,
    ConsentView,
    PurposeConsent,
    decode_consent,
)
from corridor.core.errors import ConsentRecordError

DAY = 86_400_000
T0 = 1_735_689_600_000


def value(**purposes: tuple[int | None, int | None]) -> bytes:
    return Consent({p.replace("_", "-"): PurposeConsent(g, w)
                    for p, (g, w) in purposes.items()}).to_json()


def record(subject: str, data: bytes | None, offset: int, partition: int = 0,
           ts: int = T0) -> ConsentRecord:
    return ConsentRecord(subject, data, partition, offset, ts)


def view_of(*records: ConsentRecord, as_of: int = T0) -> ConsentView:
    view = ConsentView()
    for r in records:
        view.apply(r)
    view.caught_up(as_of)
    return view


def test_record_round_trips_and_extra_top_level_keys_are_ignored() -> None:
    data = value(order_fulfilment=(T0, None), marketing=(T0, T0 + DAY))
    consent = decode_consent(data)
    assert consent.purposes["order-fulfilment"].granted
    assert not consent.purposes["marketing"].granted
    assert decode_consent(b'{"v":1,"purposes":{},"source":"crm"}').purposes == {}


def test_given_again_after_a_withdrawal_is_granted() -> None:
    assert PurposeConsent(T0 + 2 * DAY, T0 + DAY).granted
    assert not PurposeConsent(T0, T0).granted  # withdrawn at the same instant: withdrawn
    assert not PurposeConsent(None, None).granted


@pytest.mark.parametrize("data, says", [
    (b"not json", "not JSON"),
    (b'{"v":2,"purposes":{}}', "v=1"),
    (b'{"v":1}', "purposes must be"),
    (b'{"v":1,"purposes":{"a":{"given":"yesterday"}}}', "Unix milliseconds"),
    (b'{"v":1,"purposes":{"a":{"given":1,"until":2}}}', "expected {given, withdrawn}"),
])
def test_malformed_records_say_what_is_wrong(data: bytes, says: str) -> None:
    with pytest.raises(ConsentRecordError, match=says):
        decode_consent(data)


def test_check_gives_each_reason() -> None:
    view = view_of(
        record("ok", value(order_fulfilment=(T0, None), marketing=(T0, None)), 0),
        record("withdrew", value(order_fulfilment=(T0, T0 + DAY)), 1),
        record("partial", value(marketing=(T0, None)), 2),
        record("gone", value(order_fulfilment=(T0, None)), 3),
        record("gone", None, 4),
        record("broken", b"{", 5),
    )
    subjects = ["ok", "withdrew", "partial", "gone", "broken", "stranger", None]
    reasons = view.check(subjects, ["order-fulfilment", "marketing"])
    assert reasons == {
        1: "consent_withdrawn: order-fulfilment",
        2: "consent_missing: order-fulfilment",
        3: CONSENT_MISSING,
        4: CONSENT_INVALID,
        5: CONSENT_MISSING,
        6: SUBJECT_MISSING,
    }
    assert view.check(subjects, []) == {}  # a corridor without purposes checks nothing
    assert view.check(subjects, ["order-fulfilment"], skip={1, 6}) == {
        2: "consent_missing: order-fulfilment", 3: CONSENT_MISSING, 4: CONSENT_INVALID,
        5: CONSENT_MISSING}


def test_the_first_purpose_not_consented_is_named_in_the_corridors_order() -> None:
    view = view_of(record("s", value(a=(T0, T0 + 1), b=(None, None)), 0))
    assert view.check(["s"], ["b", "a"]) == {0: "consent_missing: b"}
    assert view.check(["s"], ["a", "b"]) == {0: "consent_withdrawn: a"}


def test_apply_reports_a_withdrawal_once_and_withdrawn_lists_it_after_a_restart() -> None:
    view = ConsentView()
    assert view.apply(record("s", value(a=(T0, None), b=(T0, None)), 0)) == frozenset()
    assert view.apply(record("s", value(a=(T0, T0 + DAY), b=(T0, None)), 1)) == {"a"}
    assert view.apply(record("s", value(a=(T0, T0 + DAY), b=(T0, None)), 2)) == frozenset()
    restarted = ConsentView()  # compaction kept only the latest record
    assert restarted.apply(record("s", value(a=(T0, T0 + DAY)), 2)) == frozenset()
    assert list(restarted.withdrawn(["a"])) == ["s"] and list(restarted.withdrawn(["b"])) == []


def test_an_older_record_arriving_late_is_ignored() -> None:
    view = view_of(record("s", value(a=(T0, T0 + DAY)), 9), record("s", value(a=(T0, None)), 3))
    assert view.check(["s"], ["a"]) == {0: "consent_withdrawn: a"}


def test_across_partitions_the_later_timestamp_wins() -> None:
    old = record("s", value(a=(T0, None)), offset=50, partition=0, ts=T0)
    new = record("s", value(a=(T0, T0 + DAY)), offset=2, partition=3, ts=T0 + DAY)
    for order in ((old, new), (new, old)):
        assert view_of(*order).check(["s"], ["a"]) == {0: "consent_withdrawn: a"}


def test_staleness_is_bounded_and_a_view_that_never_caught_up_is_stale() -> None:
    view = ConsentView()
    assert view.stale(T0) and view.staleness_ms(T0) is None
    view.caught_up(T0)
    assert view.staleness_ms(T0 + 1_000) == 1_000
    assert not view.stale(T0 + 30_000) and view.stale(T0 + 30_001)
    view.caught_up(T0 - 5)  # an older catch-up never makes the view look older
    assert view.as_of_ms == T0
    assert view.stale(T0 + 5_000, bound_ms=1_000)


states = st.one_of(st.none(), st.sampled_from([
    value(a=(T0, None)), value(a=(T0, T0 + 1)), value(a=(None, None)), b"{"]))


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.sampled_from("pqrs"), states), min_size=1, max_size=30),
       st.randoms(use_true_random=False))
def test_fold_is_latest_offset_wins_in_any_arrival_order(
    writes: list[tuple[str, bytes | None]], rnd: random.Random
) -> None:
    records = [record(s, v, offset) for offset, (s, v) in enumerate(writes)]
    shuffled = list(records)
    rnd.shuffle(shuffled)
    latest = {r.subject: r for r in records}  # in offset order: the last one per subject
    reference = view_of(*latest.values())
    folded = view_of(*shuffled)
    subjects = sorted(latest)
    assert folded.check(subjects, ["a"]) == reference.check(subjects, ["a"])
    assert list(folded.withdrawn(["a"])) == list(reference.withdrawn(["a"]))
    assert len(folded) == len(latest)
