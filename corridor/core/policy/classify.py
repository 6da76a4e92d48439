"""classify: which rows are *important* records (the dataset's ``record_class`` rule)."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.rules import Rule


def important_mask(batch: pa.RecordBatch, important_when: Rule | None) -> pa.BooleanArray:
    """True where the row is important, no nulls.

    Fail closed: a null rule result (a field the rule reads is null) counts as
    important, so a corridor that does not admit important records withholds it.
    A dataset without a ``record_class`` has only normal records.
    """
    if important_when is None:
        return (
            pa.array([False] * batch.num_rows, pa.bool_())
            if batch.num_rows
            else pa.array([], pa.bool_())
        )
    result = important_when.evaluate_batch(batch)
    return pc.fill_null(result, True) if result.null_count else result


def is_important(value: bool | None) -> bool:
    """The per-record form of ``important_mask`` (for the reference pipeline)."""
    return value is not False
