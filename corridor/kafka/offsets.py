"""Source offsets kept in the destination, in the corridor's ``_corridor.offsets.<corridor>``.

The processor writes, inside each destination transaction, one record per
source partition: key ``<corridor>|<topic>|<partition>``, value the next source
offset to read. This is how Kafka Connect's exactly-once source (KIP-618)
works across clusters: the output and the position commit or abort together.

Each key goes to a fixed partition of the offsets topic (CRC-32 of the key),
so reading one source partition's position reads one offsets partition.
Reading waits until the read_committed position has passed the high watermark
seen at the start: an offset record behind another producer's open
transaction is not "absent", it is not yet visible, and taking the older value
would replay records already delivered.
"""

from __future__ import annotations

import json
import time
import uuid
import zlib
from collections.abc import Iterable
from dataclasses import dataclass

from confluent_kafka import OFFSET_BEGINNING, Consumer, KafkaException, TopicPartition

from corridor.core.errors import KafkaUnavailable
from corridor.core.topics import offsets_topic
from corridor.kafka.clients import Endpoint, client_config
from corridor.zones.credentials import Principal


def offset_key(corridor: str, topic: str, partition: int) -> bytes:
    return f"{corridor}|{topic}|{partition}".encode()


def offset_partition(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


@dataclass(frozen=True, slots=True)
class StoredOffset:
    """A source partition's stored position, and the id of the source topic it belongs to
    (None in records written before ids were stored)."""

    next: int
    topic_id: str | None = None


def encode_offset(next_offset: int, batch_id: str, topic_id: str | None = None) -> bytes:
    value: dict[str, object] = {"next": next_offset, "batch": batch_id}
    if topic_id:
        # A topic deleted and recreated under the same name restarts its offsets: the id
        # tells the two apart (and the processor refuses to mix them).
        value["topic_id"] = topic_id
    return json.dumps(value).encode()


def decode_stored(value: bytes) -> StoredOffset:
    data = json.loads(value)
    return StoredOffset(int(data["next"]), data.get("topic_id") or None)


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
        except KafkaException as exc:
            raise KafkaUnavailable(f"{self.endpoint.zone}: reading {self.topic}: "
                                   f"{exc.args[0].str()}") from None
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
