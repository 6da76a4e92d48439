"""corridors.yaml: the sample file, every error class with its exact line, policy hash, CLI."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from corridor.commands.validate import validate
from corridor.core.config import FieldClass, RecordKind, Transform, WireFormat, load_config
from corridor.core.errors import ConfigErrors
from tests.unit.config_fixtures import (
    HEAD,
    HK_EU,
    REPO,
    SHIP,
    CorridorFile,
    errors_of,
    load_text,
    only_error,
    write,
)

ORDER = REPO / "schemas" / "ecommerce" / "order.avsc"
PLAY = REPO / "schemas" / "media" / "playback.avsc"

# Line numbers of BASE are asserted below: keep its layout (HEAD is lines 1-6, HK_EU 12-17).
BASE = HEAD + """\
    fields:
      contact_name: personal
      national_id: sensitive
      hs_code: public
    record_class: {field: category, important_when: "category == 'strategic'"}
""" + HK_EU + """\
    format: avro
    withhold: "consent == false"
    transform:
      contact_name: pseudonymize
      national_id: drop
"""
edit = CorridorFile(BASE).edit


# --- valid files ----------------------------------------------------------------------------


def test_sample_corridors_yaml_loads() -> None:
    config = load_config(REPO / "corridors.yaml")
    assert (len(config.zones), len(config.datasets), len(config.corridors)) == (3, 3, 5)
    assert config.zones["asean"].jurisdiction == "SG"
    assert config.zones["eu"].bootstrap == "127.0.0.1:29092"
    hk_eu = config.corridors["hk-eu"]
    assert hk_eu.datasets == ("trade.shipment", "ecommerce.order")
    assert hk_eu.withhold["trade.shipment"].text == "consent == false or category == 'strategic'"
    assert hk_eu.withhold["ecommerce.order"].text == "consent == false"
    assert hk_eu.transform["ecommerce.order"]["id_number"] is Transform.DROP
    hk_asean = config.corridors["hk-asean"]
    assert hk_asean.admit == frozenset({RecordKind.NORMAL})
    # corridor-level transforms apply to each dataset where the field exists
    assert set(hk_asean.transform["trade.shipment"]) == {
        "contact_name",
        "contact_email",
        "national_id",
    }
    assert set(hk_asean.transform["media.playback"]) == {"user_id", "device_id", "ip_address"}
    assert config.corridors["asean-eu"].format is WireFormat.ARROW
    assert config.corridors["asean-eu"].batch.max_records == 5000


def test_base_loads_with_defaults(tmp_path: Path) -> None:
    config = load_text(tmp_path, BASE)
    corridor = config.corridors["hk-eu"]
    assert corridor.origin == "hk" and corridor.destination == "eu"
    assert corridor.admit == frozenset(RecordKind)
    assert corridor.pseudonym_key == "hk-eu.pseudonym"
    assert corridor.batch.max_records == 10000
    assert config.zones["hk"].keys.provider == "local"
    assert config.zones["hk"].keys.path == tmp_path / ".corridor" / "keys" / "hk"
    dataset = config.datasets["trade.shipment"]
    assert dataset.schema.name == "trade.shipment"
    assert dataset.record_class is not None and dataset.record_class.field == "category"


def test_field_classes_default_and_inherit(tmp_path: Path) -> None:
    text = edit("      hs_code: public\n", "      hs_code: public\n      location: public\n")
    dataset = load_text(tmp_path, text).datasets["trade.shipment"]
    assert dataset.class_of("national_id") is FieldClass.SENSITIVE
    assert dataset.class_of("declared_value") is FieldClass.INTERNAL  # unlisted
    assert dataset.class_of("location.port") is FieldClass.PUBLIC  # inherited
    assert FieldClass.SENSITIVE.rank > FieldClass.PERSONAL.rank > FieldClass.PUBLIC.rank


def test_vault_key_provider(tmp_path: Path) -> None:
    text = edit(
        "  eu: {bootstrap: 127.0.0.1:29092, jurisdiction: EU}\n",
        "  eu:\n    bootstrap: 127.0.0.1:29092\n    jurisdiction: EU\n"
        "    keys: {provider: vault, addr: 'http://127.0.0.1:8200', transit_key: eu-kek}\n",
    )
    keys = load_text(tmp_path, text).zones["eu"].keys
    assert (keys.provider, keys.addr, keys.transit_key, keys.token_env) == (
        "vault",
        "http://127.0.0.1:8200",
        "eu-kek",
        "VAULT_TOKEN",
    )


# --- every error class, with its line ------------------------------------------------------


def test_unknown_top_level_key(tmp_path: Path) -> None:
    error = only_error(tmp_path, BASE + "zone: {}\n")
    assert (error.line, error.field) == (23, "zone")
    assert error.message == "unknown key 'zone' (did you mean 'zones'?)"


def test_unknown_nested_key_suggests(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit('    withhold: "consent', '    withold: "consent'))
    assert (error.line, error.field) == (19, "corridors.hk-eu.withold")
    assert error.message == "unknown key 'withold' (did you mean 'withhold'?)"


def test_unknown_zone(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("    to: eu\n", "    to: europe\n"))
    assert (error.line, error.field) == (15, "corridors.hk-eu.to")
    assert error.message == "unknown zone 'europe' (declared zones: eu, hk)"


def test_unknown_dataset(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("[trade.shipment]", "[trade.shipments]"))
    assert (error.line, error.field) == (16, "corridors.hk-eu.datasets")
    assert "unknown dataset 'trade.shipments' (did you mean 'trade.shipment'?)" in error.message


def test_dataset_listed_twice(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, edit("[trade.shipment]", "[trade.shipment,\n      trade.shipment]")
    )
    assert (error.line, error.field) == (17, "corridors.hk-eu.datasets")
    assert error.message == "dataset trade.shipment is listed twice"


def test_missing_schema_file(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit(str(SHIP), "schemas/nope.avsc"))
    assert (error.line, error.field) == (6, "datasets.trade.shipment.schema")
    assert error.message.startswith("schema file not found:") and "nope.avsc" in error.message


def test_invalid_schema(tmp_path: Path) -> None:
    (tmp_path / "bad.avsc").write_text('{"type": "record", "name": "x", "fields": [{"name": "a"}]}')
    error = only_error(tmp_path, edit(str(SHIP), "bad.avsc"))
    assert (error.line, error.field) == (6, "datasets.trade.shipment.schema")
    assert error.message.startswith("invalid schema")


def test_classified_field_missing_from_schema(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("      hs_code: public", "      hs_cod: public"))
    assert (error.line, error.field) == (10, "datasets.trade.shipment.fields.hs_cod")
    assert error.message == "field 'hs_cod' is not in the schema (did you mean 'hs_code'?)"


def test_unknown_field_class(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("      hs_code: public", "      hs_code: publik"))
    assert (error.line, error.field) == (10, "datasets.trade.shipment.fields.hs_code")
    assert error.message.startswith("unknown field class 'publik' (did you mean 'public'?)")


def test_transform_on_field_schema_lacks(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("      contact_name: pseudo", "      contact_nam: pseudo"))
    assert (error.line, error.field) == (21, "corridors.hk-eu.transform.contact_nam")
    assert error.message == (
        "field 'contact_nam' is not in any dataset of this corridor "
        "(trade.shipment) (did you mean 'contact_name'?)"
    )


def test_unknown_transform(tmp_path: Path) -> None:
    # the bad entry is refused (no second "would leak" error for the same field)
    error = only_error(tmp_path, edit("national_id: drop", "national_id: encrypted"))
    assert (error.line, error.field) == (22, "corridors.hk-eu.transform.national_id")
    assert error.message.startswith("unknown transform 'encrypted' (did you mean 'encrypt'?)")


def test_rule_syntax_error(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit('"consent == false"', '"consent = false"'))
    assert (error.line, error.field) == (19, "corridors.hk-eu.withhold")
    assert error.message.startswith('bad rule "consent = false": ')
    assert "column" in error.message


def test_rule_unknown_field(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit('"consent == false"', '"consnt == false"'))
    assert (error.line, error.field) == (19, "corridors.hk-eu.withhold")
    assert "consnt" in error.message


def test_rule_type_mismatch(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit('"consent == false"', "\"declared_value == 'x'\""))
    assert (error.line, error.field) == (19, "corridors.hk-eu.withhold")
    assert error.message.startswith("bad rule \"declared_value == 'x'\": ")


def test_record_class_rule_error(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("category == 'strategic'", "categry == 'strategic'"))
    assert (error.line, error.field) == (11, "datasets.trade.shipment.record_class.important_when")


def test_corridor_to_itself(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("    to: eu\n", "    to: hk\n"))
    assert (error.line, error.field) == (15, "corridors.hk-eu.to")
    assert "from zone hk to itself" in error.message


def test_sensitive_field_without_transform_is_refused(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("      national_id: drop\n", ""))
    assert (error.line, error.field) == (20, "corridors.hk-eu.transform.national_id")
    assert error.message.startswith(
        "would leak sensitive field national_id of trade.shipment to eu; add a transform (drop,"
    )


def test_leak_with_no_transform_section_points_at_corridor(tmp_path: Path) -> None:
    text = edit("    transform:\n      contact_name: pseudonymize\n      national_id: drop\n", "")
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (13, "corridors.hk-eu.transform.national_id")


def test_bad_format(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("format: avro", "format: parquet"))
    assert (error.line, error.field) == (18, "corridors.hk-eu.format")
    assert error.message == "bad format 'parquet' (expected avro or arrow)"


@pytest.mark.parametrize("bootstrap", ["127.0.0.1", "127.0.0.1:70000", "host:port", ":9092"])
def test_bad_bootstrap(tmp_path: Path, bootstrap: str) -> None:
    error = only_error(tmp_path, edit("127.0.0.1:19092", bootstrap))
    assert (error.line, error.field) == (2, "zones.hk.bootstrap")
    assert error.message.startswith(f"bad bootstrap '{bootstrap}' (expected host:port")


def test_duplicate_keys(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, edit("    to: eu\n", "    to: eu\n    from: hk\n"))
    assert [(e.line, e.field) for e in errors] == [(16, "corridors.hk-eu.from")]
    assert errors[0].message.startswith("duplicate key 'from'")


def test_not_yaml(tmp_path: Path) -> None:
    error = only_error(tmp_path, "zones:\n  hk: [1, 2\ncorridors: x\n")
    assert (error.line, error.field) == (3, "yaml")
    assert error.message.startswith("not valid YAML: ")


def test_empty_and_non_mapping_files(tmp_path: Path) -> None:
    assert only_error(tmp_path, "").message.startswith("the corridor file is empty")
    error = only_error(tmp_path, "- a\n- b\n")
    assert error.line == 1 and "expected a mapping" in error.message


def test_missing_required_keys(tmp_path: Path) -> None:
    error = only_error(tmp_path, edit("    legal_basis: DEPA\n", ""))
    assert (error.line, error.field) == (13, "corridors.hk-eu.legal_basis")
    assert error.message.startswith("missing key 'legal_basis'")


def test_all_errors_are_reported_sorted_by_line(tmp_path: Path) -> None:
    text = edit("jurisdiction: EU", "jurisdiction: europe")
    text = edit("format: avro", "format: json", text)
    text = edit("national_id: drop", "national_id: shred", text)
    errors = errors_of(tmp_path, text)
    assert [e.line for e in errors] == [3, 18, 22]
    assert str(ConfigErrors(errors)).count("\n") == 2


def test_mask_needs_a_string(tmp_path: Path) -> None:
    text = edit(
        "      national_id: drop\n", "      national_id: drop\n      declared_value: mask\n"
    )
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (23, "corridors.hk-eu.transform.declared_value")
    assert "mask needs a string field, this one is double" in error.message


def test_admit(tmp_path: Path) -> None:
    config = load_text(
        tmp_path, edit("    format: avro\n", "    format: avro\n    admit: [normal]\n")
    )
    assert config.corridors["hk-eu"].admit == frozenset({RecordKind.NORMAL})
    error = only_error(tmp_path, edit("    format: avro\n", "    format: avro\n    admit: [vip]\n"))
    assert (error.line, error.field) == (19, "corridors.hk-eu.admit")
    assert "unknown record kind 'vip'" in error.message


# --- multi-dataset corridors --------------------------------------------------------------

MULTI = BASE.replace(
    "datasets:\n  trade.shipment:",
    f"""\
datasets:
  media.playback:
    schema: {PLAY}
    fields: {{ip_address: sensitive}}
  trade.shipment:""",
).replace(
    """\
    datasets: [trade.shipment]
""",
    """\
    datasets:
      trade.shipment:
        withhold: "category == 'strategic'"
      media.playback:
        transform: {ip_address: drop}
""",
)


def test_per_dataset_override(tmp_path: Path) -> None:
    corridor = load_text(tmp_path, MULTI).corridors["hk-eu"]
    assert corridor.datasets == ("trade.shipment", "media.playback")
    assert corridor.withhold["trade.shipment"].text == "category == 'strategic'"
    assert corridor.withhold["media.playback"].text == "consent == false"
    assert dict(corridor.transform["media.playback"]) == {"ip_address": Transform.DROP}
    assert dict(corridor.transform["trade.shipment"]) == {
        "contact_name": Transform.PSEUDONYMIZE,
        "national_id": Transform.DROP,
    }


def test_corridor_level_rule_must_fit_every_dataset(tmp_path: Path) -> None:
    text = edit('withhold: "consent == false"', "withhold: \"category == 'general'\"", MULTI)
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (26, "corridors.hk-eu.withhold")
    assert "for dataset media.playback" in error.message


def test_per_dataset_transform_field_must_exist_and_leaks_are_per_dataset(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, edit("{ip_address: drop}", "{hs_code: drop}", MULTI))
    assert [(e.line, e.field) for e in errors] == [
        (23, "corridors.hk-eu.datasets.media.playback.transform.hs_code"),
        (23, "corridors.hk-eu.datasets.media.playback.transform.ip_address"),
    ]
    assert errors[0].message.startswith("field 'hs_code' is not in dataset media.playback")
    assert "would leak sensitive field ip_address of media.playback" in errors[1].message


def test_unknown_key_in_override(tmp_path: Path) -> None:
    error = only_error(
        tmp_path, edit('        withhold: "category', '        withold: "category', MULTI)
    )
    assert (error.line, error.field) == (21, "corridors.hk-eu.datasets.trade.shipment.withold")


def test_two_corridors_writing_one_topic(tmp_path: Path) -> None:
    second = BASE[BASE.index("  hk-eu:") :].replace("  hk-eu:", "  hk-eu-2:")
    error = only_error(tmp_path, BASE + second)
    assert (error.line, error.field) == (26, "corridors.hk-eu-2.datasets")
    assert "corridor.hk-eu.trade.shipment" in error.message


# --- policy hash ----------------------------------------------------------------------------


def hash_of(tmp_path: Path, text: str) -> str:
    return load_text(tmp_path, text).corridors["hk-eu"].policy_hash


def test_policy_hash_is_stable(tmp_path: Path) -> None:
    first = hash_of(tmp_path, BASE)
    assert len(first) == 12 and int(first, 16) >= 0
    assert hash_of(tmp_path, BASE) == first
    # layout, comments, key order and bootstrap addresses do not change the policy
    relaid = edit(
        "    legal_basis: DEPA\n    format: avro\n",
        "    format: avro   # the default\n    legal_basis: DEPA\n",
    )
    relaid = edit("127.0.0.1:29092", "10.0.0.7:9092", relaid)
    assert hash_of(tmp_path, relaid) == first
    corridor = load_text(tmp_path, BASE).corridors["hk-eu"]
    assert corridor.policy_id == f"hk-eu@{first}"


@pytest.mark.parametrize(
    "old,new",
    [
        ('"consent == false"', "\"consent == false or category == 'strategic'\""),
        ("national_id: drop", "national_id: encrypt"),
        ("legal_basis: DEPA", "legal_basis: GDPR-SCC"),
        ("      hs_code: public\n", "      hs_code: internal\n"),
        ("    format: avro\n", "    format: avro\n    admit: [normal]\n"),
    ],
)
def test_policy_hash_changes_with_policy(tmp_path: Path, old: str, new: str) -> None:
    assert hash_of(tmp_path, edit(old, new)) != hash_of(tmp_path, BASE)


# --- corridor validate ----------------------------------------------------------------------


def test_validate_ok(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(REPO)
    result = CliRunner().invoke(validate, [])
    assert result.exit_code == 0, result.output
    assert result.stdout == "corridors.yaml: 3 zones, 3 datasets, 5 corridors: OK\n"


def test_validate_reports_each_error(tmp_path: Path) -> None:
    path = write(tmp_path, edit("format: avro", "format: json", edit("to: eu", "to: hk")))
    result = CliRunner().invoke(validate, [str(path)])
    assert result.exit_code == 2
    assert result.stdout == ""
    assert result.stderr.splitlines() == [
        (
            f"{path}:15: corridors.hk-eu.to: a corridor from zone hk to itself crosses no border "
            "(expected two different zones)"
        ),
        f"{path}:18: corridors.hk-eu.format: bad format 'json' (expected avro or arrow)",
        f"{path}: 2 errors",
    ]
