"""transform: apply a corridor's field transforms to whole Arrow columns.

Paths may be nested (``location.port``): the enclosing structs are rebuilt with
the changed (or removed) child, their validity kept. Per transform:

- ``drop``: the column (or struct child) is removed;
- ``mask`` / ``pseudonymize``: see ``corridor.core.policy.values``;
- ``encrypt``: avro format: AES-GCM per value (``FieldCipher.encrypt_column``),
  the field becomes binary; a record, array or map value is encrypted as its
  Avro binary encoding under its original type (``corridor.original`` in the
  egress schema). Arrow format: ONE AES-GCM operation over the whole column of
  the batch (``encrypt_batch_column``, bound to the batch's lineage range); the
  column leaves the batch and its ciphertext is returned in ``sealed``, for the
  pipeline to carry in the batch's schema metadata;
- ``encrypt-deterministic``: AES-GCM-SIV per value in both formats (equal values,
  equal ciphertexts: joins keep working, which a whole-column ciphertext would not allow);
- an ``erasable`` field (``ctx.per_subject``): sealed per row under the row's subject key
  instead (``corridor.core.policy.erasable``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.codec.avro_columnar import encode_column
from corridor.core.config import Transform
from corridor.core.crypto import FieldCipher
from corridor.core.errors import PlanError
from corridor.core.policy.values import mask_column, pseudonymize_column
from corridor.core.schema import AvroSchema, union_branches

ColumnFn = Callable[[pa.Array], pa.Array | None]  # None: remove the column


@dataclass(frozen=True)
class TransformContext:
    """What the transforms of one batch need. ``lineage`` is the batch range (arrow format)."""

    corridor: str
    dataset: str
    schema: AvroSchema
    cipher: FieldCipher | None = field(repr=False, default=None)
    pseudonym_key: bytes | None = field(repr=False, default=None)
    arrow_format: bool = False
    lineage: str = ""
    # Erasable paths -> their per-subject sealing (corridor.core.policy.erasable).
    per_subject: Mapping[str, ColumnFn] = field(repr=False, default_factory=dict)


@dataclass(frozen=True)
class Transformed:
    """The transformed batch, and (arrow format) whole-column ciphertexts by field path."""

    batch: pa.RecordBatch
    sealed: Mapping[str, bytes]


def apply_transforms(
    batch: pa.RecordBatch, transforms: Mapping[str, Transform], ctx: TransformContext
) -> Transformed:
    """Apply every transform, in order. Raises PlanError when a key the transform needs is missing."""
    sealed: dict[str, bytes] = {}
    for path, transform in transforms.items():
        batch = replace_path(batch, path, _column_fn(path, transform, ctx, sealed))
    return Transformed(batch, sealed)


def _column_fn(
    path: str, transform: Transform, ctx: TransformContext, sealed: dict[str, bytes]
) -> ColumnFn:
    if path in ctx.per_subject:
        return ctx.per_subject[path]
    if transform is Transform.DROP:
        return lambda arr: None
    if transform is Transform.MASK:
        return mask_column
    if transform is Transform.PSEUDONYMIZE:
        key = ctx.pseudonym_key
        if key is None:
            raise PlanError(ctx.corridor, f"no pseudonym key to pseudonymize {path}")
        return lambda arr: pseudonymize_column(arr, key)
    cipher = ctx.cipher
    if cipher is None:
        raise PlanError(ctx.corridor, f"no cipher to encrypt {path}")
    if transform is Transform.ENCRYPT and ctx.arrow_format:

        def seal(arr: pa.Array) -> None:
            sealed[path] = cipher.encrypt_batch_column(
                arr, corridor=ctx.corridor, dataset=ctx.dataset, field=path, lineage=ctx.lineage
            )

        return seal
    deterministic = transform is Transform.ENCRYPT_DETERMINISTIC
    avro_type = ctx.schema.field_type(path)
    return lambda arr: cipher.encrypt_column(
        plaintext_column(arr, avro_type),
        corridor=ctx.corridor,
        dataset=ctx.dataset,
        field=path,
        deterministic=deterministic,
    )


def plaintext_column(arr: pa.Array, avro_type: object) -> pa.Array:
    """*arr* itself for scalars; for records, arrays and maps, each value's Avro binary."""
    if not (
        pa.types.is_struct(arr.type) or pa.types.is_list(arr.type) or pa.types.is_map(arr.type)
    ):
        return arr
    branch = union_branches(avro_type)[1] if isinstance(avro_type, list) else avro_type
    encoded = encode_column(arr, branch)
    return (
        pc.if_else(pc.is_valid(arr), encoded, pa.scalar(None, encoded.type))
        if arr.null_count
        else encoded
    )


def replace_path(batch: pa.RecordBatch, path: str, fn: ColumnFn) -> pa.RecordBatch:
    """*batch* with the column at dotted *path* replaced by ``fn(column)`` (removed on None)."""
    head, _, rest = path.partition(".")
    index = batch.schema.get_field_index(head)
    if index < 0:
        return batch  # a corridor-wide transform on a field this dataset lacks
    column = batch.column(index)
    new = _replace_in(column, rest, fn) if rest else fn(column)
    if new is None:
        return batch.remove_column(index)
    return batch.set_column(
        index, pa.field(head, new.type, batch.schema.field(index).nullable), new
    )


def _replace_in(struct: pa.Array, path: str, fn: ColumnFn) -> pa.Array:
    head, _, rest = path.partition(".")
    fields = list(struct.type)
    children = [struct.field(i) for i in range(len(fields))]
    index = struct.type.get_field_index(head)
    if index < 0:
        return struct
    new = _replace_in(children[index], rest, fn) if rest else fn(children[index])
    if new is None:
        del fields[index], children[index]
    else:
        fields[index] = pa.field(head, new.type, fields[index].nullable)
        children[index] = new
    mask = pc.is_null(struct) if struct.null_count else None
    return pa.StructArray.from_arrays(children, fields=fields, mask=mask)
