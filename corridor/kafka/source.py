"""The origin consumer of one corridor: what the processor reads, and nothing else.

``Source`` wraps the confluent ``Consumer``: its settings (read_committed, no
offsets committed to the origin, cooperative-sticky assignment), the
subscription and its assign/revoke/lost callbacks, ``consume`` (records as
``RawMessage``s grouped per source partition), seek, pause and resume,
incremental (un)assignment, positions, watermarks and lag.

It speaks plain values: a partition is ``(topic, partition)``, an offset an
int (``BEGINNING``: the partition's first record), never a confluent
``TopicPartition``. A Kafka failure is raised as ``KafkaUnavailable`` carrying
the error's code (``'_TRANSPORT'``, ``'TOPIC_AUTHORIZATION_FAILED'``, ...).

Does not own: what to do when partitions are assigned or revoked (stored
offsets, producers, gap checks: ``processor.rebalance``), the stored positions
(``kafka.offsets``), writing (``kafka.sink``).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable, Iterable, Mapping
from typing import Any, NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)

from corridor.core.model import Lineage, RawMessage
from corridor.kafka.clients import Endpoint, client_config, unavailable
from corridor.zones.credentials import Principal

Partition = tuple[str, int]  # (topic, partition)
Rebalanced = Callable[[list[Partition]], None]
Notify = Callable[[str, dict[str, Any]], None]
BEGINNING = OFFSET_BEGINNING  # a start offset: the partition's first record still kept
SESSION_TIMEOUT_MS = 10000


class Polled(NamedTuple):
    """What one ``consume`` returned: the records per source partition, in offset order;
    ``empty`` when the poll returned nothing at all (not even an error): the source is idle."""

    groups: dict[Partition, list[RawMessage]]
    empty: bool


class Source:
    """The consumer of one corridor's source topics in the consumer group ``group``.

    ``headers``: read the park's record headers (only when the corridor lets some
    cross; otherwise they are never read). ``notify`` reports consume errors as
    state changes (``source_error``).
    """

    def __init__(self, endpoint: Endpoint, principal: Principal, group: str, *,
                 max_wait_ms: int, headers: bool, notify: Notify) -> None:
        self.headers, self.notify = headers, notify
        self.consumer = Consumer(client_config(endpoint, principal, {
            "group.id": group,
            "isolation.level": "read_committed",
            "enable.auto.commit": False,
            "enable.auto.offset.store": False,
            "auto.offset.reset": "earliest",
            "partition.assignment.strategy": "cooperative-sticky",
            "max.poll.interval.ms": 600000,
            # A crashed instance's partitions move to the others within seconds.
            "session.timeout.ms": SESSION_TIMEOUT_MS,
            "heartbeat.interval.ms": 2000,
            "fetch.max.bytes": 16 * 1024 * 1024,
            # Prefetched source bytes held in this process (default 64 MiB): peak RSS.
            "queued.max.messages.kbytes": 32 * 1024,
            "fetch.wait.max.ms": max(10, min(500, max_wait_ms)),
            "log_level": 3,
        }))

    def subscribe(self, topics: Iterable[str], on_assign: Rebalanced, on_revoke: Rebalanced) -> None:
        """Join the group for ``topics``. The callbacks run inside ``consume``; a lost
        assignment is a revocation. What a callback raises comes out of ``consume``."""
        self.consumer.subscribe(
            list(topics),
            on_assign=lambda _c, partitions: on_assign(_plain(partitions)),
            on_revoke=lambda _c, partitions: on_revoke(_plain(partitions)),
            on_lost=lambda _c, partitions: on_revoke(_plain(partitions)))

    def consume(self, max_records: int, timeout_s: float) -> Polled:
        """Up to ``max_records`` records, waiting up to ``timeout_s`` for the first."""
        return self._group(self.consumer.consume(max_records, timeout_s))

    def _group(self, messages: list[Message]) -> Polled:
        groups: dict[Partition, list[RawMessage]] = defaultdict(list)
        headers = self.headers  # else park headers are never read
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self.notify("source_error", {"step": "consume", "error": err.str()})
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            ts_type, ts = msg.timestamp()
            groups[(topic, partition)].append(RawMessage(
                Lineage(topic, partition, offset), msg.value(), msg.key(),
                ts if ts_type else None, tuple(msg.headers() or ()) if headers else None))
        return Polled(groups, not messages)

    def incremental_assign(self, starts: Iterable[tuple[str, int, int]]) -> None:
        """Start reading each ``(topic, partition, offset)``."""
        self.consumer.incremental_assign([TopicPartition(t, p, o) for t, p, o in starts])

    def incremental_unassign(self, partitions: Iterable[Partition]) -> None:
        self.consumer.incremental_unassign(_confluent(partitions))

    def seek(self, topic: str, partition: int, offset: int) -> None:
        """Read ``topic``/``partition`` from ``offset`` on (``BEGINNING``: its first record)."""
        self.consumer.seek(TopicPartition(topic, partition, offset))

    def pause(self, partitions: Iterable[Partition]) -> None:
        self.consumer.pause(_confluent(partitions))

    def resume(self, partitions: Iterable[Partition]) -> None:
        self.consumer.resume(_confluent(partitions))

    def position(self, partitions: Iterable[Partition]) -> dict[Partition, int]:
        """The next offset the consumer fetches per partition (negative while unset)."""
        try:
            found = self.consumer.position(_confluent(partitions))
        except KafkaException as exc:
            raise unavailable("positions", exc) from None
        return {(tp.topic, tp.partition): tp.offset for tp in found}

    def watermarks(self, topic: str, partition: int, timeout_s: float) -> tuple[int, int]:
        """``(low, high)``: the first offset still kept, and one past the last, asked of
        the broker (not cached)."""
        try:
            low, high = self.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=timeout_s, cached=False)
        except KafkaException as exc:
            raise unavailable(f"watermarks of {topic}/{partition}", exc) from None
        return low, high

    def lag(self, tracked: Mapping[Partition, int]) -> int:
        """Records after the positions ``tracked`` on those partitions; -1 if there are none.

        A partition's position is the tracked one, or the consumer's fetch position
        when that is further (it has moved past transaction markers of a
        transactional source); the fetch position alone is unset on a partition
        that had nothing to fetch.
        """
        if not tracked:
            return -1
        return sum(self.lags(tracked).values())

    def lags(self, tracked: Mapping[Partition, int]) -> dict[Partition, int]:
        """``lag`` per partition."""
        fetched = self.position(list(tracked))
        out = {}
        for (topic, partition), position in list(tracked.items()):
            position = max(position, fetched.get((topic, partition), -1))
            _, high = self.watermarks(topic, partition, timeout_s=10)
            out[(topic, partition)] = max(0, high - position)
        return out

    def close(self) -> None:
        """Leave the group. Closing twice is not an error."""
        try:  # noqa: SIM105
            self.consumer.close()
        except RuntimeError:
            pass  # already closed


def _plain(partitions: list[TopicPartition]) -> list[Partition]:
    return [(tp.topic, tp.partition) for tp in partitions]


def _confluent(partitions: Iterable[Partition]) -> list[TopicPartition]:
    return [TopicPartition(t, p) for t, p in partitions]
