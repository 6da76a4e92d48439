"""Strict per-record Avro binary decoder: the reference the fast path is checked against.

fastavro's ``schemaless_reader`` is lenient in ways corridor cannot accept (bytes left
after the datum are ignored; a negative length reads "everything"; a huge block count
over zero-size items loops for ever). This decoder is a small closure tree compiled once
per schema; every way a datum can be malformed raises ``Malformed`` with a specific
reason, and no allocation is larger than the bytes that remain.

Values come out as Python objects that ``pa.array(..., type=schema.arrow struct)``
accepts: enums as symbol strings, timestamps/dates as ints, decimals as Decimal, maps
as lists of (key, value) tuples.
"""

from __future__ import annotations

import struct
from collections.abc import Callable
from decimal import Decimal
from typing import Any

from corridor.core.schema import union_branches

Reader = Callable[[bytes, int], tuple[Any, int]]

MAX_ZERO_SIZE_ITEMS = 1_000_000  # items that take no bytes (null, empty record) per block
_INT_MIN, _INT_MAX = -(1 << 31), (1 << 31) - 1
_F32 = struct.Struct("<f")
_F64 = struct.Struct("<d")


class Malformed(Exception):
    """A datum is not valid for its schema. ``reason`` says what and where."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def read_long(buf: bytes, pos: int) -> tuple[int, int]:
    """Zig-zag varint at ``pos``; at most 10 bytes, must fit in a signed 64-bit long."""
    start, shift, acc = pos, 0, 0
    n = len(buf)
    while True:
        if pos >= n:
            raise Malformed(f"truncated varint at offset {start}")
        b = buf[pos]
        pos += 1
        acc |= (b & 0x7F) << shift
        if not b & 0x80:
            break
        shift += 7
        if shift >= 70:
            raise Malformed(f"varint longer than 10 bytes at offset {start}")
    if acc >> 64:
        raise Malformed(f"varint overflows a 64-bit long at offset {start}")
    return (acc >> 1) ^ -(acc & 1), pos


def _read_int(buf: bytes, pos: int) -> tuple[int, int]:
    start = pos
    v, pos = read_long(buf, pos)
    if not _INT_MIN <= v <= _INT_MAX:
        raise Malformed(f"int {v} out of 32-bit range at offset {start}")
    return v, pos


def _take(buf: bytes, pos: int, size: int, what: str) -> int:
    """End offset of ``size`` bytes at ``pos``, checking the bytes are there."""
    if size < 0:
        raise Malformed(f"negative {what} length {size} at offset {pos}")
    if size > len(buf) - pos:
        raise Malformed(
            f"{what} length {size} at offset {pos} exceeds the {len(buf) - pos} bytes that remain"
        )
    return pos + size


def _read_bytes(buf: bytes, pos: int) -> tuple[bytes, int]:
    size, pos = read_long(buf, pos)
    end = _take(buf, pos, size, "bytes")
    return buf[pos:end], end


def _read_string(buf: bytes, pos: int) -> tuple[str, int]:
    size, pos = read_long(buf, pos)
    end = _take(buf, pos, size, "string")
    try:
        return buf[pos:end].decode("utf-8"), end
    except UnicodeDecodeError as exc:
        raise Malformed(f"invalid UTF-8 in string at offset {pos + exc.start}") from None


def _read_boolean(buf: bytes, pos: int) -> tuple[bool, int]:
    if pos >= len(buf):
        raise Malformed(f"truncated boolean at offset {pos}")
    b = buf[pos]
    if b > 1:
        raise Malformed(f"invalid boolean byte 0x{b:02x} at offset {pos}")
    return b == 1, pos + 1


def _fixed_reader(size: int, what: str, unpack: Callable[[bytes, int], Any] | None) -> Reader:
    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        if size > len(buf) - pos:
            raise Malformed(f"truncated {what}: needs {size} bytes at offset {pos}")
        if unpack is None:
            return buf[pos : pos + size], pos + size
        return unpack(buf, pos)[0], pos + size

    return read


def _read_null(buf: bytes, pos: int) -> tuple[None, int]:
    return None, pos


_PRIMITIVE_READERS: dict[str, Reader] = {
    "null": _read_null,
    "boolean": _read_boolean,
    "int": _read_int,
    "long": read_long,
    "float": _fixed_reader(4, "float", _F32.unpack_from),
    "double": _fixed_reader(8, "double", _F64.unpack_from),
    "bytes": _read_bytes,
    "string": _read_string,
}


def min_size(t: Any) -> int:
    """Fewest bytes a datum of type ``t`` can take (0 for null, empty records, fixed(0))."""
    if isinstance(t, str):
        return {"null": 0, "boolean": 1, "float": 4, "double": 8}.get(t, 1)
    if isinstance(t, list):
        return 1
    kind = t["type"]
    if kind == "record":
        return sum(min_size(f["type"]) for f in t["fields"])
    if kind == "fixed":
        return int(t["size"])
    return min_size(kind) if kind in ("null", "boolean", "float", "double") else 1


def compile_reader(t: Any) -> Reader:
    """Reader for an expanded Avro type."""
    if isinstance(t, str):
        return _PRIMITIVE_READERS[t]
    if isinstance(t, list):
        return _union_reader(t)
    kind, logical = t["type"], t.get("logicalType")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return _decimal_reader(t, kind)
    if kind == "record":
        return _record_reader(t)
    if kind == "enum":
        return _enum_reader(t)
    if kind in ("array", "map"):
        return _blocks_reader(t, kind)
    if kind == "fixed":
        return _fixed_reader(int(t["size"]), f"fixed {t['name']}", None)
    return compile_reader(kind)


def _record_reader(t: dict[str, Any]) -> Reader:
    fields = [(f["name"], compile_reader(f["type"])) for f in t["fields"]]

    def read(buf: bytes, pos: int) -> tuple[dict[str, Any], int]:
        out = {}
        for name, reader in fields:
            out[name], pos = reader(buf, pos)
        return out, pos

    return read


def _enum_reader(t: dict[str, Any]) -> Reader:
    symbols, name = list(t["symbols"]), t["name"]

    def read(buf: bytes, pos: int) -> tuple[str, int]:
        start = pos
        i, pos = read_long(buf, pos)
        if not 0 <= i < len(symbols):
            raise Malformed(
                f"enum index {i} out of range for {name} ({len(symbols)} symbols) at offset {start}"
            )
        return symbols[i], pos

    return read


def _union_reader(t: list[Any]) -> Reader:
    union_branches(t)  # refuses unions of several non-null types
    readers = [compile_reader(b) for b in t]

    def read(buf: bytes, pos: int) -> tuple[Any, int]:
        start = pos
        i, pos = read_long(buf, pos)
        if not 0 <= i < len(readers):
            raise Malformed(
                f"union index {i} out of range ({len(readers)} branches) at offset {start}"
            )
        return readers[i](buf, pos)

    return read


def _blocks_reader(t: dict[str, Any], kind: str) -> Reader:
    item_type = t["items"] if kind == "array" else t["values"]
    item = compile_reader(item_type)
    per_item = min_size(item_type) + (1 if kind == "map" else 0)

    def read(buf: bytes, pos: int) -> tuple[list[Any], int]:
        out: list[Any] = []
        while True:
            start = pos
            count, pos = read_long(buf, pos)
            if count == 0:
                return out, pos
            if count < 0:  # negative count: a byte size follows (spec, "Complex types")
                count = -count
                size, pos = read_long(buf, pos)
                _take(buf, pos, size, f"{kind} block")
            _check_count(buf, pos, start, count, per_item, kind)
            for _ in range(count):
                if kind == "map":
                    key, pos = _read_string(buf, pos)
                    value, pos = item(buf, pos)
                    out.append((key, value))
                else:
                    value, pos = item(buf, pos)
                    out.append(value)

    return read


def _check_count(buf: bytes, pos: int, start: int, count: int, per_item: int, kind: str) -> None:
    if per_item == 0:
        if count > MAX_ZERO_SIZE_ITEMS:
            raise Malformed(
                f"{kind} block of {count} zero-size items at offset {start} "
                f"exceeds the limit of {MAX_ZERO_SIZE_ITEMS}"
            )
    elif count * per_item > len(buf) - pos:
        raise Malformed(
            f"{kind} block count {count} at offset {start} exceeds the "
            f"{len(buf) - pos} bytes that remain"
        )


def _decimal_reader(t: dict[str, Any], kind: str) -> Reader:
    precision, scale = int(t.get("precision", 0)), int(t.get("scale", 0))
    raw = _read_bytes if kind == "bytes" else _fixed_reader(int(t["size"]), "decimal", None)
    limit = 10**precision

    def read(buf: bytes, pos: int) -> tuple[Decimal, int]:
        start = pos
        data, pos = raw(buf, pos)
        unscaled = int.from_bytes(data, "big", signed=True)
        if not -limit < unscaled < limit:
            raise Malformed(f"decimal at offset {start} exceeds decimal({precision},{scale})")
        return Decimal(unscaled).scaleb(-scale), pos

    return read


def decode_body(reader: Reader, body: bytes) -> Any:
    """Decode one datum that must use every byte of ``body``. Raises Malformed."""
    value, end = reader(body, 0)
    if end != len(body):
        raise Malformed(f"{len(body) - end} trailing bytes after the datum (at offset {end})")
    return value
