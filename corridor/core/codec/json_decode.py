"""One JSON object per record, checked against the dataset's Avro schema as strictly as Avro. Pure.

A park that produces plain JSON (Kafka Connect's JsonConverter without schemas, a
hand-written producer, ``json.dumps``) writes one UTF-8 JSON object per Kafka record.
``decode_json`` turns it into the values ``avro_strict`` gives for the same record (enums
as symbols, timestamps and dates as ints, decimals as Decimal, maps as (key, value)
pairs), so both go into one Arrow batch, or raises ``Malformed`` with a reason naming the
field: not UTF-8, not JSON (also: a repeated key, NaN/Infinity, which RFC 8259 JSON has
not), an unknown field, a required field missing (a field with a default takes it), a
value of the wrong type or out of range.

Conventions (the Avro JSON *encoding* is not used: it tags every union value and writes
bytes as code points, which no ordinary JSON producer does):

- nullable unions ``["null", T]``: the plain value or ``null`` (``{"string": "x"}`` is
  refused as an object where a string belongs);
- ``bytes`` and ``fixed``: standard base64 with padding (RFC 4648), as Kafka Connect writes
  them; a fixed must decode to exactly its size;
- enums: the symbol as a string;
- ``int``/``long``: JSON integers in range (``1.0`` and ``true`` are refused);
  ``float``/``double``: any JSON number that stays finite in the type;
- ``timestamp-millis`` / ``timestamp-micros``: an integer (ms / µs since the epoch) or an
  ISO-8601 string with a UTC offset (``2024-05-01T08:00:00.250Z``); a string without an
  offset, or with digits finer than the unit, is refused rather than guessed;
- ``date``: an integer (days since 1970-01-01) or ``YYYY-MM-DD``;
- ``decimal``: a JSON number or a decimal string (``"12.50"``), exact: more fractional
  digits than the scale, or more digits than the precision, is refused (never rounded).

Field defaults in a schema follow the Avro specification instead (bytes as code points
0-255): ``compile_value(t, path, LATIN1)`` converts them for schema resolution.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from decimal import Context, Decimal, InvalidOperation
from functools import lru_cache
from typing import Any

from corridor.core.codec.avro_strict import Malformed
from corridor.core.schema import AvroSchema, union_branches

Convert = Callable[[Any], Any]

BASE64 = "base64"  # bytes in JSON records
LATIN1 = "latin-1"  # bytes in Avro schema defaults (spec: "Complex Types", field defaults)

_RANGES = {"int": (-(1 << 31), (1 << 31) - 1), "long": (-(1 << 63), (1 << 63) - 1)}
_FLOAT_MAX = {"float": 3.4028234663852886e38, "double": 1.7976931348623157e308}
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EPOCH_DAY = date(1970, 1, 1)
_UNITS = {"timestamp-millis": timedelta(milliseconds=1), "timestamp-micros": timedelta(microseconds=1)}
_EXACT = Context(prec=200)  # wide enough that quantize never rounds a decimal(38, s)


def decode_json(value: bytes, schema: AvroSchema) -> dict[str, Any]:
    """The record ``value`` holds, in ``avro_strict``'s value shapes. Raises Malformed
    (reason ``json: ...``, see the module docstring)."""
    try:
        text = value.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise Malformed(f"json: not UTF-8: invalid byte 0x{value[exc.start]:02x} "
                        f"at offset {exc.start}") from None
    try:
        obj = json.loads(text, object_pairs_hook=_object, parse_float=Decimal,
                         parse_constant=_constant)
    except Malformed as exc:
        raise Malformed(f"json: {exc.reason}") from None
    except json.JSONDecodeError as exc:
        raise Malformed(f"json: not JSON: {exc.msg} at offset {exc.pos}") from None
    except RecursionError:
        raise Malformed("json: not JSON: nested too deeply") from None
    except ValueError as exc:  # e.g. an integer of more than 4300 digits
        raise Malformed(f"json: not JSON: {exc}") from None
    if not isinstance(obj, dict):
        raise Malformed(f"json: expected an object, got {_kind_of(obj)}")
    try:
        record: dict[str, Any] = _converter(schema)(obj)
    except Malformed as exc:
        raise Malformed(f"json: {exc.reason}") from None
    return record


@lru_cache(maxsize=256)
def _converter(schema: AvroSchema) -> Convert:
    return compile_value(schema.expanded, "", BASE64)


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, item in pairs:
        if key in out:
            raise Malformed(f"not JSON: key {key[:80]!r} appears twice in one object")
        out[key] = item
    return out


def _constant(name: str) -> Any:
    raise Malformed(f"not JSON: {name} is not a JSON number")


def _kind_of(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "boolean"
    if isinstance(v, int):
        return "integer"
    if isinstance(v, (Decimal, float)):
        return "number"
    if isinstance(v, str):
        return "string"
    return "array" if isinstance(v, list) else "object"


def _name(t: Any) -> str:
    """A short name of an Avro type for reasons."""
    if isinstance(t, str):
        return t
    if isinstance(t, list):
        return "[" + ", ".join(_name(b) for b in t) + "]"
    return str(t.get("logicalType") or t.get("name") or t["type"])


def _wrong(path: str, t: Any, v: Any) -> Malformed:
    return Malformed(f"field {path}: expected {_name(t)}, got {_kind_of(v)}")


def compile_value(t: Any, path: str, bytes_as: str) -> Convert:
    """Converter of a JSON value of the expanded Avro type ``t`` at field ``path`` to the
    ``avro_strict`` value shape; it raises Malformed naming the field."""
    if isinstance(t, list):
        return _union(t, path, bytes_as)
    kind = t if isinstance(t, str) else t["type"]
    logical = None if isinstance(t, str) else t.get("logicalType")
    if logical in _UNITS and kind == "long":
        return _timestamp(path, _UNITS[logical])
    if logical == "date" and kind == "int":
        return _date(path)
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return _decimal(t, path, bytes_as)
    if kind == "record":
        return _record(t, path, bytes_as)
    if kind == "enum":
        return _enum(t, path)
    if kind == "array":
        return _array(t, path, bytes_as)
    if kind == "map":
        return _map(t, path, bytes_as)
    if kind in ("bytes", "fixed"):
        return _bytes(t, path, bytes_as, int(t["size"]) if kind == "fixed" else None)
    return _primitive(kind, path)


def _primitive(kind: str, path: str) -> Convert:
    if kind in _RANGES:
        return lambda v: _integer(v, kind, path)
    if kind in _FLOAT_MAX:
        return lambda v: _float(v, kind, path)
    expected: type = {"null": type(None), "boolean": bool, "string": str}[kind]

    def convert(v: Any) -> Any:
        if not isinstance(v, expected):
            raise _wrong(path, kind, v)
        return _text(str(v), path) if kind == "string" else v

    return convert


def _text(v: str, path: str) -> str:
    try:
        v.encode("utf-8")
    except UnicodeEncodeError as exc:  # JSON's \\ud800 escapes decode to lone surrogates
        raise Malformed(f"field {path}: string holds a lone surrogate at character "
                        f"{exc.start}, which UTF-8 cannot encode") from None
    return v


def _integer(v: Any, kind: str, path: str) -> int:
    if not isinstance(v, int) or isinstance(v, bool):
        raise _wrong(path, kind, v)
    low, high = _RANGES[kind]
    if not low <= v <= high:
        raise Malformed(f"field {path}: {v} is out of the range of {kind}")
    return v


def _float(v: Any, kind: str, path: str) -> float:
    if not isinstance(v, (int, Decimal)) or isinstance(v, bool):
        raise _wrong(path, kind, v)
    try:
        out = float(v)
    except OverflowError:
        out = math.inf
    if not abs(out) <= _FLOAT_MAX[kind]:
        raise Malformed(f"field {path}: {v} is out of the range of {kind}")
    return out


def _bytes(t: Any, path: str, bytes_as: str, size: int | None) -> Convert:
    def convert(v: Any) -> bytes:
        if not isinstance(v, str):
            raise _wrong(path, t, v)
        if bytes_as == LATIN1:
            try:
                data = v.encode("latin-1")
            except UnicodeEncodeError:
                raise Malformed(f"field {path}: bytes default holds a code point above 255") from None
        else:
            try:
                data = base64.b64decode(v, validate=True)
            except (binascii.Error, ValueError):
                raise Malformed(f"field {path}: not base64 (RFC 4648, with padding)") from None
        if size is not None and len(data) != size:
            raise Malformed(f"field {path}: {len(data)} bytes where fixed {t['name']} has {size}")
        return data

    return convert


def _enum(t: dict[str, Any], path: str) -> Convert:
    symbols = frozenset(t["symbols"])

    def convert(v: Any) -> str:
        if not isinstance(v, str):
            raise _wrong(path, t, v)
        if v not in symbols:
            raise Malformed(f"field {path}: {v[:80]!r} is not a symbol of enum {t['name']}")
        return v

    return convert


def _union(t: list[Any], path: str, bytes_as: str) -> Convert:
    null_index, branch = union_branches(t)
    inner = compile_value(branch, path, bytes_as)
    if null_index is None:
        return inner

    def convert(v: Any) -> Any:
        return None if v is None else inner(v)

    return convert


def _record(t: dict[str, Any], path: str, bytes_as: str) -> Convert:
    prefix = f"{path}." if path else ""
    fields: list[tuple[str, Convert, tuple[Any] | None]] = []
    for f in t["fields"]:
        convert = compile_value(f["type"], prefix + f["name"], bytes_as)
        default = None
        if "default" in f:  # defaults follow the spec's JSON encoding (bytes as code points)
            default = (compile_value(f["type"], prefix + f["name"], LATIN1)(f["default"]),)
        fields.append((f["name"], convert, default))
    names = frozenset(name for name, _, _ in fields)

    def convert_record(v: Any) -> dict[str, Any]:
        if not isinstance(v, dict):
            raise _wrong(path or "(record)", t, v)
        extra = [k for k in v if k not in names]
        if extra:
            raise Malformed(f"unknown field {prefix}{_show(extra[0])}")
        out = {}
        for name, convert, default in fields:
            if name in v:
                out[name] = convert(v[name])
            elif default is not None:
                out[name] = default[0]
            else:
                raise Malformed(f"missing required field {prefix}{name}")
        return out

    return convert_record


def _array(t: dict[str, Any], path: str, bytes_as: str) -> Convert:
    item = compile_value(t["items"], f"{path}[]", bytes_as)

    def convert(v: Any) -> list[Any]:
        if not isinstance(v, list):
            raise _wrong(path, "array", v)
        return [item(x) for x in v]

    return convert


def _map(t: dict[str, Any], path: str, bytes_as: str) -> Convert:
    value = compile_value(t["values"], f"{path}{{}}", bytes_as)

    def convert(v: Any) -> list[tuple[str, Any]]:
        if not isinstance(v, dict):
            raise _wrong(path, "map", v)
        return [(_text(k, path), value(x)) for k, x in v.items()]

    return convert


def _timestamp(path: str, unit: timedelta) -> Convert:
    name = "timestamp-millis" if unit == _UNITS["timestamp-millis"] else "timestamp-micros"

    def convert(v: Any) -> int:
        if not isinstance(v, str):
            return _integer(v, "long", path) if isinstance(v, int) else _raise(_wrong(path, name, v))
        try:
            moment = datetime.fromisoformat(v)
        except ValueError:
            raise Malformed(f"field {path}: {v[:40]!r} is not an ISO-8601 timestamp") from None
        if moment.tzinfo is None:
            raise Malformed(f"field {path}: {v[:40]!r} has no UTC offset (add Z or +hh:mm)")
        try:
            delta = moment - _EPOCH
        except OverflowError:
            raise Malformed(f"field {path}: {v[:40]!r} is out of range") from None
        if delta % unit:
            raise Malformed(f"field {path}: {v[:40]!r} is finer than {name} can hold")
        return delta // unit

    return convert


def _date(path: str) -> Convert:
    def convert(v: Any) -> int:
        if not isinstance(v, str):
            return _integer(v, "int", path) if isinstance(v, int) else _raise(_wrong(path, "date", v))
        try:
            return (date.fromisoformat(v) - _EPOCH_DAY).days
        except ValueError:
            raise Malformed(f"field {path}: {v[:40]!r} is not an ISO-8601 date") from None

    return convert


def _decimal(t: dict[str, Any], path: str, bytes_as: str) -> Convert:
    precision, scale = int(t.get("precision", 0)), int(t.get("scale", 0))
    quantum = Decimal(1).scaleb(-scale)
    limit = Decimal(10) ** (precision - scale)
    raw = _bytes(t, path, bytes_as, int(t["size"]) if t["type"] == "fixed" else None)
    what = f"decimal({precision},{scale})"

    def convert(v: Any) -> Decimal:
        if bytes_as == LATIN1:  # a schema default: the unscaled two's-complement bytes
            return Decimal(int.from_bytes(raw(v), "big", signed=True)).scaleb(-scale)
        if isinstance(v, bool) or not isinstance(v, (int, Decimal, str)):
            raise _wrong(path, what, v)
        try:
            number = Decimal(v.strip()) if isinstance(v, str) else Decimal(v)
            if not number.is_finite():
                raise InvalidOperation
            exact = number.quantize(quantum, context=_EXACT)
        except InvalidOperation:
            raise Malformed(f"field {path}: {str(v)[:40]!r} is not a finite decimal") from None
        if exact != number:
            raise Malformed(f"field {path}: {str(v)[:40]!r} has more than {scale} decimal places")
        if abs(exact) >= limit:
            raise Malformed(f"field {path}: {str(v)[:40]!r} exceeds {what}")
        return exact

    return convert


def _show(text: str) -> str:
    """Data in a reason: at most 80 characters, lone surrogates escaped (a reason becomes a
    UTF-8 header of the quarantined record)."""
    return text[:80].encode("utf-8", "backslashreplace").decode("utf-8")


def _raise(exc: Malformed) -> Any:
    raise exc
