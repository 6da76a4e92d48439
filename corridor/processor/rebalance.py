"""The source partitions one instance owns, and what changes when the group moves them.

On assignment (``Assignment.assigned``), in this order:

  Step A. Producers first: one transactional producer per partition, whose
          ``init_transactions`` fences the previous owner and settles its open
          transaction, so the stored offset read next is final.
  Step B. Read each partition's stored offset back from the destination, refuse
          a source topic recreated under the stored position (``SourceRecreated``),
          continue the partition's audit chain from the events stored with it
          (``processor.audit``), report records deleted before they crossed (a gap,
          which becomes a gap event of the chain), then resume what this consumer
          paused and only then assign at the stored offsets (a pause/resume issued
          later could overtake the start offset: librdkafka #2190).

On revocation the partitions' producers are closed and their state dropped.
Transient Kafka failures in these callbacks are waited out (``processor.retry``):
an exception escaping a callback ends the processor. Does not own: the batch
loop and its commit steps (``processor.runner``), the consumer
(``kafka.source``), the stored-offset record (``core.offsets``).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import Any, TypeVar

from corridor.core.acl import transactional_prefix
from corridor.core.errors import SourceRecreated
from corridor.core.offsets import StoredOffset
from corridor.kafka.admin import partition_counts, topic_ids
from corridor.kafka.clients import Endpoint, admin_client
from corridor.kafka.offsets import OffsetReader
from corridor.kafka.sink import TransactionalSink
from corridor.kafka.source import BEGINNING, Partition, Source
from corridor.processor.audit import AuditTrail
from corridor.zones.credentials import Principal

T = TypeVar("T")
Log = Any  # a structlog bound logger
# retrying(event, step, fn): fn() with transient Kafka failures waited out (processor.retry).
Retrying = Callable[[str, str, Callable[[], T]], T]
MakeSink = Callable[[str], TransactionalSink]  # transactional id -> a new producer


class Topology:
    """Topic ids and partition counts of the origin and the destination.

    The admin clients are kept for the runner's life: an AdminClient collected
    early leaves futures hanging."""

    def __init__(self, origin: Endpoint, destination: Endpoint, principal: Principal) -> None:
        self._endpoints = {"origin": origin, "destination": destination}
        self._principal = principal
        self._admins: dict[str, Any] = {}

    def source_ids(self, names: set[str]) -> dict[str, str]:
        """Each existing origin topic's id, by name."""
        return topic_ids(self._admin("origin"), names)

    def source_partitions(self, names: set[str]) -> dict[str, int]:
        return partition_counts(self._admin("origin"), names)

    def destination_partitions(self, names: set[str]) -> dict[str, int]:
        return partition_counts(self._admin("destination"), names)

    def _admin(self, side: str) -> Any:
        if side not in self._admins:
            self._admins[side] = admin_client(self._endpoints[side], self._principal)
        return self._admins[side]


class Assignment:
    """The partitions of ``corridor`` this instance owns: per partition its producer, its
    next offset to process, and whether it is paused or fenced; per source topic its id
    and whether records keep their partition number.

    ``destinations`` maps each source topic to its destination topic; ``make_sink``
    builds a producer for a transactional id; ``audit`` holds the partitions' audit
    chains; ``wall_ms`` is the time of gap events.
    """

    def __init__(self, corridor: str, destinations: Mapping[str, str], *, source: Source,
                 reader: OffsetReader, offset_partitions: int, topology: Topology,
                 make_sink: MakeSink, audit: AuditTrail, retrying: Retrying[Any],
                 log: Log, wall_ms: Callable[[], int] = lambda: int(time.time() * 1000)) -> None:
        self.corridor, self.destinations = corridor, dict(destinations)
        self.source, self.reader, self.offset_partitions = source, reader, offset_partitions
        self.topology, self.make_sink, self.audit = topology, make_sink, audit
        self.retrying, self.log, self.wall_ms = retrying, log, wall_ms
        self.sinks: dict[Partition, TransactionalSink] = {}
        # Next source offset to process per owned partition (what was committed last).
        self.positions: dict[Partition, int] = {}
        # Owned partitions whose producer was fenced: paused since (the runner's clock).
        self.fenced: dict[Partition, float] = {}
        # Partitions this consumer paused and has not resumed. librdkafka keeps a pause
        # across revoke and re-assignment, so a partition that comes back must be resumed.
        self.paused: set[Partition] = set()
        # Source topic ids (stored with every position: see _check_incarnation).
        self.source_ids: dict[str, str] = {}
        # Per source topic: does its destination topic have at least as many partitions?
        # Then a record keeps its partition number, else murmur2 of its outgoing key decides.
        self.aligned: dict[str, bool] = {}

    def assigned(self, partitions: list[Partition]) -> None:
        """The group gave this instance ``partitions`` (see the module doc)."""
        # Step A: producers first: init_transactions fences the previous owner.
        for tp in partitions:
            self.fenced.pop(tp, None)
            self.sink_for(*tp, fresh=True)
        # Step B: then read the committed positions back, and seek there. An exception
        # escaping this callback would end the processor: transient faults are waited out.
        topics = {t for t, _ in partitions}
        self.source_ids.update(self.retrying("origin_unavailable", "describe sources",
                                             lambda: self.topology.source_ids(topics)))
        self._align(topics)
        stored = self.retrying("destination_unavailable", "read stored offsets",
                               lambda: self.reader.read_stored(partitions, self.offset_partitions))
        starts = []
        for topic, partition in partitions:
            kept = stored.get((topic, partition))
            self._check_incarnation(topic, kept)
            self.audit.restore((topic, partition), kept)
            start = None if kept is None else kept.next
            self.retrying("origin_unavailable", "check for a gap",
                          lambda t=topic, p=partition, s=start: self._check_gap(t, p, s))
            starts.append((topic, partition, BEGINNING if start is None else start))
            self.positions[(topic, partition)] = start or 0
        # Resumed before the assignment, whose start offset a later pause/resume op could
        # overtake (librdkafka #2190).
        self.resume(partitions)
        self.source.incremental_assign(starts)
        self.log.info("partitions_assigned", partitions=[f"{t}/{p}@{o}" for t, p, o in starts])

    def revoked(self, partitions: list[Partition]) -> None:
        """``partitions`` are not this instance's any more (revoked or lost)."""
        # Processing is synchronous and callbacks run inside consume(): no batch is open.
        for tp in partitions:
            self.positions.pop(tp, None)
            self.audit.drop(tp)
            # Not ours any more: nothing to resume (a later assignment starts afresh).
            self.fenced.pop(tp, None)
            sink = self.sinks.pop(tp, None)
            if sink is not None:
                sink.close()
        self.source.incremental_unassign(partitions)
        self.log.info("partitions_revoked", partitions=[f"{t}/{p}" for t, p in partitions])

    def sink_for(self, topic: str, partition: int, fresh: bool = False) -> TransactionalSink:
        """The partition's producer; ``fresh``: a new one (fencing whoever held its id)."""
        key = (topic, partition)
        if fresh or key not in self.sinks:
            old = self.sinks.pop(key, None)
            if old is not None:
                old.close()
            self.sinks[key] = self.make_sink(self.transactional_id(topic, partition))
        return self.sinks[key]

    def transactional_id(self, topic: str, partition: int) -> str:
        # Under the prefix the corridor's principal may use (corridor.core.acl), one per source
        # partition: whoever owns the partition next fences this producer.
        return f"{transactional_prefix(self.corridor)}{topic}.{partition}"

    def fence(self, tp: Partition, now: float) -> None:
        """The partition's producer was fenced: drop it and pause the partition since ``now``."""
        sink = self.sinks.pop(tp, None)
        if sink is not None:
            sink.close()
        self.source.pause([tp])
        self.paused.add(tp)
        self.fenced[tp] = now

    def resume(self, partitions: list[Partition]) -> None:
        """Resume those of ``partitions`` this consumer paused (and only those)."""
        mine = [tp for tp in partitions if tp in self.paused]
        if mine:
            self.source.resume(mine)
            self.paused.difference_update(mine)

    def close(self) -> None:
        for sink in self.sinks.values():
            sink.close()
        self.sinks.clear()

    def _align(self, sources: set[str]) -> None:
        """Learn, per source topic, whether records keep their partition number (docs/DESIGN.md section 6)."""
        dests = {t: self.destinations[t] for t in sources}
        source_counts = self.retrying("origin_unavailable", "count source partitions",
                                      lambda: self.topology.source_partitions(sources))
        dest_counts = self.retrying("destination_unavailable", "count corridor partitions",
                                    lambda: self.topology.destination_partitions(
                                        set(dests.values())))
        for topic, dest in dests.items():
            aligned = dest_counts.get(dest, 0) >= source_counts.get(topic, 1 << 30)
            if self.aligned.get(topic) != aligned:
                self.log.info("partitioning", source=topic, destination=dest,
                              source_partitions=source_counts.get(topic),
                              destination_partitions=dest_counts.get(dest),
                              rule="source partition" if aligned else "murmur2 of the key")
            self.aligned[topic] = aligned

    def _check_incarnation(self, topic: str, kept: StoredOffset | None) -> None:
        """SourceRecreated when the stored position belongs to an earlier topic of this name
        (raised from the assignment callback, it ends the run before any record is read)."""
        current = self.source_ids.get(topic)
        if kept is not None and kept.topic_id and current and kept.topic_id != current:
            error = SourceRecreated(self.corridor, topic, kept.topic_id, current)
            self.log.error("source_recreated", **error.fields())
            raise error

    def _check_gap(self, topic: str, partition: int, start: int | None) -> None:
        """Records deleted by retention before they crossed: report, never skip silently."""
        low, high = self.source.watermarks(topic, partition, timeout_s=30)
        if start is not None and start > high:
            # The source was deleted and recreated (or truncated) under the corridor: its
            # offsets restart, so new records reuse lineages that already crossed.
            self.log.error("source_rewound", topic=topic, partition=partition,
                           stored_position=start, source_end=high,
                           reason="the source ends before the stored position: it was "
                                  "recreated; `corridor verify` will report the collisions")
        expected = 0 if start is None else start
        if low > expected:
            self.audit.gap((topic, partition), expected, low - 1, self.wall_ms())
            self.log.error("source_gap", topic=topic, partition=partition,
                           missing_from=expected, missing_to=low,
                           reason="records were deleted at the origin before they crossed")
