"""The records one batch sends, as values: steps 2 and 3 of the processor, before any I/O.

``Outbox.batch`` turns a ``BatchResult`` into

- the *side* records, for the origin: withheld and quarantined records (keyed
  by lineage, the reason and the source key in headers);
- the *out* records, for the destination transaction, in this order: egress
  schemas not yet published, wrapped data keys not yet committed (the
  corridor's, then the subject keys of erasable fields), the delivered
  records, the destination's copy of a signed audit checkpoint when one
  is due, and the batch's stored position (``core.offsets``), which carries the
  batch's audit events.

``batch_summary`` and ``gap_summary`` say what a batch (or a gap) did, as the audit
event records it (``core.audit.BatchSummary``); ``audit_record`` and
``checkpoint_records`` are the records of an event and a checkpoint on the origin's
audit topics, keyed ``<corridor>|<topic>|<partition>|<seq>``.

Every key is derived from the corridor, the source partition and the offsets (or the
chain's seq), never from the clock, so a replayed batch rewrites the same keys.
Pure. Does not own: the pipeline that made the result (``core.pipeline``), the chain
(``core.audit``, ``processor.audit``), writing (``kafka.sink``), when any of it is
written (``processor.runner``).
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass
from typing import NamedTuple

from corridor.core import topics, wire
from corridor.core.audit import AuditEvent, BatchSummary, Checkpoint, encode_checkpoint
from corridor.core.model import OutMessage
from corridor.core.offsets import encode_offset, offset_key, offset_partition
from corridor.core.pipeline import BatchResult, SideRecord
from corridor.core.plan import CorridorPlan, DatasetPlan


class BatchMessages(NamedTuple):
    """What one batch writes: ``side`` to the origin, ``out`` in one destination transaction;
    ``key_ids`` are the ids of the wrapped data keys ``out`` carries."""

    side: list[OutMessage]
    out: list[OutMessage]
    key_ids: set[bytes | None]


@dataclass(frozen=True, slots=True)
class Outbox:
    """Where one corridor's records go besides its output topics, and how they are keyed."""

    corridor: str
    withheld_topic: str
    quarantine_topic: str
    audit_topic: str
    checkpoints_topic: str
    checkpoint_copy_topic: str
    offsets_topic: str
    offsets_partitions: int

    @classmethod
    def for_plan(cls, plan: CorridorPlan, offsets_partitions: int) -> Outbox:
        """The outbox of ``plan``'s corridor; its offsets topic has ``offsets_partitions``."""
        name = plan.corridor.name
        return cls(name, plan.withheld_topic, plan.quarantine_topic, plan.audit_topic,
                   topics.audit_checkpoints(plan.origin), topics.checkpoint_copy(plan.origin),
                   topics.offsets_topic(name), offsets_partitions)

    def batch(self, result: BatchResult, topic: str, partition: int, first: int, last: int, *,
              destination_topic: str, destination_partition: int | None,
              topic_id: str | None, published: Collection[bytes],
              pending_keys: Mapping[str, bytes], audit: Sequence[bytes] = (),
              checkpoint: Checkpoint | None = None,
              subject_keys: Mapping[str, bytes] | None = None) -> BatchMessages:
        """Every record of one batch of source ``topic``/``partition``, offsets ``first`` to
        ``last`` (inclusive). ``destination_partition`` None lets the producer's partitioner
        place delivered records; ``published`` are the fingerprints of schemas already in
        the catalog; ``pending_keys`` the wrapped data keys not yet committed, by key id;
        ``audit`` the batch's encoded audit events and ``checkpoint`` the signed checkpoint
        due with them (both committed with the batch, see ``core.offsets``); ``subject_keys``
        the subject key records (``SubjectKeyRecord.to_json``) of this source partition not
        yet committed, by key id."""
        side = self.side(result)
        out = self.catalog(result, published, pending_keys)
        out += [OutMessage(topics.SUBJECT_KEYS, record, key_id.encode())
                for key_id, record in (subject_keys or {}).items()]
        key_ids = {m.key for m in out if m.topic in (topics.KEYS, topics.SUBJECT_KEYS)}
        out += delivered(result, destination_topic, destination_partition)
        encoded = None
        if checkpoint is not None:
            encoded = encode_checkpoint(checkpoint)
            out.append(self.checkpoint_records(checkpoint, encoded)[1])
        out.append(self.offset(topic, partition, first, last, topic_id, audit, encoded))
        return BatchMessages(side, out, key_ids)

    def side(self, result: BatchResult) -> list[OutMessage]:
        """Withheld and quarantined records, keyed by lineage, the reason in a header."""
        side: list[OutMessage] = []
        for target, records in ((self.withheld_topic, result.withheld),
                                (self.quarantine_topic, result.quarantined)):
            side += [OutMessage(target, r.value, str(r.lineage).encode(), _held_headers(r))
                     for r in records]
        return side

    def audit_record(self, event: AuditEvent, encoded: bytes) -> OutMessage:
        """``encoded`` (the canonical bytes of ``event``) on the origin's audit topic."""
        return OutMessage(self.audit_topic, encoded,
                          self._chain_key(event.topic, event.partition, event.seq))

    def checkpoint_records(self, cp: Checkpoint, encoded: bytes) -> tuple[OutMessage,
                                                                          OutMessage]:
        """(the origin's record, the destination's copy) of a signed checkpoint."""
        key = self._chain_key(cp.topic, cp.partition, cp.seq)
        return (OutMessage(self.checkpoints_topic, encoded, key),
                OutMessage(self.checkpoint_copy_topic, encoded, key))

    def _chain_key(self, topic: str, partition: int, seq: int) -> bytes:
        # One key per event: a topic still compacted (an older provision) loses no event.
        return f"{self.corridor}|{topic}|{partition}|{seq}".encode()

    def catalog(self, result: BatchResult, published: Collection[bytes],
                pending_keys: Mapping[str, bytes]) -> list[OutMessage]:
        """Egress schemas not in ``published`` and the pending wrapped keys: written in the
        transaction of (so never after) the first record that needs them."""
        out = [OutMessage(topics.SCHEMAS, json.dumps(s.raw).encode(), s.fingerprint.hex().encode())
               for s in result.egress_schemas_used if s.fingerprint not in published]
        out += [OutMessage(topics.KEYS, wrapped, key_id.encode())
                for key_id, wrapped in pending_keys.items()]
        return out

    def offset(self, topic: str, partition: int, first: int, last: int,
               topic_id: str | None, audit: Sequence[bytes] = (),
               checkpoint: bytes | None = None) -> OutMessage:
        """The stored position after the batch: the next offset to read is ``last + 1``."""
        key = offset_key(self.corridor, topic, partition)
        value = encode_offset(last + 1, f"{first}-{last}", topic_id, audit, checkpoint)
        return OutMessage(self.offsets_topic, value, key,
                          partition=offset_partition(key, self.offsets_partitions))


def batch_summary(plan: CorridorPlan, dp: DatasetPlan, result: BatchResult, first: int,
                  last: int) -> BatchSummary:
    """What one batch of ``dp``'s source did, source offsets ``first`` to ``last``
    (inclusive), as its audit event records it. The data key is listed when the dataset
    encrypts and a record crossed."""
    reasons = Counter(r.reason for r in result.withheld)
    quarantine_reasons = Counter(r.reason for r in result.quarantined)
    counts = result.counts()
    key_ids = ((plan.cipher.key_id,) if dp.encrypts and plan.cipher is not None
               and counts["delivered"] else ())
    return BatchSummary(_instrument(plan), plan.corridor.legal_basis,
                        plan.corridor.policy_hash, first, last, counts, dict(reasons),
                        dp.protections, key_ids,
                        quarantine_reasons=dict(quarantine_reasons))


def gap_summary(plan: CorridorPlan, first: int, last: int) -> BatchSummary:
    """Source offsets ``first`` to ``last`` (inclusive) deleted at the origin before they
    crossed (kind ``gap``: no counts)."""
    return BatchSummary(_instrument(plan), plan.corridor.legal_basis,
                        plan.corridor.policy_hash, first, last, kind="gap")


def _instrument(plan: CorridorPlan) -> str | None:
    return plan.instrument.id if plan.instrument is not None else None


def _held_headers(record: SideRecord) -> list[tuple[str, bytes | None]]:
    """The reason, and the source key when there was one (`corridor held release` re-runs it)."""
    headers: list[tuple[str, bytes | None]] = [(wire.REASON, record.reason.encode())]
    if record.key is not None:
        headers.append((wire.SOURCE_KEY, record.key))
    return headers


def delivered(result: BatchResult, topic: str, partition: int | None) -> list[OutMessage]:
    """The delivered records of ``result`` for ``topic`` (``partition`` None: by key)."""
    return [OutMessage(topic, d.value, d.key, d.headers, partition, d.timestamp)
            for d in result.delivered]
