"""Column-wise Avro binary encoder: an Arrow array -> one Avro datum per row, vectorised.

Per-record encoders (fastavro ``schemaless_writer``) spend their time in the Python
loop over records. Avro binary is a concatenation: a record is its fields' encodings
back to back, an array is ``count, items..., 0``, a nullable union is the branch index
then the value. So each column is encoded to a binary array of per-row pieces with
numpy (zig-zag varints, little-endian floats, big-endian decimals) and pieces are
joined row-wise with Arrow's ``binary_join_element_wise`` / ``binary_join`` kernels.

The output is the canonical encoding: shortest varints, one block per non-empty
array/map, the Java ``BigInteger.toByteArray`` (shortest two's complement) for bytes
decimals. A row whose value is not valid for the schema (a null in a non-nullable
field, a decimal that does not fit a fixed, an enum value that is not a symbol) comes
out as a null piece: callers decide whether that is an error (encode) or a mismatch
(decode verification).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.schema import union_branches

_SEP = pa.scalar(b"", pa.large_binary())
_END = pa.scalar(b"\x00", pa.large_binary())


def _binary(offsets: np.ndarray, data: np.ndarray) -> pa.Array:
    n = len(offsets) - 1
    return pa.Array.from_buffers(
        pa.large_binary(),
        n,
        [None, pa.py_buffer(offsets.astype(np.int64)), pa.py_buffer(data.astype(np.uint8))],
    )


def varints(values: np.ndarray) -> pa.Array:
    """Zig-zag varint of each int64 value, as a large_binary array."""
    v = values.astype(np.int64, copy=False)
    u = ((v << 1) ^ (v >> 63)).view(np.uint64)
    nbytes = np.ones(len(u), dtype=np.int64)
    for k in range(1, 10):
        more = u >= np.uint64(1 << (7 * k))
        if not more.any():
            break
        nbytes += more
    offsets = np.zeros(len(u) + 1, dtype=np.int64)
    np.cumsum(nbytes, out=offsets[1:])
    width = int(nbytes.max()) if len(u) else 1
    if width == 1:  # the common case: every value in -64..63
        return _binary(offsets, u.astype(np.uint8))
    cols = np.empty((len(u), width), dtype=np.uint8)
    for k in range(width):
        cont = (nbytes > k + 1).astype(np.uint8) << 7
        cols[:, k] = ((u >> np.uint64(7 * k)) & np.uint64(0x7F)).astype(np.uint8) | cont
    return _binary(offsets, cols[np.arange(width) < nbytes[:, None]])


def _fixed_width(arr: pa.Array, np_type: type, width: int) -> pa.Array:
    filled = pc.fill_null(arr, pa.scalar(0, arr.type)) if arr.null_count else arr
    data = np.ascontiguousarray(filled.to_numpy(zero_copy_only=False).astype(np_type, copy=False))
    offsets = np.arange(0, width * len(arr) + 1, width, dtype=np.int64)
    pieces = _binary(offsets, data.view(np.uint8).ravel())
    return _nulls_where(arr, pieces)


def _nulls_where(arr: pa.Array, pieces: pa.Array) -> pa.Array:
    if not arr.null_count:
        return pieces
    return pc.if_else(pc.is_valid(arr), pieces, pa.scalar(None, pa.large_binary()))


def _ints(arr: pa.Array) -> pa.Array:
    if pa.types.is_date32(arr.type):
        arr = arr.cast(pa.int32())
    ints = arr.cast(pa.int64()) if arr.type != pa.int64() else arr
    filled = pc.fill_null(ints, 0) if ints.null_count else ints
    return _nulls_where(arr, varints(filled.to_numpy(zero_copy_only=False)))


def _length_prefixed(arr: pa.Array) -> pa.Array:
    data = arr.cast(pa.large_binary())
    lengths = pc.fill_null(pc.binary_length(data), 0).to_numpy(zero_copy_only=False)
    return pc.binary_join_element_wise(varints(lengths), data, _SEP)


def encode_column(arr: pa.Array, t: Any) -> pa.Array:
    """Per-row Avro encodings of ``arr`` (an Arrow array of the mapped type of ``t``)."""
    if isinstance(t, list):
        return _union(arr, t)
    if isinstance(t, dict):
        return _complex(arr, t)
    if t in ("int", "long"):
        return _ints(arr)
    if t in ("string", "bytes"):
        return _length_prefixed(arr)
    if t == "double":
        return _fixed_width(arr, np.float64, 8)
    if t == "float":
        return _fixed_width(arr, np.float32, 4)
    if t == "boolean":
        return _fixed_width(arr.cast(pa.uint8()), np.uint8, 1)
    if t == "null":
        return pc.if_else(pc.is_null(arr), pa.scalar(b"", pa.large_binary()), None)
    raise TypeError(f"unknown Avro type {t!r}")


def _complex(arr: pa.Array, t: dict[str, Any]) -> pa.Array:
    kind, logical = t["type"], t.get("logicalType")
    if logical == "decimal" and kind in ("bytes", "fixed"):
        return _decimal(arr, kind, t)
    if kind == "record":
        return _record(arr, t)
    if kind == "enum":
        return _enum(arr, t)
    if kind == "array":
        return _blocks(arr, arr.values, None, t["items"])
    if kind == "map":
        return _blocks(arr, arr.items, arr.keys, t["values"])
    if kind == "fixed":
        data = arr.cast(pa.large_binary())
        ok = pc.equal(pc.binary_length(data), int(t["size"]))
        return pc.if_else(ok, data, pa.scalar(None, pa.large_binary()))
    return encode_column(arr, kind)


def _union(arr: pa.Array, t: list[Any]) -> pa.Array:
    null_index, branch = union_branches(t)
    if null_index is None:
        return encode_column(arr, branch)
    value_index = 1 - null_index
    tag = varints(np.array([value_index], dtype=np.int64))[0]
    present = pc.binary_join_element_wise(tag, encode_column(arr, branch), _SEP)
    null_tag = pa.scalar(bytes([null_index * 2]), pa.large_binary())
    return pc.if_else(pc.is_valid(arr), present, null_tag)


def _record(arr: pa.Array, t: dict[str, Any]) -> pa.Array:
    fields = t["fields"]
    if not fields:
        empty = pa.array([b""] * len(arr), pa.large_binary())
        return _nulls_where(arr, empty)
    pieces = [encode_column(arr.field(i), f["type"]) for i, f in enumerate(fields)]
    joined = pc.binary_join_element_wise(*pieces, _SEP) if len(pieces) > 1 else pieces[0]
    return _nulls_where(arr, joined)


def _enum(arr: pa.Array, t: dict[str, Any]) -> pa.Array:
    symbols = pa.array(t["symbols"], pa.string())
    if pa.types.is_dictionary(arr.type):
        index = pc.index_in(arr.dictionary.cast(pa.string()), value_set=symbols)
        avro_index = pc.take(index, arr.indices)
    else:
        avro_index = pc.index_in(arr.cast(pa.string()), value_set=symbols)
    return _ints(avro_index)


def _blocks(arr: pa.Array, values: pa.Array, keys: pa.Array | None, t: Any) -> pa.Array:
    """Arrays and maps: ``count, items..., 0`` or just ``0`` when empty."""
    items = encode_column(values, t)
    if keys is not None:
        items = pc.binary_join_element_wise(_length_prefixed(keys), items, _SEP)
    offsets = arr.offsets.cast(pa.int64())
    joined = pc.binary_join(pa.LargeListArray.from_arrays(offsets, items), _SEP)
    counts = np.diff(offsets.to_numpy(zero_copy_only=False))
    block = pc.binary_join_element_wise(varints(counts), joined, _END, _SEP)
    empty = pa.scalar(b"\x00", pa.large_binary())
    out = pc.if_else(pa.array(counts == 0), empty, block)
    return _nulls_where(arr, out)


def _decimal(arr: pa.Array, kind: str, t: dict[str, Any]) -> pa.Array:
    """Big-endian two's complement of the unscaled value (decimal128 buffers are LE)."""
    n = len(arr)
    arr = _within_precision(arr)
    buf = arr.buffers()[1]
    le = np.frombuffer(buf, dtype=np.uint8)[arr.offset * 16 : (arr.offset + n) * 16]
    be = le.reshape(n, 16)[:, ::-1]
    # A leading byte is redundant when it only repeats the sign of the byte after it.
    lead, nxt = be[:, :15], be[:, 1:]
    redundant = ((lead == 0) & (nxt < 0x80)) | ((lead == 0xFF) & (nxt >= 0x80))
    skip = np.cumprod(redundant, axis=1).sum(axis=1)
    if kind == "fixed":
        size = int(t["size"])
        fits = skip >= 16 - size
        sign = np.where(be[:, 0] >= 0x80, 0xFF, 0).astype(np.uint8)
        pad = np.repeat(sign[:, None], max(size - 16, 0), axis=1)
        body = np.concatenate([pad, be[:, max(16 - size, 0) :]], axis=1)
        offsets = np.arange(0, size * n + 1, size, dtype=np.int64)
        pieces = _binary(offsets, np.ascontiguousarray(body).ravel())
        ok = pc.and_(pa.array(fits), pc.is_valid(arr))
        return pc.if_else(ok, pieces, pa.scalar(None, pa.large_binary()))
    keep = np.arange(16) >= skip[:, None]
    lengths = 16 - skip
    offsets = np.zeros(n + 1, dtype=np.int64)
    np.cumsum(lengths, out=offsets[1:])
    data = _binary(offsets, be[keep])
    pieces = pc.binary_join_element_wise(varints(lengths), data, _SEP)
    return _nulls_where(arr, pieces)


def _within_precision(arr: pa.Array) -> pa.Array:
    """``arr`` with nulls where a value has more digits than its type's precision allows."""
    p, s = arr.type.precision, arr.type.scale
    wide = pa.decimal128(38, s)
    bound = pa.scalar(Decimal(10**p).scaleb(-s), wide)
    fits = pc.less(pc.abs(arr.cast(wide)), bound)
    if pc.all(fits).as_py() is not False:
        return arr
    return pc.if_else(fits, arr, pa.scalar(None, arr.type))


def encode_bodies(batch: pa.RecordBatch, expanded: dict[str, Any]) -> pa.Array:
    """Avro binary body of every row of ``batch`` (large_binary; null = row not encodable)."""
    as_struct = pa.StructArray.from_arrays(batch.columns, fields=list(batch.schema))
    return _record(as_struct, expanded)
