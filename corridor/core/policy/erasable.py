"""Erasable fields in the transform stage: each row's value sealed under its subject's key.

A corridor's ``erasable`` fields (``DatasetPlan.erasable``) are encrypted under a key of the
row's data subject, not the corridor's data key (``corridor.core.crypto.subject_keys``), so
destroying one subject's keys erases that subject's values and no one else's.

Per batch (avro format; the config refuses erasable fields on arrow corridors):

1. :func:`subject_missing`: rows whose subject is null are withheld ``subject_missing``
   (their values could not be tied to anyone, so could never be erased);
2. :func:`column_fns`: the subject id of every passed row (``corridor.core.subjects``,
   under the origin zone's subject key), and its *scope*, the source ``topic/partition``;
   the processor's key source is asked ONCE for the keys of the batch's distinct
   (subject, scope) pairs (:class:`SubjectKeys`); the result is one column function per
   erasable path, which ``apply_transforms`` uses in place of the corridor's ``encrypt``.

Pure: the key source is the processor's (it finds, unwraps, draws and wraps keys: I/O and
randomness live there, ``corridor.processor.subject_keys``); a batch with erasable fields
and no sealing is refused (PlanError), never encrypted under the corridor key instead.
Does not own: key ids, records and markers (``core.crypto.subject_keys``), publishing
(``core.outbox``), the consumer side (``corridor.sdk``).
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.crypto.datakey import DataKey
from corridor.core.crypto.secret import SecretBytes
from corridor.core.crypto.subject_keys import ErasableSealer
from corridor.core.errors import PlanError
from corridor.core.model import Lineage
from corridor.core.plan import DatasetPlan
from corridor.core.policy.transform import ColumnFn, plaintext_column
from corridor.core.subjects import SUBJECT_MISSING, subject_ids

Pair = tuple[str, str]  # (subject id, scope)


class SubjectKeys(NamedTuple):
    """What the key source returns for a batch: (subject id, scope) -> key id, and the keys
    by key id (every id of ``ids`` must be in ``keys``)."""

    ids: Mapping[Pair, str]
    keys: Mapping[str, DataKey]


# Called once per batch with its distinct (subject id, scope) pairs.
KeySource = Callable[[Collection[Pair]], SubjectKeys]


@dataclass
class ErasableSealing:
    """What the pipeline needs for erasable fields: the origin zone's subject-id key
    (``core.subjects.subject_key``), the processor's key source, and one sealer per
    dataset and field, kept across batches (a sealer caches one key schedule per key)."""

    subject_key: SecretBytes = field(repr=False)
    source: KeySource = field(repr=False)
    _sealers: dict[tuple[str, str, str], ErasableSealer] = field(default_factory=dict,
                                                                 repr=False)

    def sealer(self, corridor: str, dataset: str, path: str) -> ErasableSealer:
        key = (corridor, dataset, path)
        if key not in self._sealers:
            self._sealers[key] = ErasableSealer(corridor, dataset, path)
        return self._sealers[key]

    def forget(self, key_ids: Collection[str]) -> None:
        """Drop the cached schedules of these keys (erased)."""
        for sealer in self._sealers.values():
            sealer.forget(key_ids)


def scope_of(lineage: Lineage) -> str:
    """A key's scope: the source ``topic/partition`` its values were read from (one owner)."""
    return f"{lineage.topic}/{lineage.partition}"


def column_at(batch: pa.RecordBatch, path: str) -> pa.Array:
    """The column at dotted *path* (null where an enclosing record is null)."""
    head, _, rest = path.partition(".")
    column: pa.Array = batch.column(batch.schema.get_field_index(head))
    for part in rest.split(".") if rest else ():
        column = pc.struct_field(column, [column.type.get_field_index(part)])
    return column


def subject_missing(batch: pa.RecordBatch, dp: DatasetPlan) -> dict[int, str]:
    """Rows (batch positions) a corridor with erasable fields cannot seal: null subject."""
    if not dp.erasable or dp.subject is None or batch.num_rows == 0:
        return {}
    nulls = pc.is_null(column_at(batch, dp.subject)).to_pylist()
    return {row: SUBJECT_MISSING for row, missing in enumerate(nulls) if missing}


def column_fns(batch: pa.RecordBatch, lineages: Sequence[Lineage], corridor: str,
               dp: DatasetPlan, sealing: ErasableSealing | None) -> dict[str, ColumnFn]:
    """Erasable path -> the column function sealing it row by row under each row's subject
    key (``{}`` for a dataset without erasable fields). *lineages*: each row's. Asks the
    key source once. PlanError when the dataset has erasable fields and *sealing* is None."""
    if not dp.erasable:
        return {}
    if sealing is None or dp.subject is None:
        raise PlanError(corridor, f"{dp.dataset}: erasable fields {sorted(dp.erasable)} need "
                                  "per-subject keys, and none were given")
    subjects = subject_ids(column_at(batch, dp.subject), sealing.subject_key).to_pylist()
    scopes = [scope_of(lin) for lin in lineages]
    pairs = {(s, sc) for s, sc in zip(subjects, scopes, strict=True) if s is not None}
    found = sealing.source(pairs) if pairs else SubjectKeys({}, {})
    key_ids = [None if s is None else found.ids[(s, sc)]
               for s, sc in zip(subjects, scopes, strict=True)]
    return {path: _sealing_fn(sealing.sealer(corridor, dp.dataset, path), key_ids, found.keys,
                              dp.schema.field_type(path))
            for path in sorted(dp.erasable)}


def _sealing_fn(sealer: ErasableSealer, key_ids: Sequence[str | None],
                keys: Mapping[str, DataKey], avro_type: object) -> ColumnFn:
    def seal(arr: pa.Array) -> pa.Array:
        return sealer.seal_column(plaintext_column(arr, avro_type), key_ids, keys)

    return seal
