"""A corridor file whose shipments name their subject, with consent purposes and a ceiling,
and batches of shipments by a known set of people (shared by the subject tests)."""

from __future__ import annotations

from pathlib import Path

from corridor.core.config import Config, load_config
from corridor.core.consent import Consent, ConsentRecord, ConsentView, PurposeConsent
from corridor.core.model import Lineage, RawMessage
from corridor.core.plan import CorridorPlan
from corridor.core.policy.subjects import SubjectInputs, ledger_classes
from corridor.core.subjects import LedgerState, subject_id, subject_key
from corridor.dev.sample import encode, generate_rows
from corridor.kafka.io import Record
from corridor.kafka.ledger import Ends
from tests.unit.plan_fixtures import CONFIG, plan_for

PURPOSE = "order-fulfilment"
KEY = subject_key("hk", b"subject secret for the unit tests")
NOW_MS = 1_750_000_000_000  # in 2025
CEILING = 6


def subjects_config(tmp_path: Path, ceiling: int = CEILING, on_reach: str =
                    "withhold-new-subjects", purposes: bool = True) -> Config:
    text = CONFIG.replace(
        "hk: {bootstrap: 127.0.0.1:19092, jurisdiction: HK}",
        "hk: {bootstrap: 127.0.0.1:19092, jurisdiction: HK, thresholds: "
        f"{{personal: {ceiling}, on_reach: {on_reach}}}}}").replace(
        '    validate: ["declared_value >= 0"]\n',
        '    validate: ["declared_value >= 0"]\n    subject: contact_email\n')
    if purposes:
        text = text.replace("    legal_basis: DEPA\n",
                            f"    legal_basis: DEPA\n    purposes: [{PURPOSE}]\n")
    path = tmp_path / "corridors.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def email(person: int) -> str:
    return f"person{person}@example.org"


def shipments(plan: CorridorPlan, people: list[int | None], partition: int = 0,
              first: int = 0) -> list[RawMessage]:
    """One shipment per entry, by that person (None: no contact email), consent true and a
    category the rule lets cross, at offsets first, first + 1, ..."""
    dp = plan.datasets["trade.shipment"]
    rows = generate_rows("trade.shipment", len(people), seed=3, withheld_share=0.0)
    out = []
    for i, (row, person) in enumerate(zip(rows, people, strict=True)):
        row["contact_email"] = None if person is None else email(person)
        out.append(RawMessage(Lineage(dp.source_topic, partition, first + i),
                              encode(row, dp.schema), f"k{first + i}".encode(), NOW_MS))
    return out


def consent_view(granted: list[int], withdrawn: list[int] = ()) -> ConsentView:
    view = ConsentView()
    for offset, person in enumerate([*granted, *withdrawn]):
        state = PurposeConsent(1, 2 if person in withdrawn else None)
        value = Consent({PURPOSE: state}).to_json()
        view.apply(ConsentRecord(subject_id(email(person), KEY), value, 0, offset, 1))
    view.caught_up(NOW_MS)
    return view


def inputs(config: Config, plan: CorridorPlan, ledger: LedgerState,
           view: ConsentView | None) -> SubjectInputs:
    return SubjectInputs(KEY, ledger_classes(config, plan), ledger, view)


def plan_of(config: Config, name: str = "hk-eu") -> CorridorPlan:
    return plan_for(config, name)


class Feed:
    """A compacted topic as the gate follows it: what was written, read in order."""

    def __init__(self, records: list[Record] | None = None) -> None:
        self.records = records if records is not None else []
        self.read = 0
        self.blocked = (0.0, 0.0)  # reached() is False in this window of clock time
        self.clock = lambda: 0.0

    def poll(self, timeout_s: float = 0.5, max_records: int = 500) -> list[Record]:
        out, self.read = self.records[self.read:], len(self.records)
        return out

    def end_offsets(self) -> Ends:
        return {0: (0, len(self.records))}

    def reached(self, ends: Ends) -> bool:
        start, end = self.blocked
        return not start <= self.clock() < end and self.read >= ends[0][1]

    def close(self) -> None:
        pass
