"""The dialects a park may produce in, told apart per record, and decoded into one batch. Pure.

``dialect_of`` looks at a value's first bytes only:

- ``avro``: single-object Avro (``C3 01`` + fingerprint; ``corridor.core.schema``). A null
  or empty value counts here too, so it keeps the reason the Avro path gives it.
- ``confluent``: Confluent-framed Avro (``00`` + 4-byte schema id; ``corridor.core.wire``),
  what confluent-kafka's ``AvroSerializer`` and Kafka Connect's ``AvroConverter`` write.
- ``json``: one JSON object (first byte other than JSON whitespace is ``{``):
  ``corridor.core.codec.json_decode``, whose docstring gives the conventions.
- anything else: quarantined, ``bad magic <first two bytes>``.

``decode_records`` decodes a batch of values of any mix with the same contract as
``decode_avro`` (a ``Decoded``: rows of the dataset's Arrow schema plus a reason for each
value that did not decode). Single-object values take ``decode_avro``'s fast path, and so
do Confluent-framed values whose writer schema has the dataset's fingerprint and resolves
to it unchanged (reframed: their body is the same datum). Other Confluent-framed values are decoded per record with
the strict decoder under their *writer* schema (``avro_strict``: every malformation has
its reason; fastavro is too lenient to face hostile bytes), then resolved to the dataset
schema by Avro schema resolution (specification, "Schema Resolution"): fields matched by
name or the reader's aliases, writer-only fields skipped, dataset-only fields take their
default, int/long/float promotions, string <-> bytes, enum symbols by name (an unknown
symbol takes the enum's default). Stricter than the specification, so that nothing is
read as something else: a writer union with null cannot be read as a required field,
writer and reader enum symbol sets must fit at the schema level, differing logical
types (timestamp-millis vs -micros, decimal scales) are refused, and nested named types
must have the same unqualified name (the top-level record's name is not checked: the
topic binds records to the dataset). Whether a writer schema resolves is decided once
per (writer, dataset) pair; when it does not, each of its records is quarantined as
``schema: writer id N cannot be read as <dataset>: field <path> ...``.

Writer schemas are values: ``writer_schemas`` maps every schema id the caller fetched to
its parsed schema. An id missing from it is quarantined as ``unknown schema id N``: the
caller (the processor) fetches every id of a batch first (``confluent_ids``), so a
missing id is one the registry does not know.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from itertools import pairwise
from typing import Any

import numpy as np
import pyarrow as pa

from corridor.core.codec import Decoded, decode_avro
from corridor.core.codec.arrow_shape import normalize, struct_to_batch
from corridor.core.codec.avro_strict import Malformed, Reader, compile_reader, decode_body
from corridor.core.codec.json_decode import LATIN1, compile_value, decode_json
from corridor.core.schema import MAGIC, AvroSchema, SchemaStore, union_branches
from corridor.core.wire import (
    CONFLUENT_MAGIC,
    confluent_header_problem,
    confluent_unframe,
)

AVRO, CONFLUENT, JSON, UNKNOWN = "avro", "confluent", "json", "unknown"
_JSON_SPACE = b" \t\r\n"
Convert = Callable[[Any], Any]


def dialect_of(value: bytes | None) -> str:
    """``avro``, ``confluent``, ``json`` or ``unknown`` (module docstring)."""
    if not value or value[:2] == MAGIC:
        return AVRO
    if value[:1] == CONFLUENT_MAGIC:
        return CONFLUENT
    if value.lstrip(_JSON_SPACE)[:1] == b"{":
        return JSON
    return UNKNOWN


def unknown_reason(value: bytes) -> str:
    return (f"bad magic {bytes(value[:2]).hex()} (expected Avro single-object c301, "
            "Confluent-framed Avro 00 + schema id, or a JSON object)")


def confluent_ids(values: Iterable[bytes | None]) -> set[int]:
    """The schema ids of the Confluent-framed values: what the caller must fetch first."""
    return {confluent_unframe(v)[0] for v in values
            if dialect_of(v) == CONFLUENT and confluent_header_problem(v) is None}


def decode_records(
    values: Sequence[bytes | None],
    store: SchemaStore,
    expected: AvroSchema,
    writer_schemas: Mapping[int, AvroSchema],
) -> Decoded:
    """Decode values of any dialect into ``expected``'s rows; never raises for bad data."""
    work = _sort(values, expected, writer_schemas)
    errors, parts = work.errors, []
    if work.fast_values:
        dec = decode_avro(work.fast_values, store, expected)
        errors += [(work.fast[i], reason) for i, reason in dec.errors]
        parts.append((dec.batch, [work.fast[r] for r in dec.rows]))
    records: list[tuple[int, dict[str, Any]]] = []
    for i, schema_id, writer, body in work.resolved:
        outcome = _read_resolved(writer, expected, schema_id, body)
        if isinstance(outcome, str):
            errors.append((i, outcome))
        else:
            records.append((i, outcome))
    for i in work.json:
        try:
            records.append((i, decode_json(values[i] or b"", expected)))
        except Malformed as exc:
            errors.append((i, exc.reason))
    if records:
        records.sort(key=lambda pair: pair[0])
        parts.append(_rows_batch(records, expected, errors))
    return assemble(parts, errors, expected)


@dataclass
class _Work:
    """A batch's values sorted by how they decode (indices into the batch)."""

    fast: list[int] = field(default_factory=list)  # -> decode_avro, values in fast_values
    fast_values: list[bytes | None] = field(default_factory=list)
    resolved: list[tuple[int, int, AvroSchema, bytes]] = field(default_factory=list)
    json: list[int] = field(default_factory=list)
    errors: list[tuple[int, str]] = field(default_factory=list)


def _sort(values: Sequence[bytes | None], expected: AvroSchema,
          writer_schemas: Mapping[int, AvroSchema]) -> _Work:
    work = _Work()
    for i, value in enumerate(values):
        dialect = dialect_of(value)
        if dialect == AVRO:
            work.fast.append(i)
            work.fast_values.append(value)
        elif dialect == JSON:
            work.json.append(i)
        elif dialect == UNKNOWN:
            work.errors.append((i, unknown_reason(value or b"")))
        elif (problem := confluent_header_problem(value)) is not None:
            work.errors.append((i, problem))
        else:
            schema_id, body = confluent_unframe(value)
            writer = writer_schemas.get(schema_id)
            if writer is None:
                work.errors.append((i, f"unknown schema id {schema_id}"))
                continue
            res = resolution(writer, expected)
            if res.problem is None and res.convert is None \
                    and writer.fingerprint == expected.fingerprint:
                work.fast.append(i)  # the very datum single-object Avro would carry
                work.fast_values.append(MAGIC + expected.fingerprint + body)
            else:
                work.resolved.append((i, schema_id, writer, body))
    return work


def _read_resolved(writer: AvroSchema, expected: AvroSchema, schema_id: int,
                   body: bytes) -> dict[str, Any] | str:
    """The record of one body written with ``writer``, as ``expected``; or the reason."""
    res = resolution(writer, expected)
    if res.problem is not None:
        return f"schema: writer id {schema_id} cannot be read as {expected.name}: {res.problem}"
    assert res.reader is not None
    try:
        record = decode_body(res.reader, body)
        return record if res.convert is None else res.convert(record)  # type: ignore[no-any-return]
    except Malformed as exc:
        return exc.reason


def _rows_batch(records: list[tuple[int, dict[str, Any]]], schema: AvroSchema,
                errors: list[tuple[int, str]]) -> tuple[pa.RecordBatch, list[int]]:
    """One batch of per-record values (``avro_strict`` shapes), rows ascending. A record Arrow
    refuses (a shape this module failed to check: a bug, kept out of the batch) is an error."""
    struct_type = pa.struct(list(schema.arrow))
    try:
        arr = pa.array([r for _, r in records], type=struct_type)
    except (pa.ArrowException, TypeError, ValueError, OverflowError):
        kept = []
        for row, record in records:
            try:
                pa.array([record], type=struct_type)
                kept.append((row, record))
            except (pa.ArrowException, TypeError, ValueError, OverflowError) as exc:
                errors.append((row, f"cannot be represented as {schema.name}: {exc}"))
        records = kept
        arr = pa.array([r for _, r in records], type=struct_type)
    batch = struct_to_batch(normalize(arr, schema), schema.arrow)
    return batch, [row for row, _ in records]


def assemble(parts: list[tuple[pa.RecordBatch, list[int]]], errors: list[tuple[int, str]],
             schema: AvroSchema) -> Decoded:
    """One Decoded from batches of rows (each with its input positions) and the errors."""
    batches = [b for b, _ in parts if b.num_rows]
    rows = [u for b, us in parts if b.num_rows for u in us]
    if not batches:
        return Decoded(pa.RecordBatch.from_pylist([], schema=schema.arrow), [], sorted(errors))
    table = pa.Table.from_batches(batches, schema=schema.arrow).combine_chunks()
    batch = table.to_batches()[0] if table.num_rows else batches[0]
    if any(a > b for a, b in pairwise(rows)):  # parts interleave
        order = np.argsort(np.asarray(rows), kind="stable")
        batch = batch.take(pa.array(order))
        rows = [rows[i] for i in order]
    return Decoded(batch, rows, sorted(errors))


# --- schema resolution -----------------------------------------------------------------


class Incompatible(Exception):
    """A writer schema cannot be read as the dataset's; ``reason`` names the field."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, eq=False)
class Resolution:
    """How records of one writer schema become records of the dataset: the strict reader
    of the writer schema and the conversion (None: the values are already the dataset's);
    or, when the writer cannot be read as the dataset, ``problem``."""

    reader: Reader | None
    convert: Convert | None
    problem: str | None


@lru_cache(maxsize=256)
def resolution(writer: AvroSchema, reader: AvroSchema) -> Resolution:
    """The resolution of ``writer`` to ``reader`` (module docstring), decided once per pair."""
    try:
        convert = _resolve(writer.expanded, reader.expanded, "", top=True)
    except Incompatible as exc:
        return Resolution(None, None, exc.reason)
    return Resolution(compile_reader(writer.expanded), convert, None)


_TIME_TYPES = {("timestamp-millis", "long"), ("timestamp-micros", "long"), ("date", "int")}


def _logical(t: Any) -> str | None:
    """The logical type that changes a value's meaning here, on its proper base type."""
    if not isinstance(t, dict):
        return None
    logical, kind = t.get("logicalType"), t["type"]
    if (logical, kind) in _TIME_TYPES or (logical == "decimal" and kind in ("bytes", "fixed")):
        return str(logical)
    return None


def _kind(t: Any) -> str:
    return t if isinstance(t, str) else str(t["type"])


def _label(t: Any) -> str:
    if isinstance(t, list):
        return "[" + ", ".join(_label(b) for b in t) + "]"
    logical = _logical(t)
    if logical == "decimal":
        return f"decimal({t.get('precision', 0)},{t.get('scale', 0)})"
    return logical or (str(t["name"]) if isinstance(t, dict) and "name" in t else _kind(t))


def _where(path: str) -> str:
    return f"field {path}" if path else "the record"


def _short(name: str) -> str:
    return name.rsplit(".", 1)[-1]


def _same_name(w: dict[str, Any], r: dict[str, Any]) -> bool:
    names = {_short(r["name"]), *(_short(a) for a in r.get("aliases", ()))}
    return _short(w["name"]) in names


def _utf8(path: str) -> Convert:
    def convert(v: bytes) -> str:
        try:
            return v.decode("utf-8")
        except UnicodeDecodeError:
            raise Malformed(f"{_where(path)}: bytes written where a string is read are not "
                            "UTF-8") from None
    return convert


_PROMOTIONS: dict[tuple[str, str], Callable[[str], Convert | None]] = {
    ("int", "long"): lambda path: None,
    ("int", "float"): lambda path: float,
    ("int", "double"): lambda path: float,
    ("long", "float"): lambda path: float,
    ("long", "double"): lambda path: float,
    ("float", "double"): lambda path: None,
    ("string", "bytes"): lambda path: str.encode,
    ("bytes", "string"): _utf8,
}


def _resolve(w: Any, r: Any, path: str, top: bool = False) -> Convert | None:
    """Conversion of writer-type values to reader-type values (None: none needed).
    Raises Incompatible."""
    if isinstance(w, list) or isinstance(r, list) or "null" in (w, r):
        return _resolve_union(w, r, path)
    wl, rl = _logical(w), _logical(r)
    if wl != rl and (wl is not None and rl is not None or "decimal" in (wl, rl)):
        raise Incompatible(f"{_where(path)}: writer {_label(w)} cannot be read as {_label(r)}")
    if rl == "decimal":
        return _resolve_decimal(w, r, path)
    wk, rk = _kind(w), _kind(r)
    if wk != rk:
        promote = _PROMOTIONS.get((wk, rk))
        if promote is None:
            raise Incompatible(f"{_where(path)}: writer type {_label(w)} cannot be read as "
                               f"{_label(r)}")
        return promote(path)
    if wk in ("record", "enum", "fixed") and not top and not _same_name(w, r):
        raise Incompatible(f"{_where(path)}: writer {wk} {w['name']} is not {r['name']}")
    if wk == "record":
        return _resolve_record(w, r, path)
    if wk == "enum":
        return _resolve_enum(w, r, path)
    if wk == "fixed" and w["size"] != r["size"]:
        raise Incompatible(f"{_where(path)}: writer fixed size {w['size']} is not {r['size']}")
    if wk == "array":
        item = _resolve(w["items"], r["items"], f"{path}[]")
        return None if item is None else (lambda v: [item(x) for x in v])
    if wk == "map":
        value = _resolve(w["values"], r["values"], f"{path}{{}}")
        return None if value is None else (lambda v: [(k, value(x)) for k, x in v])
    return None


def _split(t: Any) -> tuple[bool, Any]:
    """(may be null, the non-null type or None) of a type or a corridor union."""
    if isinstance(t, list):
        null_index, branch = union_branches(t)
        return null_index is not None, branch
    return (True, None) if t == "null" else (False, t)


def _resolve_union(w: Any, r: Any, path: str) -> Convert | None:
    w_null, w_type = _split(w)
    r_null, r_type = _split(r)
    if w_null and not r_null:
        raise Incompatible(f"{_where(path)}: the writer allows null, the dataset requires "
                           f"{_label(r_type)}")
    if w_type is None:
        return None
    if r_type is None:
        raise Incompatible(f"{_where(path)}: writer type {_label(w_type)} cannot be read as null")
    inner = _resolve(w_type, r_type, path)
    if inner is None or not w_null:
        return inner
    return lambda v: None if v is None else inner(v)


def _resolve_record(w: dict[str, Any], r: dict[str, Any], path: str) -> Convert | None:
    by_name = {f["name"]: f for f in w["fields"]}
    steps: list[tuple[str, str | None, Convert | None, Any]] = []
    for rf in r["fields"]:
        sub = f"{path}.{rf['name']}" if path else rf["name"]
        names = [rf["name"], *rf.get("aliases", ())]
        wf = next((by_name[n] for n in names if n in by_name), None)
        if wf is not None:
            steps.append((rf["name"], wf["name"], _resolve(wf["type"], rf["type"], sub), None))
        elif "default" in rf:
            try:
                default = compile_value(rf["type"], sub, LATIN1)(rf["default"])
            except Malformed as exc:
                raise Incompatible(f"field {sub} is not in the writer schema and its default "
                                   f"is invalid: {exc.reason}") from None
            steps.append((rf["name"], None, None, default))
        else:
            raise Incompatible(f"field {sub} is not in the writer schema and has no default")
    if [s[:3] for s in steps] == [(f["name"], f["name"], None) for f in w["fields"]]:
        return None

    def convert(v: dict[str, Any]) -> dict[str, Any]:
        out = {}
        for name, source, conv, default in steps:
            if source is None:
                out[name] = default
            else:
                out[name] = v[source] if conv is None else conv(v[source])
        return out

    return convert


def _resolve_enum(w: dict[str, Any], r: dict[str, Any], path: str) -> Convert | None:
    symbols = frozenset(r["symbols"])
    missing = [s for s in w["symbols"] if s not in symbols]
    if not missing:
        return None
    default = r.get("default")
    if default not in symbols:
        raise Incompatible(f"{_where(path)}: writer symbols {', '.join(missing[:5])} are not in "
                           f"enum {r['name']}, which has no default")
    return lambda v: v if v in symbols else default


def _resolve_decimal(w: dict[str, Any], r: dict[str, Any], path: str) -> Convert | None:
    w_precision, w_scale = int(w.get("precision", 0)), int(w.get("scale", 0))
    precision, scale = int(r.get("precision", 0)), int(r.get("scale", 0))
    if w_scale != scale:
        raise Incompatible(f"{_where(path)}: writer {_label(w)} cannot be read as {_label(r)} "
                           "(the scales differ)")
    if precision >= w_precision:
        return None
    limit = 10**precision

    def convert(v: Any) -> Any:
        if abs(int(v.scaleb(scale))) >= limit:
            raise Malformed(f"{_where(path)}: {v} exceeds {_label(r)}")
        return v

    return convert
