"""`corridor subjects count`: the ledger records folded and shown per zone, year and class
against the thresholds (values; the command's Kafka reading is the integration tests')."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from corridor.cli import cli
from corridor.commands.subjects import count_rows
from corridor.core.config import FieldClass, OnReach, Thresholds
from corridor.core.subjects import LedgerEntry, fold_ledger, ledger_record

REPO = Path(__file__).resolve().parents[2]
P, S = FieldClass.PERSONAL, FieldClass.SENSITIVE


def keys(*entries: LedgerEntry) -> list[bytes | None]:
    return [ledger_record(e, "hk-eu")[0] for e in entries]


def test_rows_count_distinct_subjects_whatever_the_destination() -> None:
    records = keys(
        *(LedgerEntry("hk", 2025, P, "eu", f"s{i:02d}") for i in range(85)),
        *(LedgerEntry("hk", 2025, P, "asean", f"s{i:02d}") for i in range(10)),  # counted once
        LedgerEntry("hk", 2025, S, "eu", "s01"),
        LedgerEntry("hk", 2024, P, "eu", "s01"),
        LedgerEntry("asean", 2025, P, "hk", "x"),
    ) + [b"not a ledger key", None]
    state, ignored = fold_ledger(records + records)  # a replay changes nothing
    assert ignored == 4
    limits = {"hk": Thresholds(100, None, OnReach.WITHHOLD_NEW_SUBJECTS), "asean": None}
    rows = count_rows(state, limits, zone="hk", year=2025)
    assert rows == [
        {"zone": "hk", "year": 2025, "class": "personal", "subjects": 85, "ceiling": 100,
         "level": "warning", "on_reach": "withhold-new-subjects",
         "destinations": {"asean": 10, "eu": 85}},
        {"zone": "hk", "year": 2025, "class": "sensitive", "subjects": 1, "ceiling": None,
         "level": None, "on_reach": "withhold-new-subjects", "destinations": {"eu": 1}},
    ]
    assert [(r["zone"], r["year"]) for r in count_rows(state, limits)] == [
        ("asean", 2025), ("hk", 2024), ("hk", 2025), ("hk", 2025)]


def test_help_and_an_unknown_zone() -> None:
    runner = CliRunner()
    shown = runner.invoke(cli, ["subjects", "count", "--help"])
    assert shown.exit_code == 0 and "--year" in shown.output and "-o, --output" in shown.output
    bad = runner.invoke(cli, ["subjects", "count", "--zone", "mars", "-c",
                              str(REPO / "corridors.yaml")])
    assert bad.exit_code == 2 and "unknown zone 'mars'" in bad.output
