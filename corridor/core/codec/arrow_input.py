"""Source messages -> records: Avro single-object messages and Arrow IPC batches, mixed. Pure.

A *unit* is one source record: an Avro message, one row of an Arrow IPC
message (lineage ``topic/partition/offset#row``), or a message that is neither
(it is quarantined whole, lineage ``topic/partition/offset``). Which a message
is depends on its framing only (``corridor.core.codec.arrow_batches.arrow_rows``), the rule
``corridor verify`` applies to the source too, so both count the same records.

An Arrow batch must carry the dataset's columns (by name; extra columns are
refused) with types that cast safely to the dataset's Arrow types; otherwise
each of its rows is quarantined with the reason. A row with a null where the
Avro schema allows none (top level, or inside a required record), or an enum
value that is not a symbol, is quarantined alone. What passes is exactly what
the dataset's Avro schema can encode, as for Avro input.

With ``writer_schemas`` given, the messages that are not Arrow IPC may also be
Confluent-framed Avro or JSON, one record each (``corridor.core.codec.dialects``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.codec import Decoded, decode_avro, to_ipc
from corridor.core.codec.arrow_batches import looks_like_ipc, read_arrow
from corridor.core.codec.dialects import assemble, decode_records
from corridor.core.model import Lineage, RawMessage
from corridor.core.schema import AvroSchema, SchemaStore


@dataclass(frozen=True)
class Inputs:
    """The records of a batch of messages. ``decoded`` rows index into ``units``.

    ``side_values``: for an Arrow row that did not decode, the bytes its side
    record carries (a one-row Arrow IPC stream of the row as it came).
    """

    units: Sequence[RawMessage]
    decoded: Decoded
    first_unit: Sequence[int]  # first_unit[i]: the unit index of message i's first record
    side_values: dict[int, bytes] = field(default_factory=dict)


def decode_inputs(messages: Sequence[RawMessage], store: SchemaStore, schema: AvroSchema,
                  skip: frozenset[int] = frozenset(),
                  writer_schemas: Mapping[int, AvroSchema] | None = None) -> Inputs:
    """Decode ``messages`` into records (module docstring). Avro-only batches take the
    plain ``decode_avro`` path unchanged. Messages in ``skip`` are not decoded (their
    unit gets an error the caller replaces); error reasons carry no ``decode:`` prefix.

    ``writer_schemas`` None: the messages that are not Arrow IPC are single-object Avro.
    A mapping (schema id -> writer schema, possibly empty): they may also be Confluent-framed
    Avro or JSON, told apart per message (``corridor.core.codec.dialects``)."""
    values = [None if i in skip else m.value for i, m in enumerate(messages)] if skip else \
        [m.value for m in messages]
    if not any(looks_like_ipc(v) for v in values):
        return Inputs(messages, _records(values, store, schema, writer_schemas),
                      range(len(messages)))
    units: list[RawMessage] = []
    first_unit: list[int] = []
    parts: list[tuple[pa.RecordBatch, list[int]]] = []
    errors: list[tuple[int, str]] = []
    side: dict[int, bytes] = {}
    avro_units: list[int] = []
    avro_values: list[bytes | None] = []
    for m, value in zip(messages, values, strict=False):
        first_unit.append(len(units))
        batch = read_arrow(value) if looks_like_ipc(value) else None
        if batch is None:
            avro_units.append(len(units))
            avro_values.append(value)
            units.append(m)
            continue
        first = len(units)
        units.extend(RawMessage(Lineage(m.lineage.topic, m.lineage.partition, m.lineage.offset, r),
                                None, m.key, m.timestamp_ms, m.headers)
                     for r in range(batch.num_rows))
        good, bad = conform(batch, schema)
        for row, reason in bad:
            errors.append((first + row, reason))
            side[first + row] = to_ipc(batch.slice(row, 1), None)
        if good is not None:
            parts.append((good[0], [first + r for r in good[1]]))
    if avro_values:
        dec = _records(avro_values, store, schema, writer_schemas)
        errors += [(avro_units[i], reason) for i, reason in dec.errors]
        parts.append((dec.batch, [avro_units[r] for r in dec.rows]))
    return Inputs(units, assemble(parts, errors, schema), first_unit, side)


def _records(values: Sequence[bytes | None], store: SchemaStore, schema: AvroSchema,
             writer_schemas: Mapping[int, AvroSchema] | None) -> Decoded:
    if writer_schemas is None:
        return decode_avro(values, store, schema)
    return decode_records(values, store, schema, writer_schemas)


def conform(batch: pa.RecordBatch, schema: AvroSchema
            ) -> tuple[tuple[pa.RecordBatch, list[int]] | None, list[tuple[int, str]]]:
    """(the rows that fit the dataset, cast to its Arrow schema, with their row numbers),
    and (row, reason) for each row that does not."""
    target = schema.arrow
    columns, problem = _columns(batch, target)
    if problem is not None:
        return None, [(r, problem) for r in range(batch.num_rows)]
    cast = pa.RecordBatch.from_arrays(columns, schema=target)
    bad = _row_problems(cast, schema)
    if not bad:
        return (cast, list(range(cast.num_rows))), []
    keep = np.ones(cast.num_rows, dtype=bool)
    keep[list(bad)] = False
    good_rows = np.flatnonzero(keep).tolist()
    return (cast.filter(pa.array(keep)), good_rows), sorted(bad.items())


def _columns(batch: pa.RecordBatch, target: pa.Schema) -> tuple[list[pa.Array], str | None]:
    names = set(batch.schema.names)
    missing = [n for n in target.names if n not in names]
    extra = sorted(names - set(target.names))
    if missing or extra:
        what = f"missing {', '.join(missing)}" if missing else f"unexpected {', '.join(extra)}"
        return [], f"arrow batch columns do not match the dataset: {what}"
    out = []
    for f in target:
        column = batch.column(batch.schema.get_field_index(f.name))
        if column.type != f.type:
            try:
                column = pc.cast(column, f.type, safe=True)
            except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
                return [], f"arrow column {f.name} ({column.type}) is not {f.type}: {exc}"
        out.append(column)
    return out, None


def _row_problems(batch: pa.RecordBatch, schema: AvroSchema) -> dict[int, str]:
    bad: dict[int, str] = {}
    symbols = _enum_symbols(schema.raw)
    for f, column in zip(batch.schema, batch.columns, strict=False):
        _nulls(column, f, f.name, None, bad)
        if f.name in symbols:
            values = column.dictionary_decode() if pa.types.is_dictionary(column.type) else column
            ok = pc.fill_null(pc.is_in(values, pa.array(symbols[f.name])), True)
            for row in np.flatnonzero(~ok.to_numpy(zero_copy_only=False)).tolist():
                bad.setdefault(row, f"{f.name}: not a symbol of the enum")
    return bad


def _nulls(column: pa.Array, f: pa.Field, path: str, parent_valid: np.ndarray | None,
           bad: dict[int, str]) -> None:
    """Rows with a null in a required field, at the top level or inside required structs."""
    valid = np.asarray(column.is_valid().to_numpy(zero_copy_only=False))
    if parent_valid is not None:
        valid = valid | ~parent_valid  # a null child of a null parent is the parent's null
    if not f.nullable and column.null_count:
        for row in np.flatnonzero(~valid).tolist():
            bad.setdefault(row, f"null in required field {path}")
    if pa.types.is_struct(f.type):
        present = np.asarray(column.is_valid().to_numpy(zero_copy_only=False))
        for child, values in zip(f.type, column.flatten(), strict=False):
            _nulls(values, child, f"{path}.{child.name}", present, bad)


def _enum_symbols(raw: dict[str, Any]) -> dict[str, list[str]]:
    """Top-level enum fields (also nullable ones) -> their symbols."""
    out = {}
    for f in raw.get("fields", []):
        t = f["type"]
        branches = t if isinstance(t, list) else [t]
        for b in branches:
            if isinstance(b, dict) and b.get("type") == "enum":
                out[f["name"]] = list(b["symbols"])
    return out
