"""tombstone: what a corridor does with a delete (a record with a null value, e.g. Debezium's).

A tombstone has no value, so nothing of a value can cross; what it says is "the record of
this key is gone", and its key is a governed field like any record key. It **crosses** as a
tombstone (null value) on the corridor topic: its key under the dataset's key policy
(``corridor.core.policy.key``), the plan's constant residency headers (``corridor-instrument``
among them), ``corridor-lineage``, ``corridor-key-treatment`` (``wire.KEY_TREATMENT``: the
treatment of the key, which a record carries in its schema and a null value cannot), the
park headers the corridor allows, and the source record's timestamp. It is written in the
batch's transaction with the other records, in source order, and partitioned like them (the
source partition when aligned, else murmur2 of the outgoing key: equal keys, equal
partitions).

Rules that read fields (validate, withhold, classes, erasable subjects) cannot apply to a
null value and do not: a tombstone of a key whose records were withheld still crosses,
carrying only the key as the key policy lets it cross. It is **withheld** instead, with
one of these reasons:

- ``instrument_expired: <id>`` once the corridor's transfer instrument has expired
  (everything is withheld then);
- ``TOMBSTONE_ARROW`` on a ``format: arrow`` corridor: its messages are batches of rows
  keyed by source partition, and a delete is no row (see the README's connectors section);
- ``TOMBSTONE_NO_KEY``: a null key names nothing to delete;
- ``TOMBSTONE_KEY_DROPPED``: with ``key: drop`` a tombstone would carry nothing at all.

A withheld tombstone's side record is empty bytes, not null (``core.pipeline._side``).
Pure. Does not own: building the delivery (``core.pipeline``), key treatments (``policy.key``).
"""

from __future__ import annotations

from corridor.core.config import KeyTreatment, WireFormat
from corridor.core.model import RawMessage
from corridor.core.plan import CorridorPlan, DatasetPlan
from corridor.core.policy.key import Header, allowed_headers
from corridor.core.policy.tag import record_headers
from corridor.core.policy.withhold import expired_reason
from corridor.core.wire import KEY_TREATMENT

TOMBSTONE_ARROW = "tombstone: a format arrow corridor carries rows, not deletes"
TOMBSTONE_NO_KEY = "tombstone: a delete without a key names nothing"
TOMBSTONE_KEY_DROPPED = "tombstone: key dropped by policy"


def is_tombstone(message: RawMessage) -> bool:
    """A null-valued source message (a row of an Arrow IPC message is never one)."""
    return message.value is None and message.lineage.row < 0


def tombstone_reason(message: RawMessage, plan: CorridorPlan, dp: DatasetPlan,
                     now_ms: int) -> str | None:
    """Why the tombstone *message* stays home, or None when it crosses (module docstring)."""
    expiry = plan.instrument_expiry_ms
    if expiry is not None and now_ms >= expiry and plan.instrument is not None:
        return expired_reason(plan.instrument.id)
    if plan.format is WireFormat.ARROW:
        return TOMBSTONE_ARROW
    if message.key is None:
        return TOMBSTONE_NO_KEY
    if dp.key is KeyTreatment.DROP:
        return TOMBSTONE_KEY_DROPPED
    return None


def tombstone_headers(message: RawMessage, plan: CorridorPlan,
                      dp: DatasetPlan) -> list[Header]:
    """The headers of a crossing tombstone: residency, lineage, key treatment, allowed park
    headers (in that order)."""
    headers: list[Header] = [*record_headers(dp.headers, message.lineage),
                             (KEY_TREATMENT, dp.key.value.encode())]
    return headers + allowed_headers(message.headers, plan.allowed_headers)

