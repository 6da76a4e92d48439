"""Canonical plaintext encoding of one Arrow value, for per-value (avro format) encryption.

| Arrow type                                   | plaintext bytes                                   |
|----------------------------------------------|---------------------------------------------------|
| string, large_string                         | UTF-8                                             |
| binary, large_binary, fixed_size_binary(n)   | the bytes as they are                             |
| int8..int64, uint8..uint64                   | two's complement, little-endian, the type's width |
| float32, float64                             | IEEE 754, little-endian, the type's width         |
| bool                                         | one byte, 0x00 or 0x01                            |
| timestamp(any unit, any tz), duration, time64, date64 | int64 little-endian (unit from the type)  |
| date32, time32                               | int32 little-endian                               |
| decimal128(p, s) / decimal256(p, s)          | unscaled integer, 16 / 32 bytes little-endian     |
| dictionary(index, value)                     | the encoding of the value type                    |

This is Arrow's own in-memory layout (on little-endian hosts), so encoding
is slicing, not converting. The encoding carries no type tag: decoding needs
the Arrow type, which the caller has from the dataset schema. Nested types
(struct, list, map) are not supported per value; use the arrow format.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from itertools import pairwise

import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.errors import CryptoError, TamperedCiphertext

Plaintexts = list[memoryview | bytes | None]

if sys.byteorder != "little":  # pragma: no cover - every supported platform is little-endian
    raise ImportError("corridor.core.crypto needs a little-endian host")


def _width(t: pa.DataType) -> int | None:
    """Fixed byte width of a value of ``t``, or None for variable-width types."""
    if pa.types.is_fixed_size_binary(t) or pa.types.is_decimal(t):
        return int(t.byte_width)
    if (
        pa.types.is_integer(t) or pa.types.is_floating(t) or pa.types.is_temporal(t)
    ) and not pa.types.is_interval(t):
        return int(t.bit_width) // 8
    return None


def _check_supported(t: pa.DataType) -> None:
    ok = (
        pa.types.is_string(t)
        or pa.types.is_large_string(t)
        or pa.types.is_binary(t)
        or pa.types.is_large_binary(t)
        or pa.types.is_boolean(t)
        or _width(t) is not None
    )
    if not ok:
        raise CryptoError(f"cannot encrypt values of Arrow type {t} one by one")


Spans = tuple[bytes, Sequence[int], list[bool] | None]


def value_spans(arr: pa.Array) -> Spans:
    """``(data, offsets, valid)``: value i's plaintext is ``data[offsets[i]:offsets[i+1]]``.

    ``valid`` is None when there are no nulls. This is the form the cipher
    loops use: one copy of the data buffer, then slices, no per-value objects
    beyond the slice.
    """
    if pa.types.is_dictionary(arr.type):
        arr = arr.dictionary_decode()
    t = arr.type
    _check_supported(t)
    if pa.types.is_boolean(t):
        arr, t = pc.cast(arr, pa.uint8()), pa.uint8()
    n = len(arr)
    bufs = arr.buffers()
    width = _width(t)
    offsets: Sequence[int]
    if width is not None:
        offsets = range(arr.offset * width, (arr.offset + n) * width + 1, width)
        data_buf = bufs[1]
    else:
        raw = memoryview(bufs[1])
        large = pa.types.is_large_string(t) or pa.types.is_large_binary(t)
        offs = raw.cast("q") if large else raw.cast("i")
        offsets = offs[arr.offset : arr.offset + n + 1].tolist()
        data_buf = bufs[2]
    end = offsets[-1] if n else 0
    data = memoryview(data_buf).cast("B")[:end].tobytes() if data_buf is not None else b""
    valid = arr.is_valid().to_pylist() if arr.null_count else None
    return data, offsets, valid


def encode_values(arr: pa.Array) -> Plaintexts:
    """Plaintext of every value, None for nulls."""
    data, offsets, valid = value_spans(arr)
    out: Plaintexts = [data[s:e] for s, e in pairwise(offsets)]
    if valid is not None:
        out = [p if ok else None for p, ok in zip(out, valid, strict=False)]
    return out


def decode_values(plaintexts: list[bytes | None], arrow_type: pa.DataType) -> pa.Array:
    """Inverse of ``encode_values``. Raises TamperedCiphertext when a value cannot be of that type.

    (Reaching that error means the ciphertext authenticated but decodes badly:
    the caller gave the wrong type, or the writer was broken.)
    """
    if pa.types.is_dictionary(arrow_type):
        plain = decode_values(plaintexts, arrow_type.value_type)
        return pc.cast(plain.dictionary_encode(), arrow_type)
    _check_supported(arrow_type)
    if pa.types.is_boolean(arrow_type):
        as_int = decode_values(plaintexts, pa.uint8())
        if pc.max(as_int).as_py() not in (None, 0, 1):
            raise TamperedCiphertext("decrypted boolean is neither 0 nor 1")
        return pc.cast(as_int, pa.bool_())
    width = _width(arrow_type)
    if width is None:
        binary = (
            pa.large_binary()
            if pa.types.is_large_string(arrow_type) or pa.types.is_large_binary(arrow_type)
            else pa.binary()
        )
        try:
            return pa.array(plaintexts, binary).cast(arrow_type)
        except (pa.ArrowInvalid, UnicodeDecodeError):
            raise TamperedCiphertext(f"decrypted value is not a valid {arrow_type}") from None
    zero = bytes(width)
    if any(p is not None and len(p) != width for p in plaintexts):
        raise TamperedCiphertext(f"decrypted value does not have the width of {arrow_type}")
    data = b"".join(zero if p is None else p for p in plaintexts)
    n = len(plaintexts)
    validity = None
    nulls = sum(p is None for p in plaintexts)
    if nulls:
        validity = pa.array([p is not None for p in plaintexts], pa.bool_()).buffers()[1]
    return pa.Array.from_buffers(arrow_type, n, [validity, pa.py_buffer(data)], null_count=nulls)
