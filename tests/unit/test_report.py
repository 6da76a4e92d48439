"""`corridor report`'s core: totals from real chained audit events (replays once, gaps, two
instruments, the window), reconciliation per chain, chain status, and agreement with
`corridor verify`'s totals on the same records."""

from __future__ import annotations

from dataclasses import replace

import pytest

from corridor.commands.verify import as_json as verify_json
from corridor.core.audit import encode_event
from corridor.core.config import Config
from corridor.core.model import Lineage
from corridor.core.report import (
    Window,
    build_report,
    chain_statuses,
    report_document,
    split_log,
)
from corridor.core.report.model import key_epoch
from corridor.core.verify import Gap, verify
from corridor.kafka.verify_reader import VerifyInput
from tests.unit.report_fixtures import (
    CONSENT,
    HOUR,
    INVALID,
    SHIPMENT,
    STRATEGIC,
    T0,
    TRUNCATED,
    Chain,
    realistic_log,
    sample_config,
)

DAY = Window(T0, T0 + 24 * HOUR)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return sample_config(tmp_path_factory.mktemp("report"))


def report_of(values: list[bytes], config: Config, window: Window = DAY,
              corridors: list[str] | None = None) -> dict:
    log = split_log(values)
    built = build_report(log.events, config, window, corridors=corridors,
                         statuses=chain_statuses(log.chains), undecodable=log.undecodable)
    return report_document(built)


def corridor(doc: dict, name: str) -> dict:
    return next(c for c in doc["corridors"] if c["corridor"] == name)


def test_totals_per_corridor_and_instrument_count_a_replay_once(config: Config) -> None:
    doc = report_of(realistic_log(), config)
    assert doc["ok"] and doc["replays"] == 1 and doc["conflicts"] == 0
    hk_eu = corridor(doc, "hk-eu")
    # 6 hours of shipments (480 + 15 + 5) and orders (300 + 20); the replay not twice.
    assert hk_eu["totals"] == {
        "source": 6 * 500 + 6 * 320, "delivered": 6 * 480 + 6 * 300,
        "withheld": 6 * 15 + 6 * 20, "quarantined": 6 * 5,
        "withheld_by_reason": {CONSENT: 90, "withhold: consent == false": 120},
        "quarantined_by_reason": {INVALID: 30}}
    uses = {u["instrument"]: u for u in hk_eu["instruments"]}
    assert set(uses) == {"hk-eu-rmc", "hk-eu-rmc-2026"}
    # Hours 0-3 of shipments and all orders under the first; hours 4-5 under the second.
    assert uses["hk-eu-rmc-2026"]["totals"]["delivered"] == 2 * 480
    assert uses["hk-eu-rmc"]["totals"]["delivered"] == 4 * 480 + 6 * 300
    assert uses["hk-eu-rmc"]["kind"] == "HK-RMC" and uses["hk-eu-rmc-2026"]["kind"] is None
    assert uses["hk-eu-rmc"]["protections"]["encrypted"] == {
        "buyer_email": 1800, "contact_email": 1920, "shipping_address": 1800}
    assert [p["policy_hash"] for p in hk_eu["policies"]] == ["policy-v1", "policy-v2"]
    assert hk_eu["policies"][1]["first_ms"] == T0 + 4 * HOUR
    assert [(k["key_id"], k["epoch"]) for k in hk_eu["keys"]] == [
        ("hk-eu-dek-e1-0a1b2c3d", 1), ("hk-eu-dek-e2-4d5e6f70", 2)]
    asean = corridor(doc, "hk-asean")["totals"]
    assert asean["withheld_by_reason"] == {STRATEGIC: 240}
    assert asean["quarantined_by_reason"] == {TRUNCATED: 12}
    assert doc["totals"]["source"] == sum(c["totals"]["source"] for c in doc["corridors"])


def test_a_gap_event_covers_offsets_without_outcomes(config: Config) -> None:
    chain = next(c for c in corridor(report_of(realistic_log(), config), "hk-eu")["chains"]
                 if c["topic"] == SHIPMENT)
    assert chain["gaps"] == [[1500, 1524]] and chain["gap_offsets"] == 25
    assert chain["offset_ranges"] == [[0, 1499], [1525, 3024]]
    assert chain["records"] == chain["offsets"] == 3000
    assert chain["contiguous"] and chain["reconciles"]
    assert chain["first_seq"] == 0 and chain["last_seq"] == 6 and chain["replays"] == 1
    assert chain["verification"]["status"] == "ok"


def test_the_window_keeps_events_from_inclusive_to_exclusive(config: Config) -> None:
    window = Window(T0 + 2 * HOUR, T0 + 4 * HOUR)  # hours 2 and 3, and the gap at hour 2
    doc = report_of(realistic_log(), config, window)
    hk_eu = corridor(doc, "hk-eu")
    assert hk_eu["totals"]["delivered"] == 2 * 480 + 2 * 300
    assert [i["instrument"] for i in hk_eu["instruments"]] == ["hk-eu-rmc"]
    assert doc["events"] == 2 * 4 + 1 and doc["outside_window"] == 4 * 4
    chain = next(c for c in hk_eu["chains"] if c["topic"] == SHIPMENT)
    assert chain["first_seq"] == 2 and chain["offset_ranges"] == [[1000, 1499], [1525, 2024]]
    assert chain["reconciles"]


def test_only_the_corridors_asked_for(config: Config) -> None:
    doc = report_of(realistic_log(), config, corridors=["hk-asean"])
    assert [c["corridor"] for c in doc["corridors"]] == ["hk-asean"]
    assert doc["totals"] == corridor(doc, "hk-asean")["totals"]


def test_every_configured_corridor_is_listed_even_without_events(config: Config) -> None:
    doc = report_of(realistic_log(), config)
    assert {c["corridor"] for c in doc["corridors"]} == set(config.corridors)
    eu_hk = corridor(doc, "eu-hk")
    assert eu_hk["chains"] == [] and eu_hk["totals"]["source"] == 0


def test_offsets_no_event_covers_do_not_reconcile(config: Config) -> None:
    chain = Chain("hk-eu", SHIPMENT)
    chain.batch(T0, 10)
    chain.batch(T0 + 1, 10, skip=5)  # offsets 10-14 in no event
    doc = report_of([encode_event(e) for e in chain.events], config)
    found = corridor(doc, "hk-eu")["chains"][0]
    assert not found["contiguous"] and not found["reconciles"] and not doc["reconciles"]
    assert found["discontinuities"] == ["seq 1 starts at offset 15: offsets 10 to 14 are in "
                                        "no event"]
    assert found["verification"]["status"] == "ok"  # the chain itself is intact


def test_counts_that_do_not_add_up_to_the_offsets_are_named(config: Config) -> None:
    chain = Chain("hk-eu", SHIPMENT)
    chain.batch(T0, 10)
    chain.batch(T0 + 1, 8, extra_offsets=2)
    found = corridor(report_of([encode_event(e) for e in chain.events], config),
                     "hk-eu")["chains"][0]
    assert found["contiguous"] and not found["reconciles"]
    assert (found["records"], found["offsets"]) == (18, 20)
    assert found["mismatches"] == [{"seq": 1, "first_offset": 10, "last_offset": 19,
                                    "records": 8}]


def test_a_deleted_event_breaks_contiguity_and_the_chain(config: Config) -> None:
    chain = Chain("hk-eu", SHIPMENT)
    for i in range(4):
        chain.batch(T0 + i, 10)
    values = [encode_event(e) for e in chain.events]
    del values[2]
    doc = report_of(values, config)
    found = corridor(doc, "hk-eu")["chains"][0]
    assert not found["reconciles"] and "seq 1 is followed by seq 3" in found["discontinuities"][0]
    assert found["verification"]["status"] == "broken"
    assert found["verification"]["break"]["kind"] == "deleted"
    assert not doc["verified"] and not doc["ok"]


def test_a_conflicting_event_is_counted_once_and_does_not_reconcile(config: Config) -> None:
    chain = Chain("hk-eu", SHIPMENT)
    first = chain.batch(T0, 10)
    forged = replace(first, summary=replace(first.summary, outcomes={"delivered": 99}))
    values = [encode_event(first), encode_event(forged)]
    doc = report_of(values, config)
    found = corridor(doc, "hk-eu")["chains"][0]
    assert found["conflicts"] == 1 and found["records"] == 10 and not found["reconciles"]
    assert found["verification"]["break"]["kind"] == "altered"


def test_undecodable_audit_records_are_counted_and_fail_verification(config: Config) -> None:
    chain = Chain("hk-eu", SHIPMENT)
    chain.batch(T0, 10)
    doc = report_of([encode_event(chain.events[0]), b'{"event": "gap"}', b""], config)
    assert doc["undecodable"] == 2 and not doc["verified"]
    assert corridor(doc, "hk-eu")["totals"]["delivered"] == 10


def test_a_chain_whose_start_retention_removed_is_verified_from_its_first_event(
        config: Config) -> None:
    chain = Chain("hk-eu", SHIPMENT)
    for i in range(5):
        chain.batch(T0 + i, 10)
    doc = report_of([encode_event(e) for e in chain.events[2:]], config)
    verification = corridor(doc, "hk-eu")["chains"][0]["verification"]
    assert verification["status"] == "ok" and verification["first_seq"] == 2


def test_key_epoch() -> None:
    assert key_epoch("hk-eu-dek-e12-0a1b2c3d") == 12
    assert key_epoch("vault:transit/v3") is None


def test_totals_equal_corridor_verify_totals_for_the_same_records(config: Config) -> None:
    """The same 40 source records told twice: as the outcome topics `corridor verify`
    reads (lineages and reasons) and as the audit events of the batches that wrote them."""
    chain = Chain("hk-eu", SHIPMENT)
    found = VerifyInput()
    found.committed = {(SHIPMENT, 0): 45}
    offset = 0
    for ts, delivered, withheld, quarantined in ((T0, 12, 2, 1), (T0 + 1, 10, 3, 0),
                                                 (T0 + 2, 9, 0, 3)):
        chain.batch(ts, delivered, {CONSENT: withheld} if withheld else None,
                    {INVALID: quarantined} if quarantined else None)
        for _ in range(delivered):
            found.delivered.append(str(Lineage(SHIPMENT, 0, offset)))
            offset += 1
        for _ in range(withheld):
            found.withheld.append((str(Lineage(SHIPMENT, 0, offset)), CONSENT))
            offset += 1
        for _ in range(quarantined):
            found.quarantined.append((str(Lineage(SHIPMENT, 0, offset)), INVALID))
            offset += 1
    chain.gap(T0 + 3, 5)
    found.gaps = [Gap(SHIPMENT, 0, 40, 45)]
    found.source = [Lineage(SHIPMENT, 0, o) for o in range(40)]
    checked = verify_json("hk-eu", verify(found.source, found.committed, found.delivered,
                                          found.withheld, found.quarantined, found.gaps),
                          found)
    totals = corridor(report_of([encode_event(e) for e in chain.events], config),
                      "hk-eu")["totals"]
    assert set(totals) <= set(checked)
    assert totals == {k: checked[k] for k in totals}
    assert totals["source"] == 40


def test_operators_notices_are_counted_apart_not_undecodable(config: Config) -> None:
    values = realistic_log()
    release = b'{"event": "release", "corridor": "hk-eu", "by": "ops", "count": 3}'
    log = split_log(values[:2] + [release] + values[2:] + [b"garbage"])
    assert log.notices == {"release": 1}
    assert log.undecodable == 1
    assert len(log.events) == len(split_log(values).events)
