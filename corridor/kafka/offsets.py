"""Source offsets kept in the destination, in the corridor's ``_corridor.offsets.<corridor>``.

The processor writes, inside each destination transaction, one record per
source partition: key ``<corridor>|<topic>|<partition>``, value the next source
offset to read (its bytes: ``corridor.core.offsets``). This is how Kafka
Connect's exactly-once source (KIP-618) works across clusters: the output and the position commit or abort together.

Each key goes to a fixed partition of the offsets topic (CRC-32 of the key),
so reading one source partition's position reads one offsets partition.
Reading waits until the read_committed position has passed the high watermark
seen at the start: an offset record behind another producer's open
transaction is not "absent", it is not yet visible, and taking the older value
would replay records already delivered.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from corridor.core.errors import KafkaUnavailable

# The record's bytes are pure (corridor.core.offsets); re-exported for existing importers.
from corridor.core.offsets import StoredOffset as StoredOffset
from corridor.core.offsets import decode_stored as decode_stored
from corridor.core.offsets import encode_offset as encode_offset
from corridor.core.offsets import offset_key as offset_key
from corridor.core.offsets import offset_partition as offset_partition
from corridor.core.topics import offsets_topic
from corridor.kafka.clients import Endpoint, client_config, unavailable
from corridor.zones.credentials import Principal


@dataclass
class OffsetReader:
    """Reads the committed source positions of one corridor from its destination."""

    endpoint: Endpoint
    principal: Principal
    corridor: str
    timeout_s: float = 180.0

    @property
    def topic(self) -> str:
        """The corridor's offsets topic."""
        return offsets_topic(self.corridor)

    def partitions(self) -> int:
        consumer = self._consumer()
        try:
            md = consumer.list_topics(self.topic, timeout=30)
            topic = md.topics.get(self.topic)
            if topic is None or topic.error is not None or not topic.partitions:
                raise KafkaUnavailable(f"{self.endpoint.zone}: topic {self.topic} is missing: "
                                       "run `corridor provision`")
            return len(topic.partitions)
        finally:
            consumer.close()

    def read(self, sources: Iterable[tuple[str, int]], partitions: int) -> dict[tuple[str, int], int]:
        """Next offset to read for each (topic, partition) that has one stored."""
        return {tp: s.next for tp, s in self.read_stored(sources, partitions).items()}

    def read_stored(self, sources: Iterable[tuple[str, int]],
                    partitions: int) -> dict[tuple[str, int], StoredOffset]:
        """Like ``read``, with the source topic id stored alongside each position."""
        keys = {offset_key(self.corridor, t, p): (t, p) for t, p in sources}
        wanted = sorted({offset_partition(k, partitions) for k in keys})
        if not wanted:
            return {}
        try:  # a Kafka error anywhere, opening and closing the reader included
            return self._read(keys, wanted)
        except KafkaException as exc:
            raise unavailable(f"{self.endpoint.zone}: reading {self.topic}", exc) from None

    def _read(self, keys: dict[bytes, tuple[str, int]],
              wanted: list[int]) -> dict[tuple[str, int], StoredOffset]:
        consumer = self._consumer()
        found: dict[tuple[str, int], StoredOffset] = {}
        try:
            targets = {}
            for part in wanted:
                _, high = consumer.get_watermark_offsets(TopicPartition(self.topic, part),
                                                         timeout=30, cached=False)
                targets[part] = high
            consumer.assign([TopicPartition(self.topic, p, OFFSET_BEGINNING) for p in wanted])
            deadline = time.monotonic() + self.timeout_s
            while not self._caught_up(consumer, targets):
                if time.monotonic() > deadline:
                    raise KafkaUnavailable(f"{self.endpoint.zone}: reading {self.topic} did not "
                                           f"catch up within {self.timeout_s:.0f}s")
                for msg in consumer.consume(1000, timeout=0.5):
                    if msg.error() is None and msg.key() in keys and msg.value() is not None:
                        found[keys[msg.key()]] = decode_stored(msg.value())
        finally:
            consumer.close()
        return found

    def _caught_up(self, consumer: Consumer, targets: dict[int, int]) -> bool:
        positions = consumer.position([TopicPartition(self.topic, p) for p in targets])
        return all(tp.offset >= 0 and tp.offset >= targets[tp.partition] or targets[tp.partition] == 0
                   for tp in positions)

    def _consumer(self) -> Consumer:
        return Consumer(client_config(self.endpoint, self.principal, {
            "group.id": f"corridor-offset-reader-{uuid.uuid4().hex[:8]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "auto.offset.reset": "earliest",
            "enable.partition.eof": False,
            "log_level": 2,  # a reader closed mid-handshake logs a spurious SASL error
        }))
