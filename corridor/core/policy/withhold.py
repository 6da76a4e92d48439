"""validate and withhold: which rows stay home, and why (the rule's text, exactly).

Reasons are sparse: ``{batch row: reason}`` for the rows that do not pass; most
rows pass, so a dict is cheaper than a reason per row. Reason strings:

- ``validate: <rule text>`` (the first data-quality rule the row fails; a null
  result fails): the row goes to quarantine;
- ``withhold: <rule text>`` (the corridor's rule held), or
  ``withhold: <rule text> (evaluated to null)`` (fail closed): withheld;
- ``class important not admitted by corridor <name>``: withheld;
- ``instrument_expired: <id>``: the corridor's transfer instrument has expired, so
  every record that decodes and validates is withheld (fail closed).

The rule is checked before the class, so a row both rules and classes would
withhold carries the rule's reason.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.config import RecordKind
from corridor.core.rules import Rule

Reasons = dict[int, str]


def validate_reasons(batch: pa.RecordBatch, rules: Iterable[Rule]) -> Reasons:
    """Rows failing a validate rule (false or null), with the first failing rule's text."""
    reasons: Reasons = {}
    for rule in rules:
        passed = rule.evaluate_batch(batch)
        failed = pc.invert(pc.fill_null(passed, False))
        _assign(reasons, failed, validate_reason(rule))
    return reasons


def withhold_reasons(
    batch: pa.RecordBatch,
    rule: Rule | None,
    important: pa.BooleanArray,
    admit: frozenset[RecordKind],
    corridor: str,
) -> Reasons:
    """Rows the corridor keeps home: its rule holds or is null, or their kind is not admitted."""
    reasons: Reasons = {}
    if rule is not None:
        result = rule.evaluate_batch(batch)
        _assign(reasons, pc.fill_null(result, False), withhold_reason(rule, True))
        if result.null_count:
            _assign(reasons, pc.is_null(result), withhold_reason(rule, None))
    if RecordKind.IMPORTANT not in admit:
        _assign(reasons, important, class_reason(RecordKind.IMPORTANT, corridor))
    if RecordKind.NORMAL not in admit:
        _assign(reasons, pc.invert(important), class_reason(RecordKind.NORMAL, corridor))
    return reasons


def validate_reason(rule: Rule) -> str:
    return f"validate: {rule.text}"


def withhold_reason(rule: Rule, result: bool | None) -> str:
    return f"withhold: {rule.text}" if result else f"withhold: {rule.text} (evaluated to null)"


def expired_reasons(rows: int, instrument: str) -> Reasons:
    """Every row of a batch processed after the instrument expired."""
    return dict.fromkeys(range(rows), expired_reason(instrument))


def expired_reason(instrument: str) -> str:
    return f"instrument_expired: {instrument}"


def class_reason(kind: RecordKind, corridor: str) -> str:
    return f"class {kind.value} not admitted by corridor {corridor}"


def _assign(reasons: Reasons, mask: pa.BooleanArray, reason: str) -> None:
    """Give *reason* to the rows of *mask* that have none yet (first reason wins)."""
    if not mask.true_count:
        return
    for row in np.flatnonzero(mask.to_numpy(zero_copy_only=False)).tolist():
        reasons.setdefault(row, reason)
