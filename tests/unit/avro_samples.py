"""Avro schemas and records shared by the schema and codec tests."""

from __future__ import annotations

import datetime as dt
import io
import uuid
from decimal import Decimal
from typing import Any

import fastavro

ALL_TYPES: dict[str, Any] = {
    "type": "record",
    "name": "AllTypes",
    "namespace": "test.codec",
    "fields": [
        {"name": "b", "type": "boolean"},
        {"name": "i", "type": "int"},
        {"name": "l", "type": "long"},
        {"name": "f", "type": "float"},
        {"name": "d", "type": "double"},
        {"name": "by", "type": "bytes"},
        {"name": "s", "type": "string"},
        {"name": "e", "type": {"type": "enum", "name": "Colour", "symbols": ["RED", "GREEN", "BLUE"]}},
        {"name": "fx", "type": {"type": "fixed", "name": "Four", "size": 4}},
        {"name": "fx2", "type": "Four"},
        {"name": "rec", "type": {"type": "record", "name": "Inner", "fields": [
            {"name": "x", "type": "string"},
            {"name": "y", "type": ["null", "long"], "default": None},
        ]}},
        {"name": "arr", "type": {"type": "array", "items": "string"}},
        {"name": "arr_rec", "type": {"type": "array", "items": "Inner"}},
        {"name": "m", "type": {"type": "map", "values": "long"}},
        {"name": "ns", "type": ["null", "string"], "default": None},
        {"name": "sn", "type": ["string", "null"]},
        {"name": "nrec", "type": ["null", "Inner"], "default": None},
        {"name": "ne", "type": ["null", "Colour"], "default": None},
        {"name": "ts_ms", "type": {"type": "long", "logicalType": "timestamp-millis"}},
        {"name": "ts_us", "type": {"type": "long", "logicalType": "timestamp-micros"}},
        {"name": "day", "type": {"type": "int", "logicalType": "date"}},
        {"name": "dec", "type": {"type": "bytes", "logicalType": "decimal", "precision": 12, "scale": 2}},
        {"name": "decf", "type": {"type": "fixed", "name": "Dec8", "size": 8,
                                  "logicalType": "decimal", "precision": 12, "scale": 3}},
        {"name": "id", "type": {"type": "string", "logicalType": "uuid"}},
    ],
}

# Everything polars can read natively (not ALL_TYPES' map nor its nullable enum).
NO_MAP: dict[str, Any] = {
    **ALL_TYPES,
    "name": "NoMap",
    "fields": [f for f in ALL_TYPES["fields"] if f["name"] not in ("m", "ne")],
}

SHIPMENT_LIKE: dict[str, Any] = {
    "type": "record",
    "name": "shipment",
    "namespace": "test.trade",
    "fields": [
        {"name": "shipment_id", "type": "string"},
        {"name": "declarant", "type": "string"},
        {"name": "contact_email", "type": ["null", "string"], "default": None},
        {"name": "declared_value", "type": "double"},
        {"name": "weight_kg", "type": ["null", "double"], "default": None},
        {"name": "currency", "type": {"type": "enum", "name": "Currency", "symbols": ["HKD", "EUR", "USD"]}},
        {"name": "location", "type": {"type": "record", "name": "Location", "fields": [
            {"name": "port", "type": "string"}, {"name": "country", "type": "string"}]}},
        {"name": "consent", "type": "boolean"},
        {"name": "pieces", "type": ["null", "int"], "default": None},
        {"name": "declared_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def all_types_record(n: int) -> dict[str, Any]:
    """A valid ALL_TYPES record, varied by n, as fastavro writes it."""
    inner = {"x": f"inner-{n}", "y": None if n % 2 else n * 1000}
    return {
        "b": bool(n % 2), "i": -n * 7, "l": n * 10**12 - 5, "f": 1.5 * n, "d": -0.25 * n,
        "by": bytes([n % 256, 0, 255]), "s": f"stré-{n}", "e": ["RED", "GREEN", "BLUE"][n % 3],
        "fx": b"ab" + bytes([n % 256, 7]), "fx2": b"wxyz", "rec": inner,
        "arr": [f"a{k}" for k in range(n % 4)], "arr_rec": [inner] * (n % 3),
        "m": {f"k{k}": k - n for k in range(n % 3)},
        "ns": None if n % 3 == 0 else f"ns{n}", "sn": None if n % 2 else "sn",
        "nrec": None if n % 2 else inner, "ne": None if n % 4 == 0 else "BLUE",
        "ts_ms": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(milliseconds=n * 1001),
        "ts_us": dt.datetime(2024, 1, 1, tzinfo=dt.UTC) + dt.timedelta(microseconds=n * 3),
        "day": dt.date(2020, 2, 29) + dt.timedelta(days=n),
        "dec": Decimal(n * 1234 - 50000).scaleb(-2),
        "decf": Decimal(-n * 98765).scaleb(-3),
        "id": str(uuid.UUID(int=n * 7919)),
    }


def no_map_record(n: int) -> dict[str, Any]:
    rec = all_types_record(n)
    del rec["m"], rec["ne"]
    return rec


def shipment_record(n: int) -> dict[str, Any]:
    return {
        "shipment_id": f"SHP-{n:08d}", "declarant": f"Declarant {n % 97} Ltd",
        "contact_email": None if n % 5 == 0 else f"c{n}@example.com",
        "declared_value": n * 13.25, "weight_kg": None if n % 3 == 0 else n / 7,
        "currency": ["HKD", "EUR", "USD"][n % 3],
        "location": {"port": "HKHKG", "country": "HK"}, "consent": n % 2 == 0,
        "pieces": None if n % 4 == 0 else n % 100,
        "declared_at": 1_700_000_000_000 + n,
    }


def body(parsed: Any, record: dict[str, Any]) -> bytes:
    """fastavro's schemaless encoding of one record."""
    out = io.BytesIO()
    fastavro.schemaless_writer(out, parsed, record)
    return out.getvalue()
