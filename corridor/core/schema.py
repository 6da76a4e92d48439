"""Avro schemas: parsing, fingerprints, single-object framing, Arrow mapping, egress schemas.

Single-object encoding (Avro spec, "Single-object encoding"): ``C3 01``, then the
8-byte CRC-64-AVRO fingerprint of the schema's Parsing Canonical Form, little-endian,
then the Avro binary datum. The canonical form comes from fastavro; the CRC-64-AVRO
is computed here from the spec's algorithm (and cross-checked against fastavro in the
tests), so a fastavro upgrade cannot silently change our fingerprints.

Avro -> Arrow mapping (binding for every module, see corridor/core/codec/arrow_shape.py): enums are
``dictionary<int32, string>`` whose dictionary is exactly the enum's symbols in
schema order (so the index is the Avro index). Unions are supported only as
``["null", T]`` / ``[T, "null"]`` (a nullable T) or a single branch ``[T]``: a union
of two or more non-null types is refused with a SchemaError. We chose refusal over an
Arrow dense union because no rule, transform or sink of corridor can handle a dense
union column, and a clear error at plan time beats a surprise at run time.
Recursive schemas are refused too (Arrow types are finite trees).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import fastavro
import fastavro.schema as fschema
import pyarrow as pa

from corridor.core.errors import DecodeError, SchemaError
from corridor.core.wire import ATTR_KEY, ATTR_ORIGINAL, ATTR_TRANSFORM, AVRO_MAGIC

MAGIC = AVRO_MAGIC
HEADER_LEN = 10  # magic (2) + fingerprint (8)

TRANSFORMS = ("drop", "mask", "pseudonymize", "encrypt", "encrypt-deterministic")
EGRESS_NAMESPACE_SUFFIX = "corridor_egress"
KEY_ATTRIBUTE = ATTR_KEY  # egress schema: the record key's class and treatment

_EMPTY = 0xC15D213AA4D7A795  # the spec's EMPTY constant for CRC-64-AVRO


def _crc64_table() -> list[int]:
    table = []
    for i in range(256):
        fp = i
        for _ in range(8):
            fp = (fp >> 1) ^ (_EMPTY & -(fp & 1))
        table.append(fp)
    return table


_TABLE = _crc64_table()


def crc64_avro(data: bytes) -> int:
    """CRC-64-AVRO of ``data`` as the spec's Java reference computes it (a 64-bit int)."""
    fp = _EMPTY
    for b in data:
        fp = (fp >> 8) ^ _TABLE[(fp ^ b) & 0xFF]
    return fp


def canonical_form(raw: Any) -> str:
    """Parsing Canonical Form of a schema (JSON object, list or type name)."""
    return str(fschema.to_parsing_canonical_form(raw))


def fingerprint_of(raw: Any) -> bytes:
    """8-byte fingerprint, little-endian, exactly as written after ``C3 01``."""
    return crc64_avro(canonical_form(raw).encode("utf-8")).to_bytes(8, "little")


@dataclass(frozen=True, eq=False)
class AvroSchema:
    """A parsed dataset schema.

    Equal when the fingerprint AND the full JSON are equal: the Parsing Canonical Form
    drops logical types and attributes, so two schemas that differ only there share a
    fingerprint (a SchemaStore keeps the last one added) yet decode differently.
    """

    name: str
    raw: dict[str, Any]
    parsed: Any
    fingerprint: bytes
    expanded: dict[str, Any] = field(repr=False)
    arrow: pa.Schema = field(repr=False)

    def __eq__(self, other: object) -> bool:
        return (
            isinstance(other, AvroSchema)
            and other.fingerprint == self.fingerprint
            and other.raw == self.raw
        )

    def __hash__(self) -> int:
        return hash(self.fingerprint)

    def field_names(self) -> list[str]:
        """Top-level field names, in schema order."""
        return [f["name"] for f in self.expanded["fields"]]

    def field_type(self, path: str) -> Any | None:
        """Avro type (expanded JSON) of a dotted field path, or None if there is none.

        Nullable unions are looked through when walking into nested records.
        """
        node: Any = self.expanded
        for part in path.split("."):
            node = _non_null(node)
            if not (isinstance(node, dict) and node.get("type") == "record"):
                return None
            match = [f for f in node["fields"] if f["name"] == part]
            if not match:
                return None
            node = match[0]["type"]
        return node


def _non_null(t: Any) -> Any:
    if isinstance(t, list):
        rest = [b for b in t if b != "null"]
        return rest[0] if len(rest) == 1 else t
    return t


def parse_schema(obj: dict[str, Any], *, source: str = "<schema>") -> AvroSchema:
    """Parse a record schema given as its JSON object. Raises SchemaError."""
    if not isinstance(obj, dict) or obj.get("type") != "record":
        raise SchemaError(f"{source}: a dataset schema must be an Avro record")
    try:
        parsed: Any = fastavro.parse_schema(copy.deepcopy(obj))
        expanded: dict[str, Any] = fschema.expand_schema(copy.deepcopy(obj))  # type: ignore[assignment]
    except RecursionError as exc:
        raise SchemaError(f"{source}: recursive schemas are not supported") from exc
    except (fschema.SchemaParseException, fschema.UnknownType, ValueError, TypeError) as exc:
        raise SchemaError(f"{source}: invalid Avro schema: {exc}") from exc
    try:
        arrow = _record_arrow(expanded)
    except RecursionError as exc:
        raise SchemaError(f"{source}: recursive schemas are not supported") from exc
    return AvroSchema(
        name=str(parsed["name"]),
        raw=obj,
        parsed=parsed,
        fingerprint=fingerprint_of(obj),
        expanded=expanded,
        arrow=arrow,
    )


def load_schema(path: str | Path) -> AvroSchema:
    """Load an ``.avsc`` file. Raises SchemaError naming the path."""
    p = Path(path)
    try:
        obj = json.loads(p.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise SchemaError(f"{p}: cannot read schema: {exc}") from exc
    return parse_schema(obj, source=str(p))


# --- Avro -> Arrow -------------------------------------------------------------------

_PRIMITIVES: dict[str, pa.DataType] = {
    "null": pa.null(),
    "boolean": pa.bool_(),
    "int": pa.int32(),
    "long": pa.int64(),
    "float": pa.float32(),
    "double": pa.float64(),
    "bytes": pa.binary(),
    "string": pa.string(),
}

ENUM_TYPE = pa.dictionary(pa.int32(), pa.string())


def arrow_schema(avro: AvroSchema | dict[str, Any]) -> pa.Schema:
    """Arrow schema of a record schema (top-level fields in order). Raises SchemaError."""
    if isinstance(avro, AvroSchema):
        return avro.arrow
    return parse_schema(avro).arrow


def _record_arrow(expanded: dict[str, Any]) -> pa.Schema:
    return pa.schema([arrow_field(f["name"], f["type"]) for f in expanded["fields"]])


def arrow_field(name: str, t: Any) -> pa.Field:
    """Arrow field for an Avro (expanded) type; nullable only for unions with null."""
    nullable = (isinstance(t, list) and "null" in t) or t == "null"
    return pa.field(name, arrow_type(t), nullable=nullable)


def union_branches(t: list[Any]) -> tuple[int | None, Any]:
    """(index of the null branch or None, the single non-null branch). Raises SchemaError."""
    rest = [b for b in t if b != "null"]
    if len(rest) != 1 or len(t) - len(rest) > 1:
        raise SchemaError(
            f"union {json.dumps(t)[:120]} has {len(rest)} non-null branches: only "
            '["null", T] unions are supported (no Arrow dense unions in corridor)'
        )
    return (t.index("null") if "null" in t else None), rest[0]


def arrow_type(t: Any) -> pa.DataType:
    """Arrow type of an expanded Avro type (see the module docstring for the mapping)."""
    if isinstance(t, str):
        if t not in _PRIMITIVES:  # fastavro refused unknown names: this one is recursive
            raise SchemaError(f"recursive reference to {t!r}: recursive schemas are not supported")
        return _PRIMITIVES[t]
    if isinstance(t, list):
        return arrow_type(union_branches(t)[1])
    kind, logical = t["type"], t.get("logicalType")
    if logical is not None:
        lt = _logical_arrow_type(t, kind, logical)
        if lt is not None:
            return lt
    if kind == "record":
        return pa.struct([arrow_field(f["name"], f["type"]) for f in t["fields"]])
    if kind == "enum":
        return ENUM_TYPE
    if kind == "array":
        return pa.list_(arrow_field("item", t["items"]))
    if kind == "map":
        return pa.map_(pa.string(), arrow_field("value", t["values"]))
    if kind == "fixed":
        return pa.binary(int(t["size"]))
    return arrow_type(kind)


def _logical_arrow_type(t: dict[str, Any], kind: str, logical: str) -> pa.DataType | None:
    # Logical types on the wrong base type are ignored, as the spec requires.
    if logical == "timestamp-millis" and kind == "long":
        return pa.timestamp("ms", tz="UTC")
    if logical == "timestamp-micros" and kind == "long":
        return pa.timestamp("us", tz="UTC")
    if logical == "date" and kind == "int":
        return pa.date32()
    if logical == "uuid" and kind == "string":
        return pa.string()
    if logical == "decimal" and kind in ("bytes", "fixed"):
        precision, scale = int(t.get("precision", 0)), int(t.get("scale", 0))
        if not 1 <= precision <= 38 or not 0 <= scale <= precision:
            raise SchemaError(f"decimal({precision},{scale}) is outside decimal128 (1..38)")
        return pa.decimal128(precision, scale)
    return None


# --- egress schemas ------------------------------------------------------------------


def egress_schema(
    avro: AvroSchema, transforms: Mapping[str, str], key: tuple[str, str] | None = None
) -> AvroSchema:
    """Schema of the records a corridor publishes, given field path -> transform name.

    The result is deterministic in (schema, transforms): its namespace is the dataset's
    plus ``corridor_egress_<8 hex of CRC-64 of the transforms>``, so different transforms
    always give different fingerprints even when the field types coincide (mask vs
    pseudonymize). Changed fields carry ``corridor.transform`` and ``corridor.original``.
    ``key`` is the record key's (class, treatment): recorded as the top-level attribute
    ``corridor.key: {class, treatment}`` and part of the namespace tag. Raises
    SchemaError for an unknown transform or field path.
    """
    for path, name in transforms.items():
        if name not in TRANSFORMS:
            raise SchemaError(f"{avro.name}: unknown transform {name!r} for field {path!r}")
        if avro.field_type(path) is None:
            raise SchemaError(f"{avro.name}: transform {name!r} names unknown field {path!r}")
    tagged: list[Any] = sorted(transforms.items())
    if key is not None:
        tagged.append(["<key>", *key])
    tag = json.dumps(tagged, separators=(",", ":")).encode()
    namespace, _, short = avro.name.rpartition(".")
    egress_ns = ".".join(
        p for p in (namespace, f"{EGRESS_NAMESPACE_SUFFIX}_{crc64_avro(tag) & 0xFFFFFFFF:08x}") if p
    )
    record = _transform_record(copy.deepcopy(avro.expanded), dict(transforms), "", egress_ns)
    record["name"] = f"{egress_ns}.{short}"
    if key is not None:
        record[KEY_ATTRIBUTE] = {"class": key[0], "treatment": key[1]}
    return parse_schema(_compact(record, set()), source=f"egress of {avro.name}")


def _transform_record(
    record: dict[str, Any], transforms: dict[str, str], prefix: str, egress_ns: str
) -> dict[str, Any]:
    fields = []
    for f in record["fields"]:
        path = f"{prefix}{f['name']}"
        name = transforms.get(path)
        nested = [p for p in transforms if p.startswith(path + ".")]
        if name == "drop":
            continue
        if name is not None:
            f = _transformed_field(f, name)
        elif nested:
            f = dict(f, type=_transform_nested(f["type"], transforms, path, egress_ns))
        fields.append(f)
    return dict(record, fields=fields)


def _transform_nested(t: Any, transforms: dict[str, str], path: str, egress_ns: str) -> Any:
    if isinstance(t, list):
        return [b if b == "null" else _transform_nested(b, transforms, path, egress_ns) for b in t]
    inner = _transform_record(t, transforms, path + ".", egress_ns)
    # A changed nested record is a new named type; name it by its path so it is unique.
    inner["name"] = f"{egress_ns}.{path.replace('.', '_')}"
    return inner


def _transformed_field(f: dict[str, Any], name: str) -> dict[str, Any]:
    original = f["type"]
    nullable = isinstance(original, list) and "null" in original
    base = _non_null(original)
    if name.startswith("encrypt"):
        new: Any = "bytes"
    elif name == "pseudonymize" or base != "string":
        new = "string"
    else:
        new = base
    out = {k: v for k, v in f.items() if k not in ("type", "default")}
    out["type"] = ["null", new] if nullable else new
    if nullable:
        out["default"] = None
    out[ATTR_TRANSFORM] = name
    out[ATTR_ORIGINAL] = original
    return out


def _compact(t: Any, seen: set[str]) -> Any:
    """Replace repeated named-type definitions by references (fastavro refuses redefinitions)."""
    if isinstance(t, list):
        return [_compact(b, seen) for b in t]
    if not isinstance(t, dict):
        return t
    kind = t["type"]
    if kind in ("record", "enum", "fixed"):
        if t["name"] in seen:
            return t["name"]
        seen.add(t["name"])
    if kind == "record":
        return dict(t, fields=[dict(f, type=_compact(f["type"], seen)) for f in t["fields"]])
    if kind == "array":
        return dict(t, items=_compact(t["items"], seen))
    if kind == "map":
        return dict(t, values=_compact(t["values"], seen))
    return t


# --- store and framing ---------------------------------------------------------------


class SchemaStore:
    """Schemas by fingerprint. Adding the same schema twice is harmless."""

    def __init__(self, schemas: list[AvroSchema] | None = None) -> None:
        self._by_fp: dict[bytes, AvroSchema] = {}
        for s in schemas or []:
            self.add(s)

    def add(self, schema: AvroSchema) -> None:
        self._by_fp[schema.fingerprint] = schema

    def get(self, fingerprint: bytes) -> AvroSchema | None:
        return self._by_fp.get(bytes(fingerprint))

    def __len__(self) -> int:
        return len(self._by_fp)


def frame(fingerprint: bytes, body: bytes) -> bytes:
    """Single-object encoding of an Avro binary datum."""
    if len(fingerprint) != 8:
        raise SchemaError(f"a fingerprint has 8 bytes, not {len(fingerprint)}")
    return MAGIC + fingerprint + body


def unframe(value: bytes | None) -> tuple[bytes, bytes]:
    """(fingerprint, body) of a single-object value. Raises DecodeError with the reason."""
    reason = header_problem(value)
    if reason is not None:
        raise DecodeError(reason)
    assert value is not None
    return bytes(value[2:HEADER_LEN]), bytes(value[HEADER_LEN:])


def header_problem(value: bytes | None) -> str | None:
    """Why ``value`` is not single-object framed, or None if the header is fine."""
    if value is None:
        return "null value (tombstone)"
    if len(value) == 0:
        return "empty value"
    if value[:2] != MAGIC:
        return f"bad magic {bytes(value[:2]).hex()} (single-object Avro starts with c301)"
    if len(value) < HEADER_LEN:
        return f"truncated single-object header ({len(value)} of {HEADER_LEN} bytes)"
    return None
