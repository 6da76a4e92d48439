"""Releasing held records, on values: selection, triage, the re-run through the current
plan, the records and markers a release writes, and what `corridor verify` makes of them."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from corridor.core import topics, wire
from corridor.core.codec.arrow_batches import IPC_MARKER
from corridor.core.model import Lineage, Outcome, RawMessage
from corridor.core.outbox import Outbox
from corridor.core.pipeline import process
from corridor.core.release import (
    HeldRecord,
    LineagePattern,
    Marker,
    Release,
    Selection,
    classify,
    held_record,
    parse_since,
    ranges,
    release_event,
    release_id,
    release_messages,
    summarize,
    triage,
)
from corridor.core.verify import verify
from corridor.dev.sample import generate_rows
from tests.unit.avro_samples import body
from tests.unit.plan_fixtures import load, plan_for

T = "hk.outbound.trade.shipment"
UNKNOWN_ID = 4242
NOW = 1_700_000_600_000


def held(offset: int, outcome: Outcome = Outcome.QUARANTINED, reason: str = "decode: x",
         partition: int = 0, row: int = -1, value: bytes | None = b"\xc3\x01...",
         at: int = NOW) -> HeldRecord:
    return HeldRecord(Lineage(T, partition, offset, row), outcome, reason, value, b"k", at)


def a_release(reason: str = "schema-registered") -> Release:
    return Release("hk-eu", release_id(NOW, "abc123"), "ops-anna", "corridor-hk-eu", reason,
                   NOW, "hk-eu@deadbeef")


# --- selection --------------------------------------------------------------------------


def test_filters_select_by_reason_prefix_time_and_lineage() -> None:
    records = [held(5, reason="decode: unknown schema id 7", at=NOW - 10_000),
               held(6, Outcome.WITHHELD, reason="withhold: consent == false"),
               held(7, reason="decode: bad magic", partition=1),
               held(9, row=2)]
    assert Selection().select(reversed(records)) == sorted(records, key=lambda r: r.lineage)
    assert [r.lineage.offset for r in Selection(reason="decode: unknown").select(records)] == [5]
    assert [r.lineage.offset for r in Selection(since_ms=NOW - 5_000).select(records)] == [6, 9, 7]
    patterns = (LineagePattern.parse(f"{T}/0/5-6"), LineagePattern.parse(f"{T}/1/7"))
    assert [r.lineage.offset for r in Selection(lineages=patterns).select(records)] == [5, 6, 7]
    row = (LineagePattern.parse(f"{T}/0/9#2"),)
    assert [r.lineage for r in Selection(lineages=row).select(records)] == [Lineage(T, 0, 9, 2)]
    assert Selection(lineages=(LineagePattern.parse(f"{T}/0/9#1"),)).select(records) == []


@pytest.mark.parametrize("text", ["nonsense", f"{T}/x/5", f"{T}/0/5-x", f"{T}/0/5#r"])
def test_a_bad_lineage_filter_names_the_text(text: str) -> None:
    with pytest.raises(ValueError, match="is not a lineage"):
        LineagePattern.parse(text)


def test_since_takes_a_duration_or_an_iso_time() -> None:
    assert parse_since("90s", NOW) == NOW - 90_000
    assert parse_since("2h", NOW) == NOW - 7_200_000
    assert parse_since("7d", NOW) == NOW - 7 * 86_400_000
    assert parse_since("2023-11-14T22:13:20Z", NOW) == 1_700_000_000_000
    assert parse_since("2023-11-14T22:13:20", NOW) == 1_700_000_000_000  # UTC by default
    assert parse_since("2023-11-15T06:13:20+08:00", NOW) == 1_700_000_000_000
    with pytest.raises(ValueError, match="neither a duration"):
        parse_since("yesterday", NOW)


def test_a_side_record_parses_with_its_reason_and_source_key() -> None:
    rec = held_record(Outcome.WITHHELD, f"{T}/2/40".encode(), b"v",
                      [(wire.REASON, b"withhold: consent == false"),
                       (wire.SOURCE_KEY, b"order-7")], 123)
    assert rec == HeldRecord(Lineage(T, 2, 40), Outcome.WITHHELD, "withhold: consent == false",
                             b"v", b"order-7", 123, rec.headers if rec else ())
    assert held_record(Outcome.QUARANTINED, b"not a lineage", b"v", [], None) is None
    no_key = held_record(Outcome.QUARANTINED, f"{T}/0/1".encode(), b"v", [], None)
    assert no_key is not None and no_key.key is None and no_key.reason == ""


# --- triage -------------------------------------------------------------------------------


def test_triage_skips_released_pending_twice_held_and_undecoded_arrow_rows() -> None:
    release = a_release()
    before = held(1)
    twice = [held(2), held(2, Outcome.WITHHELD)]
    arrow_row = held(3, row=4, value=IPC_MARKER + b"rest of a one-row stream")
    avro_row = held(3, row=5)
    pending = held(10)
    fresh = held(4)
    records = Selection().select([before, *twice, arrow_row, avro_row, pending, fresh])
    found = triage(records, {str(before.lineage): Marker.of(release, before)}, {(T, 0): 10})
    assert found.already == [(before, release.release_id)]
    assert found.pending == [pending]
    assert [r for r, _ in found.refused] == [*twice, arrow_row]
    assert "held twice" in found.refused[0][1] and "Arrow row" in found.refused[2][1]
    assert found.todo == [avro_row, fresh]


# --- the whole release, on values ---------------------------------------------------------


def _framed(rows: list[dict], schema) -> list[bytes]:  # type: ignore[no-untyped-def]
    return [wire.confluent_frame(UNKNOWN_ID, body(schema.parsed, r)) for r in rows]


def _side(outbox: Outbox, result) -> list[HeldRecord]:  # type: ignore[no-untyped-def]
    """What the origin keeps: the outbox's side records, read back."""
    out = []
    for m in outbox.side(result):
        outcome = Outcome.WITHHELD if m.topic == outbox.withheld_topic else Outcome.QUARANTINED
        rec = held_record(outcome, m.key, m.value, m.headers or [], NOW)
        assert rec is not None
        out.append(rec)
    return out


def test_quarantined_for_an_unknown_schema_then_released_crosses_once(tmp_path: Path) -> None:
    config = load(tmp_path)
    plan = plan_for(config, "hk-eu")
    dp = plan.dataset_for_topic(T)
    rows = generate_rows("trade.shipment", 20, seed=5)
    raws = [RawMessage(Lineage(T, 0, i), v, f"k{i}".encode(), 1_700_000_000_000 + i)
            for i, v in enumerate(_framed(rows, dp.schema))]
    # the corridor ran before the schema was registered: every record quarantined
    first = process(raws, plan, dp, NOW, writer_schemas={})
    assert [s.reason for s in first.quarantined] == [f"decode: unknown schema id {UNKNOWN_ID}"] * 20
    outbox = Outbox.for_plan(plan, 6)
    kept = _side(outbox, first)
    assert [r.key for r in kept] == [f"k{i}".encode() for i in range(20)]  # corridor-source-key

    # the schema is registered: the re-run through today's plan
    again = [RawMessage(r.lineage, r.value, r.key, 1_700_000_000_000 + r.lineage.offset)
             for r in kept]
    result = process(again, plan, dp, NOW, writer_schemas={UNKNOWN_ID: dp.schema})
    rerun = classify(kept, result)
    today = process(raws, plan, dp, NOW, writer_schemas={UNKNOWN_ID: dp.schema})
    # exactly what the corridor does today with these records: the policy is not bypassed
    assert {r.lineage for r in rerun.crossing} == {d.lineage for d in today.delivered}
    assert {(r.lineage, why) for r, _, why in rerun.held} == {
        (s.lineage, s.reason) for s in today.withheld}
    assert rerun.held, "the sample has records today's policy still withholds"
    assert all(o is Outcome.WITHHELD for _, o, _ in rerun.held)

    release = a_release()
    out = release_messages(result, {r.lineage: r for r in kept}, release,
                           dp.destination_topic, 0)
    records = [m for m in out if m.topic == dp.destination_topic]
    markers = [m for m in out if m.topic == topics.released_topic("hk-eu")]
    assert len(records) == len(markers) == len(rerun.crossing)
    for m in records:
        headers = dict(m.headers or [])
        assert headers[wire.RELEASED] == release.release_id.encode()
        assert headers[wire.POLICY] == plan.corridor.policy_id.encode()
        assert m.partition == 0 and m.timestamp is not None
    assert {m.key for m in markers} == {dict(m.headers or [])[wire.LINEAGE] for m in records}
    marker = Marker.decode(markers[0].value or b"")
    assert (marker.previous, marker.by, marker.reason) == ("quarantined", "ops-anna",
                                                            "schema-registered")

    # verify: every record one final outcome; released counted by what it was held as
    delivered = [dict(m.headers or [])[wire.LINEAGE].decode() for m in records]
    report = verify([r.lineage for r in raws], {(T, 0): 20}, delivered,
                    quarantined=[(str(r.lineage), r.reason) for r in kept],
                    released=[m.key.decode() for m in markers if m.key])
    assert report.ok, report
    assert report.released == len(rerun.crossing)
    assert report.released_by_previous == {"quarantined": len(rerun.crossing)}
    assert report.quarantined == 20 - len(rerun.crossing)  # still held, as quarantined

    # a second release finds every marker: nothing is re-run
    second = triage(kept, {m.key.decode(): Marker.decode(m.value or b"") for m in markers
                           if m.key}, {(T, 0): 20})
    assert len(second.already) == len(rerun.crossing)
    assert {r.lineage for r in second.todo} == {r.lineage for r, _, _ in rerun.held}


def test_a_side_record_without_a_source_key_has_no_key_header(tmp_path: Path) -> None:
    config = load(tmp_path)
    plan = plan_for(config, "hk-eu")
    dp = plan.dataset_for_topic(T)
    result = process([RawMessage(Lineage(T, 0, 0), b"garbage", None)], plan, dp, NOW)
    side = Outbox.for_plan(plan, 6).side(result)[0]
    assert [name for name, _ in side.headers or []] == [wire.REASON]


# --- the record of a release ----------------------------------------------------------------


def test_ranges_compress_consecutive_offsets() -> None:
    lineages = [Lineage(T, 0, o) for o in (1, 2, 3, 5, 7, 8)] + [Lineage(T, 1, 0),
                                                                  Lineage(T, 0, 9, 2)]
    assert ranges(lineages) == [f"{T}/0/1-3", f"{T}/0/5", f"{T}/0/7-8", f"{T}/1/0",
                                f"{T}/0/9#2"]


def test_marker_round_trips_and_refuses_garbage() -> None:
    marker = Marker.of(a_release(), held(3))
    assert Marker.decode(marker.encode()) == marker
    for bad in (b"{}", b"[1]", b"not json", b'{"lineage": 1}'):
        with pytest.raises(ValueError):
            Marker.decode(bad)


def test_the_release_event_names_who_why_what_and_the_policy() -> None:
    release = a_release()
    crossed = [held(1), held(2), held(3, Outcome.WITHHELD)]
    event = release_event(release, crossed, still_held=4, already=2)
    assert event["event"] == "release"
    assert json.loads(json.dumps(event)) == {
        "event": "release", "corridor": "hk-eu", "release": release.release_id,
        "by": "ops-anna", "principal": "corridor-hk-eu", "reason": "schema-registered",
        "policy": "hk-eu@deadbeef", "ts_ms": NOW, "count": 3,
        "previous": {"quarantined": 2, "withheld": 1}, "lineages": [f"{T}/0/1-3"],
        "still_held": 4, "already_released": 2}
    assert release.release_id == "20231114T222320Z-abc123"


def test_summaries_group_markers_by_release_oldest_first() -> None:
    early = Release("hk-eu", "r1", "anna", "p", "fix A", NOW - 1, "x@1")
    late = a_release()
    markers = [Marker.of(late, held(5)), Marker.of(early, held(1)),
               Marker.of(early, held(2, Outcome.WITHHELD))]
    assert summarize(markers) == [
        {"release": "r1", "by": "anna", "reason": "fix A", "ts_ms": NOW - 1, "policy": "x@1",
         "records": 2, "previous": {"quarantined": 1, "withheld": 1}},
        {"release": late.release_id, "by": "ops-anna", "reason": "schema-registered",
         "ts_ms": NOW, "policy": "hk-eu@deadbeef", "records": 1,
         "previous": {"quarantined": 1}}]
