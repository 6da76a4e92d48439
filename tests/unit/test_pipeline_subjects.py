"""The pipeline's subject stage on values: consent, then the volume ledger, after the rule;
the subject id never crosses; a replay admits the same subjects and counts no one twice."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest

from corridor.core import pipeline
from corridor.core.config import FieldClass, WireFormat
from corridor.core.errors import PlanError
from corridor.core.subjects import LedgerState, subject_id
from corridor.dev.sample import encode, generate_rows
from tests.unit.subject_fixtures import (
    CEILING,
    KEY,
    NOW_MS,
    PURPOSE,
    consent_view,
    email,
    inputs,
    plan_of,
    shipments,
    subjects_config,
)

PEOPLE = 10


def crossed_people(result: pipeline.BatchResult, raws: list, people: list) -> set[int]:
    at = {m.lineage: p for m, p in zip(raws, people, strict=True)}
    return {at[d.lineage] for d in result.delivered}


def reasons(result: pipeline.BatchResult, raws: list, people: list) -> dict[int, set[str]]:
    at = {m.lineage: p for m, p in zip(raws, people, strict=True)}
    out: dict[int, set[str]] = {}
    for s in result.withheld:
        out.setdefault(at[s.lineage], set()).add(s.reason)
    return out


def test_the_ceiling_admits_exactly_its_subjects_with_all_their_records(tmp_path: Path) -> None:
    config = subjects_config(tmp_path, purposes=False)
    plan = plan_of(config)
    people = [i % PEOPLE for i in range(3 * PEOPLE)]  # each person three times, interleaved
    raws = shipments(plan, people)
    result = pipeline.process(raws, plan, plan.datasets["trade.shipment"], NOW_MS,
                              subjects=inputs(config, plan, LedgerState(), None))
    result.check()
    crossed = crossed_people(result, raws, people)
    assert len(crossed) == CEILING
    assert result.counts()["delivered"] == 3 * CEILING  # every record of an admitted subject
    held = reasons(result, raws, people)
    assert set(held) == set(range(PEOPLE)) - crossed
    assert all(r == {f"volume_threshold: personal subjects of zone hk in 2025 reached the "
                     f"ceiling {CEILING}"} for r in held.values())
    # The delta: one personal entry per admitted subject, for this destination.
    assert sorted(e.subject for e in result.ledger) == sorted(
        subject_id(email(p), KEY) for p in crossed)
    assert {(e.zone, e.year, e.field_class, e.destination) for e in result.ledger} == {
        ("hk", 2025, FieldClass.PERSONAL, "eu")}
    assert [a.level for a in result.alerts] == ["reached"]


def test_a_replay_admits_the_same_subjects_and_counts_no_one_twice(tmp_path: Path) -> None:
    config = subjects_config(tmp_path, purposes=False)
    plan = plan_of(config)
    people = [i % PEOPLE for i in range(3 * PEOPLE)]
    raws = shipments(plan, people)
    dp = plan.datasets["trade.shipment"]
    first = pipeline.process(raws, plan, dp, NOW_MS,
                             subjects=inputs(config, plan, LedgerState(), None))
    ledger = LedgerState(first.ledger)  # written at step 2, applied after its ack
    # The destination commit failed: the same records again, in another order.
    again = pipeline.process(list(reversed(raws)), plan, dp, NOW_MS,
                             subjects=inputs(config, plan, ledger, None))
    assert crossed_people(again, raws, people) == crossed_people(first, raws, people)
    assert again.ledger == () and again.alerts == ()
    assert ledger.count("hk", 2025, FieldClass.PERSONAL) == CEILING


def test_consent_is_checked_after_the_rule_and_before_the_ledger(tmp_path: Path) -> None:
    config = subjects_config(tmp_path)
    plan = plan_of(config)
    people: list[int | None] = [0, 1, 2, 3, None, 0, 1, 2, 3]
    raws = shipments(plan, people)
    view = consent_view(granted=[0, 2], withdrawn=[1])  # 3 has no consent record
    result = pipeline.process(raws, plan, plan.datasets["trade.shipment"], NOW_MS,
                              subjects=inputs(config, plan, LedgerState(), view))
    result.check()
    assert crossed_people(result, raws, people) == {0, 2}
    assert reasons(result, raws, people) == {
        1: {f"consent_withdrawn: {PURPOSE}"}, 3: {"consent_missing"},
        None: {"subject_missing"}}
    # Only subjects whose data crossed are counted.
    assert {e.subject for e in result.ledger} == {subject_id(email(p), KEY) for p in (0, 2)}


def test_rows_the_rule_withholds_are_not_counted(tmp_path: Path) -> None:
    config = subjects_config(tmp_path, purposes=False)
    plan = plan_of(config)
    raws = shipments(plan, [0, 1])
    dp = plan.datasets["trade.shipment"]
    record = generate_rows("trade.shipment", 1, seed=3, withheld_share=0.0)[0]
    record.update(consent=False, contact_email=email(0))
    raws[0] = replace(raws[0], value=encode(record, dp.schema))
    result = pipeline.process(raws, plan, dp, NOW_MS,
                              subjects=inputs(config, plan, LedgerState(), None))
    assert [s.reason for s in result.withheld] == ["withhold: consent == false or category "
                                                   "== 'strategic'"]
    assert {e.subject for e in result.ledger} == {subject_id(email(1), KEY)}


def test_the_subject_id_never_crosses(tmp_path: Path) -> None:
    config = subjects_config(tmp_path, ceiling=100)
    people = list(range(5))
    for name in ("hk-eu", "hk-asean"):  # avro, and arrow (zstd: read it back to look)
        plan = plan_of(config, name)
        dp = plan.datasets["trade.shipment"]
        raws = shipments(plan, people)
        result = pipeline.process(raws, plan, dp, NOW_MS, subjects=inputs(
            config, plan, LedgerState(), consent_view(granted=people)))
        assert result.counts()["delivered"] == 5 and len({e.subject for e in result.ledger}) == 5
        ids = {subject_id(email(p), KEY).encode() for p in people}
        out = []
        for d in result.delivered:
            out += [d.key or b"", *(v or b"" for _, v in d.headers)]
            if plan.format is WireFormat.ARROW:
                table = pa.ipc.open_stream(d.value).read_all()
                assert set(table.column_names) - {f["name"] for f in dp.schema.raw["fields"]} \
                    <= {"_lineage_offset", "_key", "_timestamp"}
                out += [str(v).encode() for c in table.columns for v in c.to_pylist()]
            else:
                out.append(d.value)
        assert not any(i in chunk for i in ids for chunk in out), name


def test_a_dataset_naming_its_subject_is_never_decided_without_the_inputs(
        tmp_path: Path) -> None:
    config = subjects_config(tmp_path)
    plan = plan_of(config)
    with pytest.raises(PlanError, match="needs the subject inputs"):
        pipeline.process(shipments(plan, [0]), plan, plan.datasets["trade.shipment"], NOW_MS)
    with pytest.raises(PlanError, match="needs the subject inputs"):  # purposes, no view
        pipeline.process(shipments(plan, [0]), plan, plan.datasets["trade.shipment"], NOW_MS,
                         subjects=inputs(config, plan, LedgerState(), None))
