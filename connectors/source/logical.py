"""Avro logical types from file values: timestamps, dates, times, decimals, UUIDs (pure).

Text (CSV cells, JSON strings) is parsed as ISO 8601 (timestamps without an offset are
UTC) or, for timestamps, dates and times, taken as the number Avro stores; typed values
(``datetime``, ``date``, ``time``, ``Decimal``) are converted. The result is what fastavro
writes for the logical type's base type.
"""

from __future__ import annotations

import math
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime, time
from decimal import Decimal, InvalidOperation
from typing import Any

from connectors.source.problems import Bad, Coerce, kind_of

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
EPOCH_DAY = date(1970, 1, 1)


def logical_coercer(t: Mapping[str, Any], logical: str, path: str) -> Coerce | None:
    """The coercion of a logical type, or None when the base type does not carry it."""
    kind = t["type"]
    if logical in ("timestamp-millis", "timestamp-micros") and kind == "long":
        return _timestamp(1000 if logical == "timestamp-millis" else 1_000_000, path)
    if logical == "date" and kind == "int":
        return _date(path)
    if logical in ("time-millis", "time-micros") and kind in ("int", "long"):
        return _time(1000 if logical == "time-millis" else 1_000_000, path)
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return _decimal(int(t.get("precision", 38)), int(t.get("scale", 0)), path)
    if logical == "uuid" and kind == "string":
        return _uuid(path)
    return None  # a logical type on the wrong base type is ignored, as the spec says


def _timestamp(per_second: int, path: str) -> Coerce:
    def timestamp(value: Any) -> int:
        if isinstance(value, str):
            value = _parse_instant(value, path)
        if isinstance(value, datetime):
            moment = value if value.tzinfo else value.replace(tzinfo=UTC)
            delta = moment - EPOCH
            return (delta.days * 86400 + delta.seconds) * per_second + (
                delta.microseconds * per_second // 1_000_000)
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise Bad(path, f"expected a timestamp, got {kind_of(value)}", value)

    return timestamp


def _parse_instant(value: str, path: str) -> datetime | int:
    stripped = value.strip()
    if stripped.lstrip("-").isdigit():
        return int(stripped)
    try:
        return datetime.fromisoformat(stripped)
    except ValueError:
        raise Bad(path, "not an ISO 8601 timestamp", value) from None


def _date(path: str) -> Coerce:
    def as_date(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = date.fromisoformat(value.strip())
            except ValueError:
                raise Bad(path, "not an ISO 8601 date", value) from None
        if isinstance(value, datetime):
            value = value.date()
        if isinstance(value, date):
            return (value - EPOCH_DAY).days
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise Bad(path, f"expected a date, got {kind_of(value)}", value)

    return as_date


def _time(per_second: int, path: str) -> Coerce:
    def as_time(value: Any) -> int:
        if isinstance(value, str):
            try:
                value = time.fromisoformat(value.strip())
            except ValueError:
                raise Bad(path, "not an ISO 8601 time", value) from None
        if isinstance(value, time):
            micros = ((value.hour * 60 + value.minute) * 60 + value.second) * 1_000_000
            return (micros + value.microsecond) * per_second // 1_000_000
        if isinstance(value, int) and not isinstance(value, bool):
            return value
        raise Bad(path, f"expected a time of day, got {kind_of(value)}", value)

    return as_time


def _decimal(precision: int, scale: int, path: str) -> Coerce:
    quantum = Decimal(1).scaleb(-scale)

    def as_decimal(value: Any) -> Decimal:
        if isinstance(value, bool) or not isinstance(value, (str, int, float, Decimal)):
            raise Bad(path, f"expected a decimal, got {kind_of(value)}", value)
        if isinstance(value, float) and not math.isfinite(value):
            raise Bad(path, "not a finite number", value)
        try:
            number = Decimal(value.strip() if isinstance(value, str) else str(value))
            exact = number.quantize(quantum)
        except InvalidOperation:
            raise Bad(path, "not a decimal number", value) from None
        if exact != number:
            raise Bad(path, f"more than {scale} decimal places", value)
        if len(exact.as_tuple().digits) > precision:
            raise Bad(path, f"more than {precision} digits", value)
        return exact

    return as_decimal


def _uuid(path: str) -> Coerce:
    def as_uuid(value: Any) -> str:
        try:
            return str(uuid.UUID(str(value)))
        except ValueError:
            raise Bad(path, "not a UUID", value) from None

    return as_uuid
