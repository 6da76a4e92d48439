"""Bring Arrow data from any decoder into the exact shape of corridor/core/schema.py's Avro -> Arrow mapping.

polars returns ``large_string``, ``large_list`` and ``dictionary<uint32, large_string>``
in order of appearance; ``pa.array`` from Python values builds dictionaries in order of
appearance too. ``normalize`` rebuilds every column with the schema's Arrow types and
enums as ``dictionary<int32, string>`` whose dictionary is exactly the enum's symbols,
so batches from either path are equal and concatenate.
"""

from __future__ import annotations

from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.schema import AvroSchema, arrow_type, union_branches


def normalize(data: pa.Table | pa.StructArray, schema: AvroSchema) -> pa.StructArray:
    """A struct array (one row per record) with the schema's canonical Arrow types."""
    if isinstance(data, pa.Table):
        table = data.combine_chunks()
        columns = [
            col.chunk(0) if col.num_chunks else pa.array([], col.type) for col in table.columns
        ]
        fields = [pa.field(n, c.type) for n, c in zip(table.column_names, columns, strict=False)]
        data = pa.StructArray.from_arrays(columns, fields=fields) if columns else pa.array(
            [{}] * table.num_rows, pa.struct([])
        )
    return _record(data, schema.expanded)


def struct_to_batch(arr: pa.StructArray, schema: pa.Schema) -> pa.RecordBatch:
    """RecordBatch with ``schema`` (keeps field nullability) from a struct array."""
    columns = [arr.field(i) for i in range(arr.type.num_fields)]
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _record(arr: pa.Array, t: dict[str, Any]) -> pa.StructArray:
    names = [f["name"] for f in t["fields"]]
    children = [_shape(arr.field(name), f["type"]) for name, f in zip(names, t["fields"], strict=False)]
    target = arrow_type(t)
    mask = pc.is_null(arr) if arr.null_count else None
    return pa.StructArray.from_arrays(children, fields=list(target), mask=mask)


def _shape(arr: pa.Array, t: Any) -> pa.Array:
    if isinstance(t, list):
        return _shape(arr, union_branches(t)[1])
    target = arrow_type(t)
    if isinstance(t, str) or (t["type"] not in ("record", "enum", "array", "map")):
        return arr if arr.type == target else arr.cast(target)
    kind = t["type"]
    if kind == "record":
        return _record(arr, t)
    if kind == "enum":
        return _enum(arr, t["symbols"])
    mask = pc.is_null(arr) if arr.null_count else None
    offsets = arr.offsets.cast(pa.int32())
    if kind == "array":
        values = _shape(arr.values, t["items"])
        return pa.ListArray.from_arrays(offsets, values, type=target, mask=mask)
    keys = arr.keys.cast(pa.string())
    items = _shape(arr.items, t["values"])
    return pa.MapArray.from_arrays(offsets, keys, items, type=target, mask=mask)


def _enum(arr: pa.Array, symbols: list[str]) -> pa.DictionaryArray:
    syms = pa.array(symbols, pa.string())
    if pa.types.is_dictionary(arr.type):
        index = pc.take(pc.index_in(arr.dictionary.cast(pa.string()), value_set=syms), arr.indices)
    else:
        index = pc.index_in(arr.cast(pa.string()), value_set=syms)
    return pa.DictionaryArray.from_arrays(index.cast(pa.int32()), syms)
