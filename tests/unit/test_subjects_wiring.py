"""Where the ledger and consent live and who may touch them; a round's reservation."""

from __future__ import annotations

from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core import topics
from corridor.core.acl import grants, principals
from corridor.core.config import FieldClass, OnReach, Thresholds
from corridor.core.subjects import LedgerEntry, LedgerState, admit, subject_id
from tests.unit.subject_fixtures import KEY, subjects_config

P = FieldClass.PERSONAL
LIMIT = Thresholds(3, None, OnReach.WITHHOLD_NEW_SUBJECTS)


def decide(state: LedgerState, people: list[int], reserved: LedgerState | None = None):
    return admit(state, [subject_id(f"p{i}", KEY) for i in people], zone="hk",
                 destination="eu", year=2025, classes={P}, thresholds=LIMIT,
                 reserved=reserved)


def test_chunks_of_one_round_share_the_ceiling_through_the_reservation() -> None:
    state, reserved = LedgerState(), LedgerState()
    first = decide(state, [0, 1], reserved)
    reserved.apply(first.delta)
    second = decide(state, [1, 2, 3, 4], reserved)  # 1 is reserved: it crosses, uncounted
    crossing = {r for r in range(4) if r not in second.withheld}
    assert len(first.delta) == 2 and crossing == {0, 1}  # p1, p2 cross; p3, p4 are over
    # Entries not yet written stay in the delta (written twice: one key), so a reservation
    # given up never leaves a crossed subject uncounted.
    assert {e.subject for e in second.delta} == {subject_id("p1", KEY), subject_id("p2", KEY)}
    state.apply([*first.delta, *second.delta])
    assert state.count("hk", 2025, P) == 3


def test_counts_per_destination() -> None:
    state = LedgerState([LedgerEntry("hk", 2025, P, d, s) for d, s in
                         [("eu", "a"), ("eu", "b"), ("asean", "a")]])
    assert state.by_destination("hk", 2025, P) == {"asean": 1, "eu": 2}
    assert state.count("hk", 2025, P) == 2


def test_the_ledger_and_consent_topics_live_in_the_origin(tmp_path: Path) -> None:
    config = subjects_config(tmp_path)
    planned = {(t.zone, t.name): t.config for t in topics.topic_plan(config)}
    assert planned[("hk", "hk.subjects")]["cleanup.policy"] == "compact"
    assert planned[("hk", "hk.consent")]["cleanup.policy"] == "compact"
    assert {(z, n) for z, n in planned if n.endswith((".subjects", ".consent"))} == {
        ("hk", "hk.subjects"), ("hk", "hk.consent")}


def test_the_processor_reads_and_writes_the_ledger_and_only_the_consent_service_writes_consent(
        tmp_path: Path) -> None:
    config = subjects_config(tmp_path)
    granted = {(g.zone, g.principal, g.operation, g.name) for g in grants(config)
               if g.resource == "topic" and g.name in ("hk.subjects", "hk.consent")}
    assert granted == {
        ("hk", "corridor-hk-eu", op, "hk.subjects") for op in ("read", "write", "describe")
    } | {("hk", "corridor-hk-asean", op, "hk.subjects") for op in ("read", "write", "describe")
         } | {("hk", "corridor-hk-eu", op, "hk.consent") for op in ("read", "describe")
              } | {("hk", "consent-hk", op, "hk.consent") for op in ("write", "describe")}
    assert ("consent-hk", "consent", "hk") in {(p.name, p.role, p.serves)
                                              for p in principals(config)}
    # Reading by assignment still asks a group's coordinator: the reader groups, in the origin.
    assert {(g.zone, g.name, g.prefixed) for g in grants(config) if g.resource == "group"
            and g.principal == "corridor-hk-eu" and g.zone == "hk"} == {
        ("hk", "corridor.hk-eu", False), ("hk", "corridor-reader-", True)}


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(
    st.builds(lambda z, y, c, d, s: f"{z}|{y}|{c}|{d}|{s}".encode(),
              st.sampled_from(["hk", "", "eu"]), st.sampled_from(["2025", "20x5", ""]),
              st.sampled_from(["personal", "sensitive", "public", "x"]),
              st.sampled_from(["eu", "asean", ""]), st.sampled_from(["a", "b", ""])),
    st.binary(max_size=12), st.none()), max_size=20))
def test_keys_are_folded_as_parsing_each_entry_would(keys: list[bytes | None]) -> None:
    """The rebuild's fast path equals the per-entry parse, refusals included."""
    entries, ignored = [], 0
    for key in keys:
        try:
            entries.append(LedgerEntry.from_record_key(key or b""))
        except ValueError:
            ignored += 1
    state = LedgerState()
    assert state.apply_keys(keys) == ignored
    assert state == LedgerState(entries)
