"""Plain reading and writing for the SDK, `corridor verify` and the CLI tools.

Everything here is read_committed and manually assigned (no group state is
needed to read a topic to its end). ``read_to_end`` reads a snapshot: every
partition up to the high watermark seen when it starts; a partition behind an
open transaction is waited for (up to a deadline), because read_committed
stops at the last stable offset, and "not yet visible" is not "absent".
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Any

from confluent_kafka import (
    OFFSET_BEGINNING,
    OFFSET_END,
    Consumer,
    KafkaError,
    KafkaException,
    Producer,
    TopicPartition,
)

from corridor.core.errors import KafkaUnavailable
from corridor.kafka.clients import Endpoint, client_config
from corridor.kafka.sink import OutMessage
from corridor.zones.credentials import Principal

METADATA_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class Record:
    """One message as read: where it is, its key, value and headers (values as bytes)."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    def header(self, name: str) -> str | None:
        """Last value of header ``name`` as utf-8 text, or None."""
        found = None
        for k, v in self.headers:
            if k == name and v is not None:
                found = v.decode("utf-8", errors="replace")
        return found


def _record(msg: Any) -> Record:
    ts_type, ts = msg.timestamp()
    return Record(msg.topic(), int(msg.partition()), int(msg.offset()), msg.key(), msg.value(),
                  tuple(msg.headers() or ()), ts if ts_type else None)


def _consumer(endpoint: Endpoint, principal: Principal, group: str | None = None,
              uncommitted: bool = False) -> Consumer:
    return Consumer(client_config(endpoint, principal, {
        "group.id": group or f"corridor-reader-{uuid.uuid4().hex[:10]}",
        "enable.auto.commit": group is not None,
        "isolation.level": "read_uncommitted" if uncommitted else "read_committed",
        "auto.offset.reset": "earliest",
        "enable.partition.eof": False,
        # Closing a short-lived reader mid-handshake logs a spurious SASL error; real
        # failures surface as exceptions or deadlines instead.
        "log_level": 2,
    }))


def _kafka_error(endpoint: Endpoint, what: str, exc: KafkaException) -> KafkaUnavailable:
    err = exc.args[0]
    text = err.str() if isinstance(err, KafkaError) else str(err)
    return KafkaUnavailable(f"{endpoint.zone}: {what}: {text}")


def partitions_of(consumer: Consumer, endpoint: Endpoint, topic: str) -> list[int]:
    """Partition ids of ``topic``; raises KafkaUnavailable when it does not exist."""
    try:
        md = consumer.list_topics(topic, timeout=METADATA_TIMEOUT_S)
    except KafkaException as exc:
        raise _kafka_error(endpoint, f"metadata of {topic}", exc) from None
    meta = md.topics.get(topic)
    if meta is None or meta.error is not None or not meta.partitions:
        raise KafkaUnavailable(f"{endpoint.zone}: topic {topic} does not exist "
                               "(run `corridor provision`)")
    return sorted(meta.partitions)


def watermarks(endpoint: Endpoint, principal: Principal, topic: str) -> dict[int, tuple[int, int]]:
    """(log start, high watermark) of each partition of ``topic``."""
    consumer = _consumer(endpoint, principal)
    try:
        return _watermarks(consumer, endpoint, topic)
    finally:
        consumer.close()


def _watermarks(consumer: Consumer, endpoint: Endpoint, topic: str) -> dict[int, tuple[int, int]]:
    marks = {}
    try:
        for p in partitions_of(consumer, endpoint, topic):
            marks[p] = consumer.get_watermark_offsets(TopicPartition(topic, p),
                                                      timeout=METADATA_TIMEOUT_S, cached=False)
    except KafkaException as exc:
        raise _kafka_error(endpoint, f"watermarks of {topic}", exc) from None
    return marks


def read_to_end(endpoint: Endpoint, principal: Principal, topic: str,
                timeout_s: float = 60.0, uncommitted: bool = False) -> Iterator[Record]:
    """Every committed record of ``topic`` up to the high watermarks seen at the start.

    ``uncommitted=True`` reads at read_uncommitted: records of aborted and open
    transactions too, i.e. everything that reached the cluster's disk.

    Order is per partition (partitions interleave). Raises KafkaUnavailable when
    the topic is missing or the end is not reached within ``timeout_s``.
    """
    consumer = _consumer(endpoint, principal, uncommitted=uncommitted)
    try:
        targets = {p: high for p, (low, high) in _watermarks(consumer, endpoint, topic).items()
                   if high > low}
        if not targets:
            return
        consumer.assign([TopicPartition(topic, p, OFFSET_BEGINNING) for p in targets])
        deadline = time.monotonic() + timeout_s
        while not _caught_up(consumer, topic, targets):
            if time.monotonic() > deadline:
                raise KafkaUnavailable(f"{endpoint.zone}: reading {topic} did not reach its end "
                                       f"within {timeout_s:.0f}s (an open transaction?)")
            for msg in consumer.consume(1000, timeout=0.2):
                if msg.error() is None:
                    record = _record(msg)
                    if record.offset < targets[record.partition]:
                        yield record
    except KafkaException as exc:
        raise _kafka_error(endpoint, f"reading {topic}", exc) from None
    finally:
        consumer.close()


def _caught_up(consumer: Consumer, topic: str, targets: dict[int, int]) -> bool:
    positions = consumer.position([TopicPartition(topic, p) for p in targets])
    return all(tp.offset >= 0 and tp.offset >= targets[tp.partition] for tp in positions)


class Follower:
    """Follows one topic (all partitions) at read_committed; ``poll`` returns what arrived.

    Without ``group`` it assigns every partition itself, from the beginning or
    the end; with ``group`` it subscribes, and the group's committed offsets win.
    """

    def __init__(self, endpoint: Endpoint, principal: Principal, topic: str, *,
                 group: str | None = None, from_beginning: bool = True) -> None:
        self.endpoint, self.topic = endpoint, topic
        self.consumer = _consumer(endpoint, principal, group)
        try:
            if group is None:
                start = OFFSET_BEGINNING if from_beginning else OFFSET_END
                parts = partitions_of(self.consumer, endpoint, topic)
                self.consumer.assign([TopicPartition(topic, p, start) for p in parts])
            else:
                self.consumer.subscribe([topic])
        except KafkaException as exc:
            self.consumer.close()
            raise _kafka_error(endpoint, f"following {topic}", exc) from None

    def poll(self, timeout_s: float = 0.5, max_records: int = 500) -> list[Record]:
        try:
            msgs = self.consumer.consume(max_records, timeout=timeout_s)
        except KafkaException as exc:
            raise _kafka_error(self.endpoint, f"reading {self.topic}", exc) from None
        out = []
        for msg in msgs:
            err = msg.error()
            if err is None:
                out.append(_record(msg))
            elif err.fatal() or not err.retriable() and err.code() != KafkaError._PARTITION_EOF:
                raise KafkaUnavailable(f"{self.endpoint.zone}: reading {self.topic}: {err.str()}")
        return out

    def close(self) -> None:
        self.consumer.close()


class PlainProducer:
    """An idempotent producer; ``flush`` raises if any record was rejected."""

    def __init__(self, endpoint: Endpoint, principal: Principal,
                 settings: dict[str, Any] | None = None) -> None:
        self.endpoint = endpoint
        self.failed: list[str] = []
        self.producer = Producer(client_config(endpoint, principal, {
            "enable.idempotence": True,
            "acks": "all",
            "linger.ms": 10,
            "compression.type": "lz4",
            "message.timeout.ms": 60000,
            "log_level": 3,
            **(settings or {}),
        }))

    def _delivered(self, err: KafkaError | None, _msg: Any) -> None:
        if err is not None:
            self.failed.append(err.str())

    def produce(self, topic: str, value: bytes | None, key: bytes | None = None,
                headers: Sequence[tuple[str, bytes]] | None = None,
                partition: int | None = None, timestamp_ms: int | None = None) -> None:
        kwargs: dict[str, Any] = {"key": key, "headers": list(headers or []) or None,
                                  "on_delivery": self._delivered}
        if partition is not None:
            kwargs["partition"] = partition
        if timestamp_ms is not None:
            kwargs["timestamp"] = timestamp_ms
        while True:
            try:
                self.producer.produce(topic, value, **kwargs)
                break
            except BufferError:
                self.producer.poll(0.1)  # queue full: let deliveries drain, then retry
            except KafkaException as exc:
                raise _kafka_error(self.endpoint, f"producing to {topic}", exc) from None
        self.producer.poll(0)

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait until every record is acknowledged. Raises KafkaUnavailable otherwise."""
        left = self.producer.flush(timeout_s)
        if left:
            raise KafkaUnavailable(f"{self.endpoint.zone}: {left} records not acknowledged "
                                   f"within {timeout_s:.0f}s")
        if self.failed:
            first, count = self.failed[0], len(self.failed)
            self.failed = []
            raise KafkaUnavailable(f"{self.endpoint.zone}: {count} records rejected: {first}")


class TransactionalWriter:
    """A minimal transactional producer: write a list of records in one transaction.

    For tools and tests that mimic a processor; the processor itself uses
    ``corridor.kafka.sink.TransactionalSink`` (retries, fencing, notifications).
    """

    def __init__(self, endpoint: Endpoint, principal: Principal, transactional_id: str) -> None:
        self.producer = Producer(client_config(endpoint, principal, {
            "transactional.id": transactional_id, "enable.idempotence": True, "acks": "all",
            "log_level": 3,
        }))
        self.producer.init_transactions(30)

    def write(self, messages: Sequence[OutMessage], commit: bool = True) -> None:
        """Produce ``messages`` in one transaction, then commit it (or abort it)."""
        self.producer.begin_transaction()
        for m in messages:
            kwargs: dict[str, Any] = {"key": m.key, "headers": m.headers or None}
            if m.partition is not None:
                kwargs["partition"] = m.partition
            self.producer.produce(m.topic, m.value, **kwargs)
        if commit:
            self.producer.commit_transaction(30)
        else:
            self.producer.flush(30)
            self.producer.abort_transaction(30)


def read_one(endpoint: Endpoint, topic: str, partition: int, offset: int,
             principal: Principal, timeout_s: float = 30.0) -> Record:
    """One record, by its position (read_committed)."""
    zone = endpoint.zone
    consumer = _consumer(endpoint, principal)
    try:
        consumer.assign([TopicPartition(topic, partition, offset)])
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            for msg in consumer.consume(1, timeout=0.5):
                if msg.error() is None and msg.offset() == offset:
                    return _record(msg)
        raise KafkaUnavailable(f"{zone}: {topic}/{partition}/{offset} not readable "
                               f"within {timeout_s:.0f}s")
    except KafkaException as exc:
        raise _kafka_error(endpoint, f"reading {topic}", exc) from None
    finally:
        consumer.close()
