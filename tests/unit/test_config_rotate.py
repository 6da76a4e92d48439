"""`rotate:` in corridors.yaml: parsing, refusals with line and field, flags > file > none."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest

from corridor.core.config import load_config
from corridor.core.config.rotation import RotationSchedule, rotation_for, schedule_from_flags
from tests.unit.test_config import BASE, REPO, edit, errors_of, load_text, only_error

# BASE has no encrypting transform; this one encrypts, with `rotate` on line 20.
ENCRYPTING = edit("contact_name: pseudonymize", "contact_name: encrypt")
ROTATE_LINE = 20


def with_rotate(rotate: str, text: str = ENCRYPTING) -> str:
    """*text* with ``rotate: <rotate>`` just before the corridor's transform (line 20)."""
    return edit("    transform:\n", f"    rotate: {rotate}\n    transform:\n", text)


# --- accepted -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("rotate", "records", "seconds"),
    [
        ("{every_records: 20000, every_minutes: 60}", 20000, 3600.0),
        ("{every_records: 1}", 1, None),
        ("{every_minutes: 0.5}", None, 30.0),
        ("{every_minutes: 2}", None, 120.0),
    ],
)
def test_rotate_is_parsed(
    tmp_path: Path, rotate: str, records: int | None, seconds: float | None
) -> None:
    corridor = load_text(tmp_path, with_rotate(rotate)).corridors["hk-eu"]
    assert corridor.rotate == RotationSchedule(records, seconds)


def test_block_form_is_parsed(tmp_path: Path) -> None:
    text = edit(
        "    transform:\n",
        "    rotate:\n      every_records: 500\n      every_minutes: 1.5\n    transform:\n",
        ENCRYPTING,
    )
    assert load_text(tmp_path, text).corridors["hk-eu"].rotate == RotationSchedule(500, 90.0)


def test_rotate_is_optional(tmp_path: Path) -> None:
    assert load_text(tmp_path, ENCRYPTING).corridors["hk-eu"].rotate is None


def test_rotate_does_not_change_the_policy_hash(tmp_path: Path) -> None:
    plain = load_text(tmp_path, ENCRYPTING).corridors["hk-eu"].policy_hash
    rotating = load_text(tmp_path, with_rotate("{every_records: 10}")).corridors["hk-eu"]
    assert rotating.policy_hash == plain


def test_the_sample_file_rotates_hk_eu() -> None:
    corridors = load_config(REPO / "corridors.yaml").corridors
    assert corridors["hk-eu"].rotate == RotationSchedule(20000, 3600.0)


# --- refused, each with its line and field --------------------------------------------------


@pytest.mark.parametrize(
    ("rotate", "field", "message"),
    [
        ("{every_records: 0}", "every_records", "expected an integer >= 1, got a number (0)"),
        ("{every_records: -5}", "every_records", "expected an integer >= 1, got a number (-5)"),
        ("{every_records: 2.5}", "every_records", "expected an integer >= 1, got a number (2.5)"),
        ("{every_records: many}", "every_records", "expected an integer >= 1, got 'many'"),
        ("{every_records: true}", "every_records", "expected an integer >= 1, got a boolean"),
        ("{every_minutes: 0}", "every_minutes", "expected a number > 0, got a number (0)"),
        ("{every_minutes: -1.5}", "every_minutes", "expected a number > 0, got a number (-1.5)"),
        ("{every_minutes: .inf}", "every_minutes", "expected a number > 0, got a number (inf)"),
        ("{every_minutes: .nan}", "every_minutes", "expected a number > 0, got a number (nan)"),
        ("{every_minutes: hourly}", "every_minutes", "expected a number > 0, got 'hourly'"),
        ("{every_minutes: null}", "every_minutes", "expected a number > 0, got nothing (null)"),
    ],
)
def test_bad_values_are_refused(tmp_path: Path, rotate: str, field: str, message: str) -> None:
    error = only_error(tmp_path, with_rotate(rotate))
    assert (error.line, error.field) == (ROTATE_LINE, f"corridors.hk-eu.rotate.{field}")
    assert message in error.message


def test_rendered_error_names_file_line_and_field(tmp_path: Path) -> None:
    error = only_error(tmp_path, with_rotate("{every_records: 0}"))
    assert error.render().endswith(
        f"corridors.yaml:{ROTATE_LINE}: corridors.hk-eu.rotate.every_records: "
        "expected an integer >= 1, got a number (0)"
    )


def test_value_on_its_own_line_is_reported_there(tmp_path: Path) -> None:
    text = edit(
        "    transform:\n",
        "    rotate:\n      every_records: 10\n      every_minutes: 0\n    transform:\n",
        ENCRYPTING,
    )
    error = only_error(tmp_path, text)
    assert (error.line, error.field) == (ROTATE_LINE + 2, "corridors.hk-eu.rotate.every_minutes")


def test_unknown_key_is_refused_with_a_suggestion(tmp_path: Path) -> None:
    error = only_error(tmp_path, with_rotate("{every_record: 10}"))
    assert (error.line, error.field) == (ROTATE_LINE, "corridors.hk-eu.rotate.every_record")
    assert "unknown key 'every_record' (did you mean 'every_records'?)" in error.message


def test_unknown_key_beside_a_valid_one_is_refused(tmp_path: Path) -> None:
    error = only_error(tmp_path, with_rotate("{every_records: 10, every_hours: 1}"))
    assert error.field == "corridors.hk-eu.rotate.every_hours"


@pytest.mark.parametrize(
    ("rotate", "message"),
    [
        ("{}", "expected every_records, every_minutes or both"),
        ("1000", "expected {every_records: N, every_minutes: T}, got a number (1000)"),
        ("[1000, 60]", "expected {every_records: N, every_minutes: T}, got a list"),
        ("null", "expected {every_records: N, every_minutes: T}, got nothing (null)"),
    ],
)
def test_rotate_must_be_a_mapping_with_a_trigger(tmp_path: Path, rotate: str, message: str) -> None:
    error = only_error(tmp_path, with_rotate(rotate))
    assert (error.line, error.field) == (ROTATE_LINE, "corridors.hk-eu.rotate")
    assert message in error.message


def test_rotate_on_a_corridor_that_does_not_encrypt_is_refused(tmp_path: Path) -> None:
    error = only_error(tmp_path, with_rotate("{every_records: 10}", BASE))
    assert (error.line, error.field) == (ROTATE_LINE, "corridors.hk-eu.rotate")
    assert "encrypts no field, so it has no data key to rotate" in error.message


def test_deterministic_encryption_counts_as_encrypting(tmp_path: Path) -> None:
    text = with_rotate(
        "{every_records: 10}",
        edit("contact_name: pseudonymize", "contact_name: encrypt-deterministic"),
    )
    assert load_text(tmp_path, text).corridors["hk-eu"].rotate == RotationSchedule(10, None)


def test_every_rotate_problem_is_reported_at_once(tmp_path: Path) -> None:
    errors = errors_of(tmp_path, with_rotate("{every_records: 0, every_minutes: 0, often: 1}"))
    assert sorted(e.field.rsplit(".", 1)[1] for e in errors) == [
        "every_minutes",
        "every_records",
        "often",
    ]


# --- which schedule a runner uses: flags > file > none -------------------------------------


def test_flags_make_a_schedule_only_when_given() -> None:
    assert schedule_from_flags(None, None) is None
    assert schedule_from_flags(100, None) == RotationSchedule(100, None)
    assert schedule_from_flags(None, 1.5) == RotationSchedule(None, 90.0)
    assert schedule_from_flags(100, 60) == RotationSchedule(100, 3600.0)


def test_flags_override_the_file_as_a_whole() -> None:
    corridor = load_config(REPO / "corridors.yaml").corridors["hk-eu"]
    flags = schedule_from_flags(None, 5)
    assert rotation_for(corridor, flags) == RotationSchedule(None, 300.0)


def test_the_file_applies_without_flags() -> None:
    corridor = load_config(REPO / "corridors.yaml").corridors["hk-eu"]
    assert rotation_for(corridor, schedule_from_flags(None, None)) == corridor.rotate
    assert corridor.rotate is not None


def test_neither_means_no_scheduled_rotation() -> None:
    corridor = replace(load_config(REPO / "corridors.yaml").corridors["hk-eu"], rotate=None)
    assert rotation_for(corridor, None) is None
