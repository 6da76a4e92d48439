"""Transfer instruments in the corridor file: parsing, each refusal with line and field,
zone rules, the instrument's state, and the policy hash."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest

from corridor.core.config import Instrument, instrument_state, load_config
from corridor.core.config.instruments import zone_misfit
from corridor.core.errors import ConfigErrors
from tests.unit.config_fixtures import HEAD, REPO, CorridorFile, line_of, only_error

# Lines of BASE are asserted below, found by their text.
BASE = HEAD + """\
    fields:
      contact_name: personal
      national_id: sensitive
      hs_code: public
instruments:
  hk-eu-rmc:
    kind: HK-RMC
    reference: PCPD-RMC/2024-017
    parties: [Acme HK, Acme EU]
    signed: 2024-03-01
    expires: 2034-02-28
    purpose: order fulfilment
    retention: 3y
corridors:
  hk-eu:
    from: hk
    to: eu
    datasets: [trade.shipment]
    legal_basis: PDPO-RMCC
    instrument: hk-eu-rmc
    transform:
      contact_name: pseudonymize
      national_id: drop
"""
RMC_LINE, KIND_LINE, EXPIRES_LINE, RETENTION_LINE, CORRIDOR_LINE, INSTRUMENT_LINE = (
    line_of(BASE, line) for line in ("hk-eu-rmc:", "kind: HK-RMC", "expires: 2034-02-28",
                                     "retention: 3y", "hk-eu:", "instrument: hk-eu-rmc"))
BASE_FILE = CorridorFile(BASE)
edit, load = BASE_FILE.edit, BASE_FILE.load


def instrument(expires: dt.date, kind: str = "HK-RMC") -> Instrument:
    return Instrument("x", kind, "ref", ("a", "b"), dt.date(2020, 1, 1), expires, "p", 365)


# --- valid ------------------------------------------------------------------------------------


def test_instrument_is_parsed_and_named_by_the_corridor(tmp_path: Path) -> None:
    config = load(tmp_path)
    inst = config.instruments["hk-eu-rmc"]
    assert inst == Instrument("hk-eu-rmc", "HK-RMC", "PCPD-RMC/2024-017", ("Acme HK", "Acme EU"),
                              dt.date(2024, 3, 1), dt.date(2034, 2, 28), "order fulfilment",
                              3 * 365)
    assert config.corridors["hk-eu"].instrument == "hk-eu-rmc"


@pytest.mark.parametrize(("text", "days"), [("90", 90), ("90d", 90), ("2w", 14), ("18m", 540),
                                            ("1y", 365), ("'2034-01-01'", None)])
def test_retention_forms(tmp_path: Path, text: str, days: int | None) -> None:
    if days is None:  # a quoted date for expires is accepted too
        config = load(tmp_path, edit("expires: 2034-02-28", f"expires: {text}"))
        assert config.instruments["hk-eu-rmc"].expires == dt.date(2034, 1, 1)
        return
    config = load(tmp_path, edit("retention: 3y", f"retention: {text}"))
    assert config.instruments["hk-eu-rmc"].retention_days == days


def test_a_file_without_instruments_still_loads(tmp_path: Path) -> None:
    text = BASE.replace("    instrument: hk-eu-rmc\n", "")
    text = text[:text.index("instruments:")] + text[text.index("corridors:"):]
    assert load(tmp_path, text).corridors["hk-eu"].instrument is None


def test_a_corridor_without_personal_data_needs_no_instrument(tmp_path: Path) -> None:
    text = edit("    instrument: hk-eu-rmc\n", "")
    text = edit("      contact_name: pseudonymize\n", "      contact_name: drop\n", text)
    text = edit("datasets: [trade.shipment]\n", "datasets: [trade.shipment]\n    key: drop\n",
                text)
    assert load(tmp_path, text).corridors["hk-eu"].instrument is None


def test_the_sample_file_names_an_instrument_on_every_corridor() -> None:
    config = load_config(REPO / "corridors.yaml")
    for corridor in config.corridors.values():
        assert corridor.instrument in config.instruments, corridor.name
        assert instrument_state(config.instruments[corridor.instrument],
                                dt.date(2026, 1, 1)) == "valid"


# --- refusals ---------------------------------------------------------------------------------


def test_unknown_instrument_id(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("instrument: hk-eu-rmc", "instrument: hk-eu-rcm"))
    assert (error.line, error.field) == (INSTRUMENT_LINE, "corridors.hk-eu.instrument")
    assert "unknown instrument 'hk-eu-rcm' (did you mean 'hk-eu-rmc'?)" in error.message


def test_personal_data_without_an_instrument(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("    instrument: hk-eu-rmc\n", ""))
    assert (error.line, error.field) == (CORRIDOR_LINE, "corridors.hk-eu.instrument")
    assert "carries personal or sensitive data" in error.message


def test_a_personal_record_key_alone_needs_an_instrument(tmp_path: Path) -> None:
    text = edit("    instrument: hk-eu-rmc\n", "")
    text = edit("      contact_name: pseudonymize\n", "      contact_name: drop\n", text)
    error = only_error(tmp_path, text)  # the key is undeclared, so personal, and pseudonymized
    assert error.field == "corridors.hk-eu.instrument"


def test_kind_that_does_not_fit_the_zones(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("kind: HK-RMC", "kind: EU-SCC"))
    assert (error.line, error.field) == (INSTRUMENT_LINE, "corridors.hk-eu.instrument")
    assert "EU-SCC, which governs transfers from the EU/EEA" in error.message
    assert "hk HK -> eu EU" in error.message


def test_expires_before_signed(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("expires: 2034-02-28", "expires: 2023-02-28"))
    assert (error.line, error.field) == (EXPIRES_LINE, "instruments.hk-eu-rmc.expires")
    assert "before signed 2024-03-01" in error.message


def test_unknown_kind_with_did_you_mean(tmp_path: Path) -> None:
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, edit("kind: HK-RMC", "kind: HK-RMCC"))
    first = info.value.errors[0]  # the corridor's reference to it is not reported again
    assert len(info.value.errors) == 1
    assert (first.line, first.field) == (KIND_LINE, "instruments.hk-eu-rmc.kind")
    assert "unknown instrument kind 'HK-RMCC' (did you mean 'HK-RMC'?)" in first.message


def test_bad_retention_and_bad_date(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("retention: 3y", "retention: forever"))
    assert (error.line, error.field) == (RETENTION_LINE, "instruments.hk-eu-rmc.retention")
    error = only_error(tmp_path, edit("expires: 2034-02-28", "expires: next year"))
    assert (error.line, error.field) == (EXPIRES_LINE, "instruments.hk-eu-rmc.expires")


def test_missing_field_and_unknown_key(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("    purpose: order fulfilment\n", ""))
    assert (error.line, error.field) == (RMC_LINE, "instruments.hk-eu-rmc.purpose")
    error = only_error(tmp_path, edit("    retention: 3y\n", "    retention: 3y\n    scope: x\n"))
    assert (error.line, error.field) == (RETENTION_LINE + 1, "instruments.hk-eu-rmc.scope")


@pytest.mark.parametrize(("kind", "origin", "destination", "fits"), [
    ("GBA-SC", "CN-GD", "HK", True), ("GBA-SC", "MO", "CN-GD", True),
    ("GBA-SC", "HK", "EU", False), ("GBA-SC", "CN-GD", "SG", False),
    ("CN-SC", "CN-GD", "HK", True), ("CN-SA", "HK", "CN-GD", False),
    ("CN-CERT", "CN", "CN-GD", False),
    ("EU-SCC", "EU", "HK", True), ("EU-SCC", "DE", "SG", True), ("EU-SCC", "HK", "EU", False),
    ("EU-SCC", "EU", "FR", False),
    ("HK-RMC", "HK", "SG", True), ("HK-RMC", "SG", "HK", False),
    ("ASEAN-MCC", "SG", "EU", True), ("ASEAN-MCC", "HK", "SG", False),
    ("CBPR", "SG", "HK", True),
])
def test_zone_rules(kind: str, origin: str, destination: str, fits: bool) -> None:
    assert (zone_misfit(kind, origin, destination) is None) is fits


# --- state and policy hash --------------------------------------------------------------------


def test_instrument_state() -> None:
    inst = instrument(dt.date(2030, 6, 30))
    assert instrument_state(inst, dt.date(2030, 5, 30)) == "valid"  # 31 days left
    assert instrument_state(inst, dt.date(2030, 5, 31)) == "expiring"  # 30 days left
    assert instrument_state(inst, dt.date(2030, 6, 30)) == "expiring"  # last day in force
    assert instrument_state(inst, dt.date(2030, 7, 1)) == "expired"
    assert instrument_state(inst, dt.datetime(2030, 7, 1, 0, 0)) == "expired"


def test_policy_hash_changes_with_the_instrument(tmp_path: Path) -> None:
    base = load(tmp_path).corridors["hk-eu"].policy_hash
    renewed = load(tmp_path, edit("expires: 2034-02-28", "expires: 2035-02-28"))
    assert renewed.corridors["hk-eu"].policy_hash != base
    other = edit("instrument: hk-eu-rmc", "instrument: hk-eu-rmc2",
                 edit("  hk-eu-rmc:\n", "  hk-eu-rmc2:\n"))
    assert load(tmp_path, other).corridors["hk-eu"].policy_hash != base
    same = edit("purpose: order fulfilment", "purpose: fulfilment of orders")
    assert load(tmp_path, same).corridors["hk-eu"].policy_hash == base  # not what crosses
