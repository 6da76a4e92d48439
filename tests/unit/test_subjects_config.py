"""Data subjects in the corridor file: subject, thresholds, purposes, erasable; each refusal
with its line and field; the plan carries them; the policy hash follows what changes what
crosses."""

from __future__ import annotations

from pathlib import Path

import pytest

from corridor.core.config import OnReach, Thresholds
from corridor.core.crypto import FieldCipher
from corridor.core.errors import ConfigErrors
from corridor.core.plan import build_plan
from tests.unit.config_fixtures import HK_EU, SHIP, CorridorFile, line_of, only_error
from tests.unit.plan_fixtures import SECRET, data_key

# Lines of BASE are asserted below, found by their text.
BASE = f"""\
zones:
  hk:
    bootstrap: 127.0.0.1:19092
    jurisdiction: HK
    thresholds: {{personal: 100, sensitive: 10, on_reach: withhold-new-subjects}}
  eu: {{bootstrap: 127.0.0.1:29092, jurisdiction: EU}}
datasets:
  trade.shipment:
    schema: {SHIP}
    subject: contact_email
    fields:
      contact_name: personal
      contact_email: personal
      national_id: sensitive
      hs_code: public
      declared_value: personal
""" + HK_EU + """\
    purposes: [order-fulfilment, customs]
    erasable: [contact_email]
    transform:
      contact_email: encrypt
      contact_name: pseudonymize
      national_id: drop
"""
THRESHOLDS_LINE, SUBJECT_LINE, DATASETS_LINE, PURPOSES_LINE, ERASABLE_LINE = (
    line_of(BASE, line) for line in (
        "thresholds: {personal: 100, sensitive: 10, on_reach: withhold-new-subjects}",
        "subject: contact_email", "datasets: [trade.shipment]",
        "purposes: [order-fulfilment, customs]", "erasable: [contact_email]"))
BASE_FILE = CorridorFile(BASE)
edit, load = BASE_FILE.edit, BASE_FILE.load


def test_the_settings_load_and_the_plan_carries_them(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.zones["hk"].thresholds == Thresholds(100, 10, OnReach.WITHHOLD_NEW_SUBJECTS)
    assert config.zones["eu"].thresholds is None
    assert config.datasets["trade.shipment"].subject == "contact_email"
    corridor = config.corridors["hk-eu"]
    assert corridor.purposes == ("order-fulfilment", "customs")
    assert corridor.erasable == {"trade.shipment": frozenset({"contact_email"})}
    plan = build_plan(config, "hk-eu", FieldCipher(data_key("hk-eu")), SECRET)
    assert plan.purposes == corridor.purposes and plan.thresholds == config.zones["hk"].thresholds
    dataset = plan.datasets["trade.shipment"]
    assert dataset.subject == "contact_email" and dataset.erasable == {"contact_email"}


def test_defaults_warn_and_an_optional_class(tmp_path: Path) -> None:
    text = edit("{personal: 100, sensitive: 10, on_reach: withhold-new-subjects}",
                "{personal: 100}")
    assert load(tmp_path, text).zones["hk"].thresholds == Thresholds(100, None, OnReach.WARN)


def test_a_subject_of_another_type_is_refused(tmp_path: Path) -> None:
    text = edit("    subject: contact_email\n", "    subject: declared_value\n")
    with pytest.raises(ConfigErrors, match="declared_value is double"):
        load(tmp_path, text)


@pytest.mark.parametrize("new, says", [
    ("subject: contact_mail", "field 'contact_mail' is not in the schema (did you mean "
                              "'contact_email'?)"),
    ("subject: hs_code", "subject field hs_code is public: a subject is a person"),
    ("subject: shipment_id", "subject field shipment_id is internal"),
    ("subject: [contact_email]", "expected the path of the field naming the data subject"),
])
def test_bad_subject(tmp_path: Path, new: str, says: str) -> None:
    error = only_error(tmp_path, edit("subject: contact_email", new))
    assert (error.line, error.field) == (SUBJECT_LINE, "datasets.trade.shipment.subject")
    assert says in error.message


@pytest.mark.parametrize("new, field, says", [
    ("{personal: 0}", "zones.hk.thresholds.personal", "expected a number of subjects >= 1"),
    ("{personal: 10, on_reach: withold}", "zones.hk.thresholds.on_reach",
     "bad on_reach 'withold'"),
    ("{on_reach: warn}", "zones.hk.thresholds", "expected personal, sensitive or both"),
    ("{personel: 10}", "zones.hk.thresholds.personel", "unknown key 'personel'"),
    ("100", "zones.hk.thresholds", "expected {personal: N"),
])
def test_bad_thresholds(tmp_path: Path, new: str, field: str, says: str) -> None:
    text = edit("{personal: 100, sensitive: 10, on_reach: withhold-new-subjects}", new)
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (THRESHOLDS_LINE, field)
    assert says in error.message


@pytest.mark.parametrize("new, says", [
    ("purposes: order-fulfilment", "expected a list of purposes"),
    ("purposes: []", "expected a list of purposes"),
    ("purposes: [Order Fulfilment]", "bad purpose 'Order Fulfilment'"),
    ("purposes: [customs, customs]", "purpose customs is listed twice"),
])
def test_bad_purposes(tmp_path: Path, new: str, says: str) -> None:
    error = only_error(tmp_path, edit("purposes: [order-fulfilment, customs]", new))
    assert (error.line, error.field) == (PURPOSES_LINE, "corridors.hk-eu.purposes")
    assert says in error.message


def test_the_consent_staleness_bound_defaults_to_30_s_and_can_be_set(tmp_path: Path) -> None:
    assert load(tmp_path).corridors["hk-eu"].consent_staleness_s == 30
    text = edit("purposes: [order-fulfilment, customs]",
                "purposes: [order-fulfilment, customs]\n    consent_staleness_seconds: 5")
    assert load(tmp_path, text).corridors["hk-eu"].consent_staleness_s == 5


@pytest.mark.parametrize("value, says", [
    ("0", "expected whole seconds from 1 to 300, got a number (0)"),
    ("301", "expected whole seconds from 1 to 300, got a number (301)"),
    ("30s", "expected whole seconds from 1 to 300, got '30s'"),
])
def test_a_bad_consent_staleness_bound_is_refused(tmp_path: Path, value: str, says: str) -> None:
    text = edit("purposes: [order-fulfilment, customs]",
                f"purposes: [order-fulfilment, customs]\n    consent_staleness_seconds: {value}")
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (PURPOSES_LINE + 1,
                                         "corridors.hk-eu.consent_staleness_seconds")
    assert says in error.message


def test_a_consent_staleness_bound_without_purposes_is_refused(tmp_path: Path) -> None:
    text = edit("purposes: [order-fulfilment, customs]", "consent_staleness_seconds: 5")
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (PURPOSES_LINE,
                                         "corridors.hk-eu.consent_staleness_seconds")
    assert "declare purposes" in error.message


def test_purposes_erasable_and_thresholds_need_the_datasets_subject(tmp_path: Path) -> None:
    text = edit("    subject: contact_email\n", "")  # one line fewer above the corridor
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (ERASABLE_LINE - 1, "corridors.hk-eu.erasable")
    assert "erasable needs the subject of trade.shipment" in error.message
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, edit("    erasable: [contact_email]\n", "", text))
    found = {(e.line, e.field): e.message for e in info.value.errors}
    assert "must name its subject (subject: <field>) on a corridor with purposes" in found[
        (PURPOSES_LINE - 1, "corridors.hk-eu.purposes")]
    assert "zone hk counts data subjects (thresholds:)" in found[
        (DATASETS_LINE - 1, "corridors.hk-eu.datasets")]
    assert len(found) == 2


def test_a_zone_without_thresholds_and_a_corridor_without_purposes_need_no_subject(
    tmp_path: Path,
) -> None:
    text = edit("    subject: contact_email\n", "")
    text = edit("    thresholds: {personal: 100, sensitive: 10, on_reach: withhold-new-subjects}\n",
                "", text)
    text = edit("    purposes: [order-fulfilment, customs]\n    erasable: [contact_email]\n", "",
                text)
    assert load(tmp_path, text).corridors["hk-eu"].purposes == ()


@pytest.mark.parametrize("new, says", [
    ("erasable: [contact_name]", "erasable field contact_name of trade.shipment must be "
                                 "encrypted: add transform: {contact_name: encrypt}"),
    ("erasable: [contact_mail]", "field 'contact_mail' is not in any dataset of this corridor"),
    ("erasable: contact_email", "expected a list of field paths"),
])
def test_bad_erasable(tmp_path: Path, new: str, says: str) -> None:
    error = only_error(tmp_path, edit("erasable: [contact_email]", new))
    assert (error.line, error.field) == (ERASABLE_LINE, "corridors.hk-eu.erasable")
    assert says in error.message


def test_erasable_needs_the_avro_format(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("    legal_basis: DEPA\n",
                                      "    legal_basis: DEPA\n    format: arrow\n"))
    assert (error.line, error.field) == (ERASABLE_LINE + 1, "corridors.hk-eu.erasable")
    assert "erasable fields need per-value encryption: use format: avro" in error.message


def test_erasable_per_dataset_adds_to_the_corridors(tmp_path: Path) -> None:
    text = edit("    datasets: [trade.shipment]\n",
                "    datasets:\n      trade.shipment: {erasable: [national_id]}\n")
    text = edit("      national_id: drop\n", "      national_id: encrypt\n", text)
    corridor = load(tmp_path, text).corridors["hk-eu"]
    assert corridor.erasable["trade.shipment"] == {"contact_email", "national_id"}
    bad = edit("{erasable: [national_id]}", "{erasable: [nope]}", text)
    error = only_error(tmp_path, bad)
    assert (error.field, error.line) == ("corridors.hk-eu.datasets.trade.shipment.erasable",
                                         DATASETS_LINE + 1)
    assert "field 'nope' is not in dataset trade.shipment" in error.message


def hash_of(tmp_path: Path, text: str) -> str:
    return load(tmp_path, text).corridors["hk-eu"].policy_hash


def test_policy_hash_follows_what_changes_what_crosses(tmp_path: Path) -> None:
    base = hash_of(tmp_path, BASE)
    changed = [
        edit("subject: contact_email", "subject: contact_name"),
        edit("[order-fulfilment, customs]", "[customs, order-fulfilment]"),
        edit("    erasable: [contact_email]\n", ""),
        edit("personal: 100, sensitive: 10", "personal: 101, sensitive: 10"),
        edit("on_reach: withhold-new-subjects", "on_reach: warn"),
    ]
    hashes = [hash_of(tmp_path, text) for text in changed]
    assert base not in hashes and len(set(hashes)) == len(hashes)
    warn = edit("on_reach: withhold-new-subjects", "on_reach: warn")
    assert hash_of(tmp_path, edit("personal: 100", "personal: 5", warn)) == hash_of(tmp_path, warn)
