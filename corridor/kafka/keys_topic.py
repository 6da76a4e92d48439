"""``_corridor.keys`` and ``_corridor.control`` on a destination cluster.

- ``published_keys``: the wrapped data keys as the compacted topic holds them
  now (a tombstone removes its key id, whether or not compaction ran yet);
- ``retire_keys``: tombstones for key ids, so consumers no longer find them;
- ``send_command`` / ``ControlListener``: the operator's ``rotate`` and
  ``retire`` requests to running processors, through Kafka, so they reach
  every instance wherever it runs.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable

from confluent_kafka import Consumer, KafkaException, TopicPartition

from corridor.core import topics
from corridor.core.crypto import WrappedKey
from corridor.core.crypto.rotation import ControlCommand
from corridor.core.errors import CryptoError, KafkaUnavailable
from corridor.kafka.clients import Endpoint, client_config
from corridor.kafka.io import PlainProducer, read_to_end
from corridor.zones.credentials import Principal


def published_keys(endpoint: Endpoint, principal: Principal,
                   timeout_s: float = 60.0) -> list[WrappedKey]:
    """Every wrapped data key still published (committed, not tombstoned)."""
    found: dict[str, WrappedKey] = {}
    for rec in read_to_end(endpoint, principal, topics.KEYS, timeout_s=timeout_s):
        if rec.key is None:
            continue
        key_id = rec.key.decode(errors="replace")
        if rec.value is None:
            found.pop(key_id, None)
            continue
        try:
            found[key_id] = WrappedKey.from_json(rec.value)
        except CryptoError:
            continue  # not a key record: ignored, like the consumer SDK does
    return list(found.values())


def retire_keys(endpoint: Endpoint, principal: Principal, key_ids: Iterable[str]) -> int:
    """Publish a tombstone for each key id; returns how many. Waits for acknowledgement."""
    producer = PlainProducer(endpoint, principal)
    count = 0
    for key_id in key_ids:
        producer.produce(topics.KEYS, None, key_id.encode())
        count += 1
    producer.flush(30)
    return count


def send_command(endpoint: Endpoint, principal: Principal, command: ControlCommand) -> None:
    producer = PlainProducer(endpoint, principal)
    producer.produce(topics.CONTROL, command.to_json(), command.key)
    producer.flush(30)


def new_request_id() -> str:
    return uuid.uuid4().hex[:12]


class ControlListener:
    """Reads ``_corridor.control`` from its end at creation; ``poll`` returns new commands.

    No consumer group: every listener sees every command. The start offset is
    the high watermark read at creation (not a lazily resolved "end"), so a
    command sent after the listener exists is never missed.
    """

    def __init__(self, endpoint: Endpoint, principal: Principal, corridor: str) -> None:
        self.corridor = corridor
        self.consumer = Consumer(client_config(endpoint, principal, {
            "group.id": f"corridor-control-{uuid.uuid4().hex[:10]}",
            "enable.auto.commit": False,
            "isolation.level": "read_committed",
            "enable.partition.eof": False,
            "log_level": 2,
        }))
        try:
            md = self.consumer.list_topics(topics.CONTROL, timeout=10)
            meta = md.topics.get(topics.CONTROL)
            if meta is None or meta.error is not None or not meta.partitions:
                raise KafkaUnavailable(f"{endpoint.zone}: topic {topics.CONTROL} does not exist "
                                       "(run `corridor provision`)")
            starts = []
            for p in sorted(meta.partitions):
                _, high = self.consumer.get_watermark_offsets(
                    TopicPartition(topics.CONTROL, p), timeout=10, cached=False)
                starts.append(TopicPartition(topics.CONTROL, p, high))
            self.consumer.assign(starts)
        except KafkaException as exc:
            self.consumer.close()
            raise KafkaUnavailable(f"{endpoint.zone}: {topics.CONTROL}: {exc}") from None
        except KafkaUnavailable:
            self.consumer.close()
            raise

    def poll(self) -> list[ControlCommand]:
        """Commands for this corridor that arrived since the last poll (does not block)."""
        try:
            msgs = self.consumer.consume(100, timeout=0)
        except KafkaException:
            return []  # the destination is unreachable; the next poll tries again
        out = []
        for msg in msgs:
            if msg.error() is None:
                command = ControlCommand.parse(msg.value())
                if command is not None and command.corridor == self.corridor:
                    out.append(command)
        return out

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self.consumer.close()
