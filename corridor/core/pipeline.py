"""process(messages) -> BatchResult: decode, validate, classify, withhold, transform, tag, encode.

Pure: no Kafka, no logging, no clock (the caller passes ``now_ms``). Messages of
one source topic (one dataset), any of its partitions mixed, in any order.

Order, per record (docs/DESIGN.md section 7): a tombstone (null value: a delete) crosses as
a tombstone, its key under the key policy, or is withheld (``corridor.core.policy.tombstone``;
a withheld one's side record is empty bytes); a value that does not decode, or fails a
dataset ``validate`` rule, is quarantined (``decode: <reason>`` /
``validate: <rule>``); then a record the corridor's rule withholds, or whose kind
the corridor does not admit, is withheld (reasons: ``corridor.core.policy.withhold``);
then, for a dataset naming its subject, consent and the volume ledger withhold
(``corridor.core.policy.subjects``: the ledger delta is in ``BatchResult.ledger``);
the rest is transformed, tagged and encoded. Once the corridor's transfer instrument has
expired (``now_ms`` at or after ``CorridorPlan.instrument_expiry_ms``) every record that
decodes and validates is withheld as ``instrument_expired: <id>``.

Input: Avro single-object messages and Arrow IPC messages, mixed
(``corridor.core.codec.arrow_input``): an Arrow message holds one record per row, with
lineage ``topic/partition/offset#row``; whole columns go through the policy.
Withheld and quarantined Arrow rows carry themselves as single-object Avro (or a
one-row IPC stream when they did not decode).

Invariant (``BatchResult.check``): delivered rows + withheld + quarantined ==
records in (``inputs``), and every input lineage appears exactly once.

Output per format:

- avro: one Delivery per record, in source order (a tombstone's value None): single-object
  Avro under the egress schema (with
  ``wire: confluent``: ``00`` + ``DatasetPlan.egress_id`` + the same body instead),
  the source key under the key policy (``corridor.core.policy.key``), the source
  record's timestamp, the plan's constant headers + ``corridor-lineage`` + the
  park headers the corridor allows.
- arrow: per source partition present, Deliveries of at most ARROW_MESSAGE_BYTES of
  Arrow buffers each: an Arrow IPC stream of the delivered rows (egress columns +
  ``_lineage_offset`` int64, + ``_lineage_row`` int32 when rows came from Arrow IPC
  source messages, -1 for rows of Avro ones, + ``_key`` binary: each row's source
  key under the key policy, + ``_timestamp`` timestamp[ms, UTC]: each row's source
  timestamp, + ``_headers`` list<struct<name, value>> of the allowed park headers
  when the corridor allows any), key ``topic/partition``, timestamp the newest of
  its rows, headers the constant ones + ``corridor-lineage: topic/partition/first-last``.
  Schema metadata: ``corridor.lineage`` (the same range), ``corridor.key`` (the
  treatment of the ``_key`` column) and, per field encrypted as a whole column,
  ``corridor.sealed.<path>`` holding its ciphertext (the column itself is absent
  from the batch).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from corridor.core.codec import encode_avro, to_ipc
from corridor.core.codec.arrow_batches import looks_like_ipc, row_slices
from corridor.core.codec.arrow_input import Inputs, decode_inputs
from corridor.core.config import WireFormat
from corridor.core.errors import PlanError
from corridor.core.model import Lineage, Outcome, RawMessage
from corridor.core.plan import CorridorPlan, DatasetPlan
from corridor.core.policy import (
    TransformContext,
    apply_transforms,
    important_mask,
    lineage_range,
    validate_reasons,
    withhold_reasons,
)
from corridor.core.policy.erasable import ErasableSealing, column_fns, subject_missing
from corridor.core.policy.key import allowed_headers, key_column, outgoing_keys
from corridor.core.policy.subjects import SubjectInputs, decide_subjects
from corridor.core.policy.tombstone import is_tombstone, tombstone_headers, tombstone_reason
from corridor.core.policy.transform import ColumnFn
from corridor.core.policy.withhold import expired_reasons
from corridor.core.schema import AvroSchema
from corridor.core.subjects import LedgerEntry, ThresholdAlert
from corridor.core.wire import (
    HEADERS_COLUMN,
    KEY_COLUMN,
    LINEAGE,
    LINEAGE_OFFSET,
    LINEAGE_ROW,
    META_KEY,
    META_LINEAGE,
    SEALED_PREFIX,
    TIMESTAMP_COLUMN,
    batch_key,
    confluent_header,
    lineage_text,
)

HEADER_TYPE = pa.list_(pa.struct([("name", pa.string()), ("value", pa.binary())]))
ARROW_MESSAGE_BYTES = 4 * 1024 * 1024  # Arrow buffer bytes per corridor message (limit: 8 MiB)
# zstd over lz4 by measurement (12k shipment rows, 3.7 MB of buffers): zstd 0.99 MB in
# 5.7 ms, lz4 1.9 MB in 8.2 ms; both decode in 2.6 ms.
ARROW_COMPRESSION = "zstd"
# A record larger than this is quarantined before decoding. Its output (headers added,
# encrypted fields grown) must still fit the destination's message limit (8 MiB on the
# local zones, 1 MiB on a default Kafka topic): a record the destination refuses would
# abort its batch's transaction on every replay and stall the partition for good.
MAX_RECORD_BYTES = 1 << 20


class Delivery(NamedTuple):
    """One message for the corridor topic. ``offsets``: arrow format, the rows' source offsets.

    An immutable NamedTuple rather than a frozen dataclass: one is built per
    delivered record, and a tuple is several times cheaper to build.
    """

    value: bytes | None  # None: a tombstone (a delete crossing)
    key: bytes | None
    headers: list[tuple[str, bytes | None]]  # a park header allowed to cross may be null
    lineage: Lineage  # the record's; for an arrow batch, its first row's
    offsets: tuple[int, ...] = ()
    row_ids: tuple[int, ...] = ()  # arrow batch of Arrow-input rows: each row's source row
    timestamp: int | None = None  # ms: the source record's (arrow: the newest row's)

    @property
    def rows(self) -> int:
        return len(self.offsets) if self.offsets else 1

    def lineages(self) -> list[Lineage]:
        if not self.offsets:
            return [self.lineage]
        t, p = self.lineage.topic, self.lineage.partition
        if self.row_ids:
            return [Lineage(t, p, o, r) for o, r in zip(self.offsets, self.row_ids, strict=False)]
        return [Lineage(t, p, o) for o in self.offsets]


class SideRecord(NamedTuple):
    """A withheld or quarantined record: the ORIGINAL bytes, and why it stayed home."""

    lineage: Lineage
    key: bytes | None
    value: bytes | None
    reason: str


@dataclass(frozen=True)
class BatchResult:
    """Everything one batch produced. Counts always add up (see ``check``)."""

    dataset: str
    delivered: list[Delivery]
    withheld: list[SideRecord]
    quarantined: list[SideRecord]
    egress_schemas_used: tuple[AvroSchema, ...]
    processed_at_ms: int
    inputs: int = field(default=0)
    # Data subjects: the ledger entries to write with the batch, and threshold alerts.
    ledger: tuple[LedgerEntry, ...] = ()
    alerts: tuple[ThresholdAlert, ...] = ()

    def counts(self) -> dict[str, int]:
        """Records by outcome (an arrow Delivery counts its rows)."""
        return {
            Outcome.DELIVERED.value: sum(d.rows for d in self.delivered),
            Outcome.WITHHELD.value: len(self.withheld),
            Outcome.QUARANTINED.value: len(self.quarantined),
        }

    def outcomes(self) -> dict[Lineage, Outcome]:
        """Outcome of every input lineage."""
        out = {lin: Outcome.DELIVERED for d in self.delivered for lin in d.lineages()}
        out.update((s.lineage, Outcome.WITHHELD) for s in self.withheld)
        out.update((s.lineage, Outcome.QUARANTINED) for s in self.quarantined)
        return out

    def check(self) -> None:
        """AssertionError unless every input lineage has exactly one outcome."""
        total = sum(self.counts().values())
        assert total == self.inputs, f"{total} outcomes for {self.inputs} messages"
        assert len(self.outcomes()) == self.inputs, "a lineage has two outcomes"


def process(
    messages: Sequence[RawMessage], plan: CorridorPlan, dataset_plan: DatasetPlan, now_ms: int,
    *, writer_schemas: Mapping[int, AvroSchema] | None = None,
    erasable: ErasableSealing | None = None,
    subjects: SubjectInputs | None = None,
) -> BatchResult:
    """Run one batch of *dataset_plan*'s source topic through the corridor (module docstring).

    ``writer_schemas`` (schema id -> writer schema, from the origin's schema registry):
    when given, a message may also be Confluent-framed Avro or one JSON object, told
    apart per message (``corridor.core.codec.dialects``); it must hold every schema id
    of the batch the registry knows (``dialects.confluent_ids``): an id missing from it
    is quarantined as ``decode: unknown schema id N``. None (the default): single-object
    Avro and Arrow IPC only, as before. ``erasable``: the per-subject keys of the dataset's
    erasable fields (``corridor.core.policy.erasable``; required when it has any).
    ``subjects``: the processor's key, ledger and consent view, required when the dataset
    names its subject (``policy.subjects``)."""
    dp = dataset_plan
    # An Arrow IPC message holds many records and may be up to the topic's limit.
    oversized = {i: _oversized(len(m.value)) for i, m in enumerate(messages)
                 if m.value is not None and len(m.value) > MAX_RECORD_BYTES
                 and not looks_like_ipc(m.value)}
    inputs = decode_inputs(messages, plan.store, dp.schema, frozenset(oversized), writer_schemas)
    units, decoded = inputs.units, inputs.decoded
    quarantined = {i: f"decode: {reason}" for i, reason in decoded.errors}
    # A tombstone (null value: a delete from change data capture) is no bad input: it
    # crosses with its key under the key policy, or stays home (policy.tombstone).
    deletes = [i for i, u in enumerate(units) if is_tombstone(u)]
    side_w: dict[int, str] = {}
    for i in deletes:
        quarantined.pop(i, None)
        if (reason := tombstone_reason(units[i], plan, dp, now_ms)) is not None:
            side_w[i] = reason
    crossing = [i for i in deletes if i not in side_w]
    quarantined.update((inputs.first_unit[i], reason) for i, reason in oversized.items())
    batch, rows = decoded.batch, decoded.rows
    invalid = validate_reasons(batch, dp.validate)
    expiry = plan.instrument_expiry_ms
    if expiry is not None and now_ms >= expiry and plan.instrument is not None:
        withheld = expired_reasons(batch.num_rows, plan.instrument.id)
    else:
        important = important_mask(batch, dp.important_when)
        withheld = withhold_reasons(batch, dp.withhold, important, plan.admit, plan.name)
        for row, reason in subject_missing(batch, dp).items():
            withheld.setdefault(row, reason)
    keep = np.ones(batch.num_rows, dtype=bool)
    for row, reason in invalid.items():
        quarantined[rows[row]] = reason
        keep[row] = False
    for row, reason in withheld.items():
        if keep[row]:
            side_w[rows[row]] = reason
            keep[row] = False
    decided = decide_subjects(batch, keep, plan, dp, now_ms, subjects)
    for row, reason in decided.withheld.items():
        side_w[rows[row]] = reason
        keep[row] = False
    passed = batch.filter(pa.array(keep)) if not keep.all() else batch
    positions = [r for r, k in zip(rows, keep.tolist(), strict=False) if k]
    if plan.format is WireFormat.ARROW:
        delivered = _arrow(units, positions, passed, plan, dp)
    else:
        delivered = _avro(units, positions, passed, plan, dp, erasable)
        if crossing:
            delivered = _with_deletes(delivered, positions, units, crossing, plan, dp)
    return BatchResult(
        dataset=dp.dataset,
        delivered=delivered,
        withheld=_side(inputs, side_w, dp),
        quarantined=_side(inputs, quarantined, dp),
        egress_schemas_used=(dp.egress,) if delivered else (),
        processed_at_ms=now_ms,
        inputs=len(units),
        ledger=decided.delta,
        alerts=decided.alerts,
    )


def _oversized(size: int) -> str:
    return f"oversized: {size} bytes exceeds the limit of {MAX_RECORD_BYTES} bytes per record"


def _side(inputs: Inputs, reasons: dict[int, str], dp: DatasetPlan) -> list[SideRecord]:
    """Side records carry the original bytes; an Arrow row carries itself as single-object
    Avro of the dataset (or, when it did not decode, as a one-row Arrow IPC stream)."""
    units = inputs.units
    values = {i: units[i].value for i in reasons}
    values.update((i, inputs.side_values[i]) for i in reasons if i in inputs.side_values)
    rows = [i for i in reasons if values[i] is None and units[i].lineage.row >= 0]
    if rows:
        where = {u: r for r, u in enumerate(inputs.decoded.rows)}
        taken = inputs.decoded.batch.take(pa.array([where[i] for i in rows], pa.int64()))
        values.update(zip(rows, encode_avro(taken, dp.schema), strict=False))
    # A tombstone's side record is empty, not null: null would be a tombstone of the
    # compacted side topic, deleting the very record that accounts for it.
    return [
        SideRecord(units[i].lineage, units[i].key, b"" if values[i] is None else values[i],
                   reasons[i])
        for i in sorted(reasons)
    ]


def _context(plan: CorridorPlan, dp: DatasetPlan, lineage: str = "",
             per_subject: Mapping[str, ColumnFn] | None = None) -> TransformContext:
    key = plan.pseudonym_key.reveal() if plan.pseudonym_key is not None else None
    return TransformContext(
        corridor=plan.name,
        dataset=dp.dataset,
        schema=dp.schema,
        cipher=plan.cipher,
        pseudonym_key=key,
        arrow_format=plan.format is WireFormat.ARROW,
        lineage=lineage,
        per_subject=per_subject or {},
    )


def _avro(
    messages: Sequence[RawMessage],
    positions: list[int],
    batch: pa.RecordBatch,
    plan: CorridorPlan,
    dp: DatasetPlan,
    erasable: ErasableSealing | None = None,
) -> list[Delivery]:
    if not positions:
        return []
    lineages = [messages[i].lineage for i in positions]
    ctx = _context(plan, dp, per_subject=column_fns(batch, lineages, plan.name, dp, erasable))
    out = apply_transforms(batch, dp.transforms, ctx).batch
    values = encode_avro(out, dp.egress, _header(plan, dp))
    keys = outgoing_keys([messages[i].key for i in positions], dp.key, ctx)
    constant = list(dp.headers)
    allowed = plan.allowed_headers
    deliveries = []
    for i, value, key in zip(positions, values, keys, strict=False):
        m = messages[i]
        lin = m.lineage
        text = lineage_text(lin.topic, lin.partition, lin.offset, lin.row)
        headers: list[tuple[str, bytes | None]] = [*constant, (LINEAGE, text.encode())]
        if allowed and m.headers:
            headers += allowed_headers(m.headers, allowed)
        deliveries.append(Delivery(value, key, headers, lin, (), (), m.timestamp_ms))
    return deliveries


def _with_deletes(delivered: list[Delivery], positions: list[int], units: Sequence[RawMessage],
                  crossing: list[int], plan: CorridorPlan, dp: DatasetPlan) -> list[Delivery]:
    """*delivered* (one per position) and a tombstone Delivery per *crossing* unit, merged in
    source order (a delete after an insert of the same key in one batch stays after it)."""
    deletes = [units[i] for i in crossing]
    keys = outgoing_keys([m.key for m in deletes], dp.key, _context(plan, dp))
    tombstones = [Delivery(None, key, tombstone_headers(m, plan, dp), m.lineage, (), (),
                           m.timestamp_ms) for m, key in zip(deletes, keys, strict=True)]
    merged = sorted(zip([*positions, *crossing], [*delivered, *tombstones], strict=True),
                    key=lambda pair: pair[0])
    return [d for _, d in merged]


def _header(plan: CorridorPlan, dp: DatasetPlan) -> bytes | None:
    """The Confluent header of ``wire: confluent`` (None: single-object)."""
    if not plan.confluent:
        return None
    if dp.egress_id is None:
        raise PlanError(plan.name, f"wire: confluent but the egress schema of {dp.dataset} "
                                   "has no registry id (register it first: with_egress_ids)")
    return confluent_header(dp.egress_id)


def _arrow(
    units: Sequence[RawMessage],
    positions: list[int],
    batch: pa.RecordBatch,
    plan: CorridorPlan,
    dp: DatasetPlan,
) -> list[Delivery]:
    groups: dict[tuple[str, int], list[int]] = {}
    for row, i in enumerate(positions):
        lin = units[i].lineage
        groups.setdefault((lin.topic, lin.partition), []).append(row)
    deliveries = []
    for (topic, partition), group in sorted(groups.items()):
        part = batch.take(pa.array(group, pa.int64()))
        rows = [units[positions[r]] for r in group]
        start = 0
        # Cut by bytes: a corridor message must stay under the topic's limit.
        for piece in row_slices(part, ARROW_MESSAGE_BYTES):
            chunk = rows[start : start + piece.num_rows]
            start += piece.num_rows
            deliveries.append(_arrow_message(piece, chunk, topic, partition, plan, dp))
    return deliveries


def _arrow_message(part: pa.RecordBatch, rows: list[RawMessage], topic: str, partition: int,
                   plan: CorridorPlan, dp: DatasetPlan) -> Delivery:
    lineages = [r.lineage for r in rows]
    offsets = tuple(lin.offset for lin in lineages)
    row_ids = tuple(lin.row for lin in lineages)
    span = lineage_range(topic, partition, offsets)
    ctx = _context(plan, dp, span)
    done = apply_transforms(part, dp.transforms, ctx)
    out = done.batch.append_column(LINEAGE_OFFSET, pa.array(offsets, pa.int64()))
    if any(r >= 0 for r in row_ids):
        out = out.append_column(LINEAGE_ROW, pa.array(row_ids, pa.int32()))
    else:
        row_ids = ()
    out = out.append_column(KEY_COLUMN, key_column([r.key for r in rows], dp.key, ctx))
    stamps = [r.timestamp_ms for r in rows]
    out = out.append_column(TIMESTAMP_COLUMN, pa.array(stamps, pa.timestamp("ms", tz="UTC")))
    if plan.allowed_headers:
        parked = [[{"name": k, "value": v}
                   for k, v in allowed_headers(r.headers, plan.allowed_headers)] for r in rows]
        out = out.append_column(HEADERS_COLUMN, pa.array(parked, HEADER_TYPE))
    metadata = {META_LINEAGE: span.encode(), META_KEY: dp.key.value.encode()}
    metadata.update((f"{SEALED_PREFIX}{p}".encode(), blob) for p, blob in done.sealed.items())
    out = out.replace_schema_metadata(metadata)
    headers: list[tuple[str, bytes | None]] = [*dp.headers, (LINEAGE, span.encode())]
    known = [t for t in stamps if t is not None]
    key = batch_key(topic, partition)
    return Delivery(to_ipc(out, ARROW_COMPRESSION), key, headers, lineages[0], offsets, row_ids,
                    max(known) if known else None)
