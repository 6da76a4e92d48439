"""Consumer-side decryption of corridor records (pure: no Kafka).

Which fields are encrypted, and what they were, is read from the egress
schema: each transformed field carries ``corridor.transform`` and
``corridor.original`` (docs/DESIGN.md section 5). The writer side is
``corridor.core.policy.transform``:

- avro format, and ``encrypt-deterministic`` in both formats: one ciphertext per
  value, of the value's plaintext encoding (``corridor.core.crypto.values``) or, for a
  record, array or map, of its Avro binary encoding under the original type;
- arrow format ``encrypt``: one ciphertext per column per batch, carried in the
  batch's schema metadata ``corridor.sealed.<path>`` and bound to the batch's
  lineage range (``corridor.lineage``);
- an ``erasable`` field: per value, under the row's subject key (its id is in the
  ciphertext, ``corridor.core.crypto.subject_keys``). When the key lookup says a subject
  was erased (``Erased``), that field is opened row by row: the erased rows' values become
  null and their errors are returned; every other row, and every other field, decrypts.

Rows are python dicts (as fastavro or ``RecordBatch.to_pylist`` give them);
decryption replaces values in place, at dotted paths.
"""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import fastavro
import pyarrow as pa

from corridor.core import wire
from corridor.core.crypto import KeyLookup, decrypt_batch_column, decrypt_column
from corridor.core.crypto.subject_keys import open_erasable_column
from corridor.core.errors import Erased
from corridor.core.schema import AvroSchema, arrow_type, union_branches

SEALED_PREFIX = wire.SEALED_PREFIX.encode()
Row = dict[str, Any]


@dataclass(frozen=True)
class EncryptedField:
    """One encrypted field of an egress schema: dotted path, transform, original Avro type."""

    path: str
    transform: str
    original: Any

    @property
    def nested(self) -> bool:
        """Whether the plaintext is an Avro binary (record, array or map)."""
        t = self.arrow_type
        return bool(pa.types.is_struct(t) or pa.types.is_list(t) or pa.types.is_map(t))

    @property
    def arrow_type(self) -> pa.DataType:
        return arrow_type(self.original)

    def branch(self) -> Any:
        """The original type without its null branch."""
        return union_branches(self.original)[1] if isinstance(self.original, list) else self.original


def encrypted_fields(egress: AvroSchema) -> list[EncryptedField]:
    """Every encrypted field of ``egress``, nested ones included, in schema order."""
    out: list[EncryptedField] = []
    _walk(egress.raw, "", out)
    return out


def _walk(record: Mapping[str, Any], prefix: str, out: list[EncryptedField]) -> None:
    for f in record.get("fields", []):
        path = f"{prefix}{f['name']}"
        transform = f.get(wire.ATTR_TRANSFORM)
        if isinstance(transform, str) and transform.startswith("encrypt"):
            out.append(EncryptedField(path, transform, f.get(wire.ATTR_ORIGINAL)))
            continue
        t = f["type"]
        for branch in t if isinstance(t, list) else [t]:
            if isinstance(branch, dict) and branch.get("type") == "record":
                _walk(branch, path + ".", out)


def get_path(row: Row, path: str) -> Any:
    node: Any = row
    for part in path.split("."):
        if not isinstance(node, dict):
            return None
        node = node.get(part)
    return node


def set_path(row: Row, path: str, value: Any) -> None:
    """Set ``path`` when its enclosing records exist (a null parent stays null)."""
    *parents, last = path.split(".")
    node: Any = row
    for part in parents:
        node = node.get(part) if isinstance(node, dict) else None
    if isinstance(node, dict):
        node[last] = value


ErasedRows = dict[int, list[Erased]]  # row index -> the erased fields' errors


def decrypt_rows(rows: Sequence[Row], fields: Sequence[EncryptedField], *, corridor: str,
                 dataset: str, keys: KeyLookup) -> ErasedRows:
    """Decrypt per-value ciphertexts of ``fields`` in ``rows``, in place (all or nothing);
    returns the rows whose subject was erased, with an ``Erased`` per erased field (their
    values are set to null).

    Raises KeyNotFound, ContextMismatch, TamperedCiphertext (see corridor.core.crypto.decrypt).
    """
    erased: ErasedRows = {}
    for f in fields:
        cipher = pa.array([get_path(r, f.path) for r in rows], pa.binary())
        plain_type = pa.binary() if f.nested else f.arrow_type
        try:
            plain = decrypt_column(cipher, plain_type, corridor=corridor, dataset=dataset,
                                   field=f.path, keys=keys).to_pylist()
        except Erased:
            opened = open_erasable_column(cipher, plain_type, corridor=corridor,
                                          dataset=dataset, field_path=f.path, keys=keys)
            plain = opened.values.to_pylist()
            for index, error in opened.erased.items():
                erased.setdefault(index, []).append(error)
        if f.nested:
            parsed = fastavro.parse_schema(f.branch())
            plain = [None if v is None else fastavro.schemaless_reader(io.BytesIO(v), parsed, None)
                     for v in plain]
        for row, value in zip(rows, plain, strict=False):
            set_path(row, f.path, value)
    return erased


def unseal_rows(rows: Sequence[Row], metadata: Mapping[bytes, bytes] | None, *, corridor: str,
                dataset: str, keys: KeyLookup) -> list[str]:
    """Decrypt the whole-column ciphertexts of an arrow batch into ``rows``; returns their paths."""
    meta = metadata or {}
    lineage = meta.get(wire.META_LINEAGE, b"").decode()
    paths = []
    for name, blob in meta.items():
        if not name.startswith(SEALED_PREFIX):
            continue
        path = name[len(SEALED_PREFIX):].decode()
        column = decrypt_batch_column(blob, corridor=corridor, dataset=dataset, field=path,
                                      lineage=lineage, keys=keys)
        for row, value in zip(rows, column.to_pylist(), strict=False):
            set_path(row, path, value)
        paths.append(path)
    return paths


def sealed_paths(metadata: Mapping[bytes, bytes] | None) -> list[str]:
    return [k[len(SEALED_PREFIX):].decode() for k in (metadata or {}) if k.startswith(SEALED_PREFIX)]


def match_egress(batch_schema: pa.Schema, candidates: Sequence[AvroSchema],
                 ignore: Sequence[str] = ()) -> AvroSchema | None:
    """The egress schema an arrow batch was written with: same columns (sealed ones aside)."""
    names = [n for n in batch_schema.names if n not in ignore]
    sealed = {p for p in sealed_paths(batch_schema.metadata) if "." not in p}
    for schema in candidates:
        if [n for n in schema.field_names() if n not in sealed] != names:
            continue
        if all(schema.arrow.field(n).type == batch_schema.field(n).type for n in names):
            return schema
    return None
