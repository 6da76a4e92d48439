"""The origin zone's volume ledger and consent topics, read from Kafka.

- :func:`read_ledger`: the ledger topic ``<zone>.subjects`` folded, read once to its end at
  read_committed (``corridor subjects count``).
- :class:`TopicFeed`: follows one compacted topic (every partition, from the beginning, at
  read_committed, by assignment: no group, nothing committed); :meth:`TopicFeed.end_offsets`
  and :meth:`TopicFeed.reached` tell when everything written before a moment has been read
  (the consent view's staleness, the ledger rebuilt on start). The processor follows the
  ledger (other processors' entries) and ``<zone>.consent`` with it.

Owns the reading only. Does not own what a record means (``corridor.core.subjects``,
``corridor.core.consent``) nor when to read (``corridor.processor.subjects``).
"""

from __future__ import annotations

from confluent_kafka import KafkaException, TopicPartition

from corridor.core import topics
from corridor.core.subjects import LedgerState, fold_ledger
from corridor.kafka.clients import Endpoint, unavailable
from corridor.kafka.io import METADATA_TIMEOUT_S, Follower, Record, read_to_end
from corridor.zones.credentials import Principal

Ends = dict[int, tuple[int, int]]  # partition -> (log start, end offset)


def read_ledger(endpoint: Endpoint, principal: Principal, origin: str,
                timeout_s: float = 120.0) -> tuple[LedgerState, int]:
    """*origin*'s ledger as its topic holds it now (committed records), and how many records
    were not ledger entries. KafkaUnavailable when the topic is missing or unreadable."""
    records = read_to_end(endpoint, principal, topics.subject_ledger(origin), timeout_s)
    return fold_ledger(r.key for r in records)


class TopicFeed(Follower):
    """A :class:`Follower` of every partition from the beginning, which can tell whether it
    has read everything written before :meth:`end_offsets` was called."""

    def take(self, max_records: int = 5000) -> list[Record]:
        """What has arrived, without waiting (the fetcher reads in the background)."""
        return self.poll(0.0, max_records)

    def end_offsets(self) -> Ends:
        """(log start, end offset) of each partition, asked of the brokers now."""
        ends: Ends = {}
        try:
            for tp in self.consumer.assignment():
                ends[tp.partition] = self.consumer.get_watermark_offsets(
                    TopicPartition(self.topic, tp.partition), timeout=METADATA_TIMEOUT_S,
                    cached=False)
        except KafkaException as exc:
            raise unavailable(f"{self.endpoint.zone}: end offsets of {self.topic}", exc) from None
        return ends

    def reached(self, ends: Ends) -> bool:
        """Every record below *ends* has been returned by :meth:`poll` (an open transaction
        holds a read_committed reader back: not reached until it ends)."""
        waiting = [TopicPartition(self.topic, p) for p, (low, high) in ends.items() if high > low]
        if not waiting:
            return True
        try:
            positions = self.consumer.position(waiting)
        except KafkaException as exc:
            raise unavailable(f"{self.endpoint.zone}: position on {self.topic}", exc) from None
        return all(tp.offset >= ends[tp.partition][1] for tp in positions)
