"""The records one batch sends, as values: steps 2 and 3 of the processor, before any I/O.

``Outbox.batch`` turns a ``BatchResult`` into

- the *side* records, for the origin: withheld and quarantined records (keyed
  by lineage, the reason in a header) and the batch's audit event;
- the *out* records, for the destination transaction, in this order: egress
  schemas not yet published, wrapped data keys not yet committed (the
  corridor's, then the subject keys of erasable fields), the delivered
  records, and the batch's stored position (``core.offsets``).

Every key is derived from the corridor, the source partition and the offsets,
never from the clock, so a replayed batch rewrites the same keys on the
compacted topics. Pure: the time comes in as ``now_ms``. Does not own: the
pipeline that made the result (``core.pipeline``), writing (``kafka.sink``),
when any of it is written (``processor.runner``).
"""

from __future__ import annotations

import json
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import NamedTuple

from corridor.core import topics, wire
from corridor.core.model import OutMessage
from corridor.core.offsets import encode_offset, offset_key, offset_partition
from corridor.core.pipeline import BatchResult
from corridor.core.plan import CorridorPlan


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
    policy_id: str
    withheld_topic: str
    quarantine_topic: str
    audit_topic: str
    offsets_topic: str
    offsets_partitions: int

    @classmethod
    def for_plan(cls, plan: CorridorPlan, offsets_partitions: int) -> Outbox:
        """The outbox of ``plan``'s corridor; its offsets topic has ``offsets_partitions``."""
        name = plan.corridor.name
        return cls(name, plan.corridor.policy_id, plan.withheld_topic, plan.quarantine_topic,
                   plan.audit_topic, topics.offsets_topic(name), offsets_partitions)

    def batch(self, result: BatchResult, topic: str, partition: int, first: int, last: int, *,
              destination_topic: str, destination_partition: int | None,
              topic_id: str | None, published: Collection[bytes],
              pending_keys: Mapping[str, bytes], now_ms: int,
              subject_keys: Mapping[str, bytes] | None = None) -> BatchMessages:
        """Every record of one batch of source ``topic``/``partition``, offsets ``first`` to
        ``last`` (inclusive). ``destination_partition`` None lets the producer's partitioner
        place delivered records; ``published`` are the fingerprints of schemas already in
        the catalog; ``pending_keys`` the wrapped data keys not yet committed, by key id;
        ``subject_keys`` the subject key records (``SubjectKeyRecord.to_json``) of this source
        partition not yet committed, by key id."""
        side = self.side(result, topic, partition, first, last, now_ms)
        out = self.catalog(result, published, pending_keys)
        out += [OutMessage(topics.SUBJECT_KEYS, record, key_id.encode())
                for key_id, record in (subject_keys or {}).items()]
        key_ids = {m.key for m in out if m.topic in (topics.KEYS, topics.SUBJECT_KEYS)}
        out += delivered(result, destination_topic, destination_partition)
        out.append(self.offset(topic, partition, first, last, topic_id))
        return BatchMessages(side, out, key_ids)

    def side(self, result: BatchResult, topic: str, partition: int, first: int, last: int,
             now_ms: int) -> list[OutMessage]:
        """Withheld and quarantined records, then the batch's audit event."""
        side: list[OutMessage] = []
        for target, records in ((self.withheld_topic, result.withheld),
                                (self.quarantine_topic, result.quarantined)):
            side += [OutMessage(target, r.value, str(r.lineage).encode(),
                                [(wire.REASON, r.reason.encode())]) for r in records]
        audit = {"corridor": self.corridor, "topic": topic, "partition": partition,
                 "first": first, "last": last, **result.counts(), "policy": self.policy_id,
                 "ts_ms": now_ms}
        key = f"{self.corridor}|{topic}|{partition}|{first}-{last}"
        side.append(OutMessage(self.audit_topic, json.dumps(audit).encode(), key.encode()))
        return side

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
               topic_id: str | None) -> OutMessage:
        """The stored position after the batch: the next offset to read is ``last + 1``."""
        key = offset_key(self.corridor, topic, partition)
        return OutMessage(self.offsets_topic, encode_offset(last + 1, f"{first}-{last}", topic_id),
                          key, partition=offset_partition(key, self.offsets_partitions))

    def gap(self, topic: str, partition: int, expected: int, low: int, now_ms: int) -> OutMessage:
        """The audit event of source records ``expected`` to ``low`` (exclusive) deleted at
        the origin before they crossed."""
        event = {"event": "gap", "corridor": self.corridor, "topic": topic,
                 "partition": partition, "from": expected, "to": low, "ts_ms": now_ms}
        key = f"{self.corridor}|{topic}|{partition}|gap|{expected}"
        return OutMessage(self.audit_topic, json.dumps(event).encode(), key.encode())


def delivered(result: BatchResult, topic: str, partition: int | None) -> list[OutMessage]:
    """The delivered records of ``result`` for ``topic`` (``partition`` None: by key)."""
    return [OutMessage(topic, d.value, d.key, d.headers, partition, d.timestamp)
            for d in result.delivered]
