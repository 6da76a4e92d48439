"""The subject stage of the pipeline: consent, then the volume ledger, on one batch. Pure.

Runs after the corridor's rule (``corridor.core.pipeline``), on the rows still crossing, for a
dataset that names its subject (``DatasetPlan.subject``):

1. each row's subject id (``corridor.core.subjects.subject_ids``, the origin zone's key) from
   the subject field; the ids stay in this stage and in the ledger delta: they are never a
   column of the batch, so never in what crosses;
2. consent, on a corridor with ``purposes``: a row whose subject's consent in the view does
   not cover them is withheld with the view's reason (``consent_withdrawn: <purpose>``,
   ``consent_missing``, ...; ``corridor.core.consent``);
3. the ledger, on the rows left: ``corridor.core.subjects.admit`` (``volume_threshold`` for
   new subjects at a ceiling with ``on_reach: withhold-new-subjects``; ``subject_missing``
   for a null subject), which returns the entries to write with the batch (the delta) and
   the threshold alerts.

Owns: :class:`SubjectInputs` (what the processor hands the pipeline: the key, the ledger
classes per dataset, its current ledger state and consent view, read and never changed
here), :class:`SubjectOutcome`, :func:`decide_subjects`, :func:`ledger_classes`.
Does not own: the ledger and consent semantics (``corridor.core.subjects``,
``corridor.core.consent``), reading or writing their topics, or when the view is fresh
enough to decide (``corridor.processor.subjects``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.config import Config, FieldClass
from corridor.core.consent import ConsentView
from corridor.core.crypto import SecretBytes
from corridor.core.errors import PlanError
from corridor.core.subjects import (
    LedgerEntry,
    LedgerState,
    ThresholdAlert,
    admit,
    calendar_year,
    crossing_classes,
    subject_ids,
)

if TYPE_CHECKING:
    from corridor.core.plan import CorridorPlan, DatasetPlan

Reasons = dict[int, str]


@dataclass(frozen=True)
class SubjectInputs:
    """What the subject stage reads besides the batch (the processor's, at decision time).

    ``classes``: dataset -> the ledger classes its records add their subject to on this
    corridor (:func:`ledger_classes`); ``consent``: None when the corridor has no purposes;
    ``reserved``: entries of chunks admitted but not yet written (see ``admit``)."""

    key: SecretBytes
    classes: Mapping[str, frozenset[FieldClass]]
    ledger: LedgerState
    consent: ConsentView | None = None
    reserved: LedgerState | None = None


@dataclass(frozen=True)
class SubjectOutcome:
    """Rows withheld by the stage (batch row -> reason), the ledger delta, the alerts."""

    withheld: Reasons
    delta: tuple[LedgerEntry, ...] = ()
    alerts: tuple[ThresholdAlert, ...] = ()


NOTHING = SubjectOutcome({})


def ledger_classes(config: Config, plan: CorridorPlan) -> dict[str, frozenset[FieldClass]]:
    """Dataset -> ``crossing_classes`` on *plan*'s corridor, for each dataset naming its
    subject."""
    return {name: crossing_classes(config.datasets[name], dp.transforms, dp.key)
            for name, dp in plan.datasets.items() if dp.subject is not None}


def subject_column(batch: pa.RecordBatch, path: str) -> pa.Array:
    """The column at dotted *path* (a null enclosing record gives a null)."""
    head, _, rest = path.partition(".")
    column = batch.column(head)
    for name in rest.split(".") if rest else ():
        column = pc.struct_field(column, name)
    return column


def decide_subjects(batch: pa.RecordBatch, keep: np.ndarray, plan: CorridorPlan,
                    dp: DatasetPlan, now_ms: int, inputs: SubjectInputs | None) -> SubjectOutcome:
    """The stage on *batch*, for the rows where *keep* is True (the others are not looked at
    nor counted). PlanError when the dataset names its subject and *inputs* is None (or has
    no consent view on a corridor with purposes): a subject is never left unchecked."""
    if dp.subject is None or not keep.any():
        return NOTHING
    if inputs is None or (plan.purposes and inputs.consent is None):
        raise PlanError(plan.name, f"dataset {dp.dataset} names its subject: the pipeline "
                                   "needs the subject inputs (key, ledger, consent view)")
    skip = set(np.flatnonzero(~keep).tolist())
    ids = subject_ids(subject_column(batch, dp.subject), inputs.key).to_pylist()
    withheld: Reasons = {}
    if plan.purposes and inputs.consent is not None:
        withheld = inputs.consent.check(ids, plan.purposes, skip)
    admission = admit(inputs.ledger, ids, zone=plan.origin, destination=plan.destination,
                      year=calendar_year(now_ms), classes=inputs.classes.get(dp.dataset, ()),
                      thresholds=plan.thresholds, skip=skip | withheld.keys(),
                      reserved=inputs.reserved)
    withheld.update(admission.withheld)
    return SubjectOutcome(withheld, admission.delta, admission.alerts)
