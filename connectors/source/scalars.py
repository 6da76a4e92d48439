"""One value of a file row into the Python value fastavro writes for an Avro type (pure).

``coercer(avro_type, path, text)`` compiles a function for one field. ``text=True`` is for
formats whose cells are strings (CSV): numbers, booleans, timestamps and JSON-typed
cells (arrays, maps) are parsed from text. Typed formats (JSON Lines, Parquet, Avro) must
carry the right kind of value; the exceptions are what those formats cannot spell:
timestamps and dates as ISO 8601 strings (JSON has no date type), bytes as base64 text.

A value that does not fit raises ``Bad`` with the dotted path and the reason; the row
converter turns it into a reject (a value, never an exception to the caller).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from connectors.source.logical import logical_coercer
from connectors.source.problems import Bad, Coerce, kind_of

INT_RANGE = {"int": (-(2**31), 2**31 - 1), "long": (-(2**63), 2**63 - 1)}
TRUE = frozenset({"true", "t", "yes", "y", "1"})
FALSE = frozenset({"false", "f", "no", "n", "0"})
MISSING = object()  # a column the row does not have (not the same as a null cell)


def coercer(t: Any, path: str, text: bool) -> Coerce:
    """The coercion of one (expanded) Avro type at ``path``; ``text``: cells are strings."""
    if isinstance(t, list):
        return _union(t, path, text)
    return _required(_plain(t, path, text), path, text, t)


def _union(t: list[Any], path: str, text: bool) -> Coerce:
    branches = [b for b in t if b != "null"]
    if len(branches) != 1:
        raise ValueError(f"{path}: only [\"null\", T] unions are supported")
    inner = _plain(branches[0], path, text)
    nullable = "null" in t
    blank_is_null = text and _base(branches[0]) != "string"

    def union(value: Any) -> Any:
        if value is None or (blank_is_null and value == ""):
            if nullable:
                return None
            raise Bad(path, "null in a required field")
        if text and value == "" and nullable:
            return None  # an empty CSV cell of a nullable string is null
        return inner(value)

    return union


def _required(inner: Coerce, path: str, text: bool, t: Any) -> Coerce:
    blank_is_missing = text and _base(t) != "string"

    def required(value: Any) -> Any:
        if value is None or (blank_is_missing and value == ""):
            raise Bad(path, "null in a required field")
        return inner(value)

    return required


def _base(t: Any) -> str:
    return t if isinstance(t, str) else str(t.get("type"))


def _plain(t: Any, path: str, text: bool) -> Coerce:
    if isinstance(t, str):
        return _primitive(t, path, text)
    logical = t.get("logicalType")
    if logical is not None and (found := logical_coercer(t, logical, path)) is not None:
        return found
    kind = t["type"]
    if kind == "record":
        return _record(t, path, text)
    if kind == "enum":
        return _enum(t, path)
    if kind in ("array", "map"):
        return _container(t, path, text)
    if kind == "fixed":
        return _fixed(int(t["size"]), path, text)
    return _primitive(kind, path, text)


def _primitive(name: str, path: str, text: bool) -> Coerce:
    makers: dict[str, Callable[[str, bool], Coerce]] = {
        "string": _string, "boolean": _boolean, "int": _integer("int"), "long": _integer("long"),
        "float": _floating, "double": _floating, "bytes": _bytes, "null": _null}
    if name not in makers:
        raise ValueError(f"{path}: unsupported Avro type {name!r}")
    return makers[name](path, text)


def _null(path: str, _text: bool) -> Coerce:
    def null(value: Any) -> Any:
        raise Bad(path, f"expected null, got {kind_of(value)}", value)

    return null


def _string(path: str, _text: bool) -> Coerce:
    def string(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad(path, f"expected string, got {kind_of(value)}", value)
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise Bad(path, "not valid UTF-8", value) from None
        return value

    return string


def _boolean(path: str, text: bool) -> Coerce:
    def boolean(value: Any) -> bool:
        if isinstance(value, bool):
            return value
        if text and isinstance(value, str):
            word = value.strip().lower()
            if word in TRUE or word in FALSE:
                return word in TRUE
            raise Bad(path, "not a boolean (true/false)", value)
        raise Bad(path, f"expected boolean, got {kind_of(value)}", value)

    return boolean


def _integer(kind: str) -> Callable[[str, bool], Coerce]:
    low, high = INT_RANGE[kind]

    def make(path: str, text: bool) -> Coerce:
        def integer(value: Any) -> int:
            if isinstance(value, bool):
                raise Bad(path, f"expected {kind}, got boolean", value)
            if isinstance(value, float) and value.is_integer():
                value = int(value)
            elif text and isinstance(value, str):
                try:
                    value = int(value.strip())
                except ValueError:
                    raise Bad(path, "not an integer", value) from None
            if not isinstance(value, int):
                raise Bad(path, f"expected {kind}, got {kind_of(value)}", value)
            if not low <= value <= high:
                raise Bad(path, f"out of range for {kind}", value)
            return value

        return integer

    return make


def _floating(path: str, text: bool) -> Coerce:
    def floating(value: Any) -> float:
        if isinstance(value, bool):
            raise Bad(path, "expected a number, got boolean", value)
        if isinstance(value, (int, float, Decimal)):
            return float(value)
        if text and isinstance(value, str):
            try:
                return float(value.strip())
            except ValueError:
                raise Bad(path, "not a number", value) from None
        raise Bad(path, f"expected a number, got {kind_of(value)}", value)

    return floating


def _bytes(path: str, _text: bool) -> Coerce:
    def as_bytes(value: Any) -> bytes:
        if isinstance(value, (bytes, bytearray, memoryview)):
            return bytes(value)
        if isinstance(value, str):
            try:
                return base64.b64decode(value.removeprefix("base64:"), validate=True)
            except (binascii.Error, ValueError):
                raise Bad(path, "not base64", value) from None
        raise Bad(path, f"expected bytes, got {kind_of(value)}", value)

    return as_bytes


def _fixed(size: int, path: str, text: bool) -> Coerce:
    inner = _bytes(path, text)

    def fixed(value: Any) -> bytes:
        out: bytes = inner(value)
        if len(out) != size:
            raise Bad(path, f"expected {size} bytes, got {len(out)}", value)
        return out

    return fixed


def _enum(t: Mapping[str, Any], path: str) -> Coerce:
    symbols = frozenset(t["symbols"])

    def enum(value: Any) -> str:
        if not isinstance(value, str):
            raise Bad(path, f"expected one of the {t['name']} symbols, got {kind_of(value)}",
                      value)
        if value not in symbols:
            raise Bad(path, f"not a {t['name']} symbol", value)
        return value

    return enum


def _record(t: Mapping[str, Any], path: str, text: bool) -> Coerce:
    fields = [(f["name"], coercer(f["type"], f"{path}.{f['name']}", text), f)
              for f in t["fields"]]

    def record(value: Any) -> dict[str, Any]:
        if isinstance(value, str) and text:
            value = _json(value, path)
        if not isinstance(value, Mapping):
            raise Bad(path, f"expected an object, got {kind_of(value)}", value)
        return {name: fill(value, name, coerce, f, f"{path}.{name}")
                for name, coerce, f in fields}

    return record


def fill(row: Mapping[str, Any], name: str, coerce: Coerce, f: Mapping[str, Any],
         path: str) -> Any:
    """Field ``name`` of ``row`` coerced; a missing column takes the field's default."""
    value = row.get(name, MISSING)
    if value is MISSING:
        if "default" in f:
            return f["default"]
        raise Bad(path, "missing column")
    return coerce(value)


def _container(t: Mapping[str, Any], path: str, text: bool) -> Coerce:
    is_map = t["type"] == "map"
    inner = coercer(t["values"] if is_map else t["items"], f"{path}[]", False)

    def container(value: Any) -> Any:
        if isinstance(value, str) and text:
            value = _json(value, path)
        if is_map and isinstance(value, Mapping):
            return {str(k): inner(v) for k, v in value.items()}
        if not is_map and isinstance(value, (list, tuple)):
            return [inner(v) for v in value]
        raise Bad(path, f"expected {'an object' if is_map else 'a list'}, got {kind_of(value)}",
                  value)

    return container


def _json(value: str, path: str) -> Any:
    try:
        return json.loads(value)
    except ValueError:
        raise Bad(path, "not JSON", value) from None
