"""File rows into dataset records: what converts, and the column and reason of what does not."""

from __future__ import annotations

import base64
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.source.convert import Problem, RowConverter, unflatten
from corridor.core.schema import load_schema, parse_schema

REPO = Path(__file__).resolve().parents[2]
SHIPMENT = load_schema(REPO / "schemas" / "trade" / "shipment.avsc")

CSV_ROW = {
    "shipment_id": "DEC-1", "declarant": "Kowloon Freight Co", "contact_name": "Wing Chan",
    "contact_email": "", "national_id": "A123456(7)", "hs_code": "847130",
    "description": "laptops", "declared_value": "4526.79", "currency": "HKD",
    "category": "general", "origin_country": "HK", "destination_country": "DE",
    "location": {"port": "HKHKG", "country": "HK"}, "consent": "true",
    "declared_at": "2025-03-01T00:00:02+00:00",
}


def typed_row() -> dict[str, Any]:
    return dict(CSV_ROW, contact_email=None, declared_value=4526.79, consent=True,
                declared_at=datetime(2025, 3, 1, 0, 0, 2, tzinfo=UTC))


def test_a_csv_row_parses_text_cells_into_the_schema_types() -> None:
    record = RowConverter(SHIPMENT, text=True).convert(CSV_ROW)
    assert isinstance(record, dict)
    assert record["declared_value"] == 4526.79
    assert record["consent"] is True
    assert record["contact_email"] is None  # an empty cell of a nullable field is null
    assert record["declared_at"] == 1740787202000  # timestamp-millis
    assert record["location"] == {"port": "HKHKG", "country": "HK"}


def test_a_typed_row_converts_and_the_result_encodes() -> None:
    from fastavro.validation import validate

    record = RowConverter(SHIPMENT, text=False).convert(typed_row())
    assert isinstance(record, dict)
    assert validate(record, SHIPMENT.parsed, raise_errors=False)


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("declared_value", "n/a", "not a number"),
    ("currency", "XYZ", "not a trade.Currency symbol"),
    ("declared_at", "yesterday", "not an ISO 8601 timestamp"),
    ("consent", "maybe", "not a boolean (true/false)"),
    ("declared_value", "", "null in a required field"),
])
def test_a_bad_csv_cell_names_its_column_and_reason(column: str, value: str, reason: str) -> None:
    problem = RowConverter(SHIPMENT, text=True).convert(dict(CSV_ROW, **{column: value}))
    assert problem == Problem(column, reason, value or None)


def test_a_nested_cell_is_named_by_its_dotted_path() -> None:
    row = dict(CSV_ROW, location={"port": "HKHKG"})
    assert RowConverter(SHIPMENT, text=True).convert(row) == Problem("location.country",
                                                                     "missing column")


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("declared_value", "12.5", "expected a number, got string"),
    ("consent", "true", "expected boolean, got string"),
    ("contact_name", None, "null in a required field"),
    ("hs_code", 847130, "expected string, got integer"),
    ("location", "HKHKG", "expected an object, got string"),
    ("declared_at", [1], "expected a timestamp, got list"),
])
def test_typed_formats_do_not_parse_text_where_a_type_is_expected(column: str, value: Any,
                                                                   reason: str) -> None:
    problem = RowConverter(SHIPMENT, text=False).convert(dict(typed_row(), **{column: value}))
    assert isinstance(problem, Problem)
    assert (problem.column, problem.reason) == (column, reason)


def test_a_missing_column_takes_the_default_or_is_rejected() -> None:
    row = typed_row()
    del row["contact_email"]  # has a default (null)
    assert isinstance(RowConverter(SHIPMENT, text=False).convert(row), dict)
    del row["hs_code"]
    assert RowConverter(SHIPMENT, text=False).convert(row) == Problem("hs_code", "missing column")


def test_json_timestamps_may_be_iso_text_or_epoch_numbers() -> None:
    converter = RowConverter(SHIPMENT, text=False)
    for value in ("2025-03-01T00:00:02Z", "2025-03-01 00:00:02", 1740787202000):
        record = converter.convert(dict(typed_row(), declared_at=value))
        assert isinstance(record, dict) and record["declared_at"] == 1740787202000, value


def test_unknown_columns_are_named_for_the_summary() -> None:
    converter = RowConverter(SHIPMENT, text=True)
    assert converter.unknown_columns(["shipment_id", "location.port", "location.moon",
                                      "extra"]) == ["extra", "location.moon"]


WIDE = parse_schema({"type": "record", "name": "wide", "fields": [
    {"name": "n", "type": "int"},
    {"name": "b", "type": "bytes"},
    {"name": "d", "type": {"type": "int", "logicalType": "date"}},
    {"name": "amount", "type": {"type": "bytes", "logicalType": "decimal", "precision": 6,
                                "scale": 2}},
    {"name": "tags", "type": {"type": "array", "items": "string"}},
    {"name": "attrs", "type": {"type": "map", "values": "long"}},
    {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
    {"name": "note", "type": ["null", "string"], "default": None},
]})
WIDE_CSV = {"n": "7", "b": base64.b64encode(b"\x00\x01").decode(), "d": "2025-03-01",
            "amount": "12.50", "tags": '["a", "b"]', "attrs": '{"x": 1}',
            "id": "12345678-1234-5678-1234-567812345678", "note": ""}


def test_every_avro_type_converts_from_csv_text() -> None:
    record = RowConverter(WIDE, text=True).convert(WIDE_CSV)
    assert record == {"n": 7, "b": b"\x00\x01", "d": (date(2025, 3, 1) - date(1970, 1, 1)).days,
                      "amount": Decimal("12.50"), "tags": ["a", "b"], "attrs": {"x": 1},
                      "id": "12345678-1234-5678-1234-567812345678", "note": None}


@pytest.mark.parametrize(("column", "value", "reason"), [
    ("n", "99999999999", "out of range for int"),
    ("n", "7.5", "not an integer"),
    ("b", "%%%", "not base64"),
    ("d", "01/03/2025", "not an ISO 8601 date"),
    ("amount", "1.234", "more than 2 decimal places"),
    ("amount", "123456.00", "more than 6 digits"),
    ("tags", "[1]", "expected string, got integer"),
    ("attrs", "{not json", "not JSON"),
    ("id", "nope", "not a UUID"),
])
def test_every_avro_type_rejects_with_a_reason(column: str, value: str, reason: str) -> None:
    problem = RowConverter(WIDE, text=True).convert(dict(WIDE_CSV, **{column: value}))
    assert isinstance(problem, Problem)
    assert problem.column.split("[")[0] == column
    assert problem.reason == reason


def test_invalid_utf8_from_a_text_file_is_rejected_not_loaded() -> None:
    bad = b"caf\xe9".decode("utf-8", errors="surrogateescape")
    problem = RowConverter(SHIPMENT, text=True).convert(dict(CSV_ROW, description=bad))
    assert isinstance(problem, Problem) and problem.reason == "not valid UTF-8"


def test_long_bad_values_are_cut_in_the_reject() -> None:
    problem = RowConverter(SHIPMENT, text=True).convert(dict(CSV_ROW, currency="X" * 1000))
    assert isinstance(problem, Problem) and problem.value is not None
    assert len(problem.value) < 200 and problem.value.endswith("...")


@given(st.dictionaries(st.from_regex(r"[a-c](\.[a-c]){0,2}", fullmatch=True), st.integers(),
                       max_size=6))
def test_unflatten_keeps_every_value_by_its_dotted_path_or_flat(flat: dict[str, int]) -> None:
    nested = unflatten(flat)
    for name, value in flat.items():
        node: Any = nested
        for part in name.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        assert node == value or nested.get(name) == value, name
