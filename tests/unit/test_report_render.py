"""`corridor report`'s outputs: the records of processing from the sample corridor file,
markdown, json and the self-contained HTML page, and the command's options."""

from __future__ import annotations

import datetime as dt
import json
import re
from pathlib import Path

import pytest
from click.testing import CliRunner

from corridor.cli import cli
from corridor.commands.report import parse_time
from corridor.core.config import Config, FieldClass
from corridor.core.config.instruments import KINDS
from corridor.core.report import (
    Window,
    build_report,
    chain_statuses,
    html_page,
    markdown,
    records_of_processing,
    register_document,
    register_layout,
    report_document,
    report_layout,
    split_log,
)
from tests.unit.report_fixtures import HOUR, T0, realistic_log, sample_config

TODAY = dt.date(2025, 6, 1)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return sample_config(tmp_path_factory.mktemp("render"))


@pytest.fixture(scope="module")
def doc(config: Config) -> dict:
    log = split_log(realistic_log())
    return report_document(build_report(log.events, config, Window(T0, T0 + 24 * HOUR),
                                        statuses=chain_statuses(log.chains),
                                        generated_ms=T0 + 30 * HOUR))


def register(config: Config) -> dict:
    return register_document(records_of_processing(config, TODAY), str(config.path), TODAY)


def test_records_of_processing_name_every_corridor_instrument_and_field_class(
        config: Config) -> None:
    found = register(config)
    entries = {e["corridor"]: e for e in found["corridors"]}
    assert set(entries) == set(config.corridors)
    assert {e["instrument"]["id"] for e in entries.values()} == set(config.instruments)
    for name, entry in entries.items():
        c = config.corridors[name]
        instrument = config.instruments[c.instrument or ""]
        assert entry["exporter"] == {"zone": c.origin,
                                     "jurisdiction": config.zones[c.origin].jurisdiction}
        assert entry["recipient"]["zone"] == c.destination
        assert entry["recipient"]["principals"] == [f"analytics-{c.destination}"]
        assert entry["purpose"] == instrument.purpose
        assert entry["retention_days"] == instrument.retention_days
        assert entry["legal_basis"] == c.legal_basis
        assert entry["instrument"]["kind"] in KINDS
        assert entry["instrument"]["state"] == "valid"
        assert [d["dataset"] for d in entry["datasets"]] == list(c.datasets)
        for d in entry["datasets"]:
            assert set(d["categories"]) == {fc.value for fc in FieldClass}
            assert d["safeguards"] == {p: t.value for p, t in c.transform[d["dataset"]].items()}
    hk_eu = {d["dataset"]: d for d in entries["hk-eu"]["datasets"]}
    order = hk_eu["ecommerce.order"]
    assert order["categories"]["sensitive"] == ["id_number"]
    assert "shipping_address.country" in order["categories"]["public"]
    assert "order_id" in order["categories"]["internal"]  # unlisted: internal
    assert order["key"] == {"class": "personal", "treatment": "pseudonymize"}
    assert order["unprotected"] == []
    # is_minor is personal and crosses asean-eu as it is (minors are withheld, not masked).
    playback = entries["asean-eu"]["datasets"][0]
    assert playback["unprotected"] == ["is_minor"]


def test_an_expired_instrument_shows_its_state(config: Config) -> None:
    later = dt.date(2034, 3, 1)
    states = {e["corridor"]: e["instrument"]["state"] for e in register_document(
        records_of_processing(config, later), "x", later)["corridors"]}
    assert states["hk-eu"] == "expired" and states["asean-eu"] == "valid"


def test_register_markdown_has_a_section_per_corridor(config: Config) -> None:
    text = markdown(register_layout(register(config)))
    for name, c in config.corridors.items():
        assert f"## Transfer {name}\n" in text
        assert config.instruments[c.instrument or ""].reference in text


def test_report_json_keys_are_the_documented_ones(doc: dict) -> None:
    assert set(doc) == {"kind", "window", "generated_ms", "generated", "ok", "reconciles",
                        "verified", "events", "replays", "conflicts", "outside_window",
                        "undecodable", "totals", "corridors"}
    assert set(doc["totals"]) == {"source", "delivered", "withheld", "quarantined",
                                  "withheld_by_reason", "quarantined_by_reason"}
    hk_eu = next(c for c in doc["corridors"] if c["corridor"] == "hk-eu")
    assert set(hk_eu) == {"corridor", "origin", "destination", "configured_instrument",
                          "reconciles", "verified", "totals", "instruments", "policies", "keys",
                          "chains"}
    assert doc["window"]["from"] == "2024-05-01T00:00:00.000Z"
    json.dumps(doc)  # plain JSON values only


def test_markdown_report(doc: dict) -> None:
    text = markdown(report_layout(doc))
    for c in doc["corridors"]:
        assert f"## Corridor {c['corridor']}\n" in text
    assert "### Under instrument hk-eu-rmc (HK-RMC, PCPD-RMC/ACME/2024-017" in text
    assert "Totals reconcile: yes; audit chains verified: yes." in text
    assert doc["totals"]["source"] == 4920 + 6 * 242 + 6 * 5000
    assert f"| all |  |  | {doc['totals']['source']} |" in text
    assert "hk-eu-dek-e2-4d5e6f70 | 2 |" in text


def test_markdown_escapes_pipes_in_reasons() -> None:
    from corridor.core.report.layout import Layout, Table
    text = markdown(Layout("t", [Table(("reason",), [("withhold: a | b",)])]))
    assert "| withhold: a \\| b |" in text


def test_html_is_one_self_contained_page(doc: dict) -> None:
    page = html_page(report_layout(doc))
    assert page.startswith("<!DOCTYPE html>") and page.count("<html") == 1
    lowered = page.lower()
    for external in ("http", "<script", "<link", "src=", "url(", "@import"):
        assert external not in lowered
    assert "@media print" in page and "break-before: page" in page
    sections = re.findall(r'<section class="corridor" id="corridor-([^"]+)" '
                          r'data-corridor="([^"]+)">\s*<h2>Corridor ([^<]+)</h2>', page)
    assert sorted(s[1] for s in sections) == sorted(c["corridor"] for c in doc["corridors"])
    assert all(a == b == c for a, b, c in sections)


def test_html_escapes_what_it_prints() -> None:
    from corridor.core.report.layout import Layout, Line
    page = html_page(Layout("t", [Line("withhold: category == '<b>x</b>' & more")]))
    assert "&lt;b&gt;x&lt;/b&gt;&#x27; &amp; more" in page and "<b>" not in page


@pytest.mark.parametrize(("text", "ms"), [
    ("1714521600000", T0), ("2024-05-01", T0), ("2024-05-01T00:00:00Z", T0),
    ("2024-05-01T08:00:00+08:00", T0), ("2024-05-01T01:00:00", T0 + HOUR)])
def test_times_as_epoch_ms_or_iso(text: str, ms: int) -> None:
    assert parse_time(text, "--from") == ms


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["report", *args])
    return result.exit_code, result.output


def test_cli_records_of_processing(config: Config, tmp_path: Path) -> None:
    code, out = run("-c", str(config.path), "--records-of-processing", "-o", "json")
    assert code == 0
    assert {e["corridor"] for e in json.loads(out)["corridors"]} == set(config.corridors)
    target = tmp_path / "register.md"
    code, _ = run("-c", str(config.path), "--records-of-processing", "--out", str(target))
    assert code == 0 and target.read_text().startswith("# Records of processing")


@pytest.mark.parametrize(("args", "message"), [
    ((), "--from and --to are required"),
    (("--from", "yesterday", "--to", "2024-05-02"), "neither epoch milliseconds nor ISO-8601"),
    (("--from", "2024-05-02", "--to", "2024-05-01"), "is not after --from"),
    (("--from", "2024-05-01", "--to", "2024-05-02", "--corridor", "hk-eu", "--zone", "hk"),
     "exclude each other"),
    (("-o", "pdf", "--records-of-processing"), "'pdf' is not one of"),
])
def test_cli_refuses_bad_options(config: Config, args: tuple[str, ...], message: str) -> None:
    code, out = run("-c", str(config.path), *args)
    assert code == 2 and message in out
