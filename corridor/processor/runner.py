"""The boundary processor: one corridor's consume -> policy -> exactly-once loop.

For each round (what one ``consume()`` returned, split per source partition),
``CorridorRunner._deliver_round`` does, in this order (the order is the
correctness argument; each source partition has its own transaction):

  Step 0. Keys (``processor.keys``): rotate when due or asked; the current
          data key must be wrapped by the destination's key provider first
          (while it is unreachable the corridor pauses; nothing crosses).
  Step 1. Run the pure pipeline: decode, classify, withhold, transform, tag,
          encode. Nothing has left the process yet.
  Step 2. Write withheld, quarantined and audit records of every partition of
          the round to the origin and wait until every one is acknowledged. They are keyed by lineage on
          compacted topics, so a replay rewrites the same keys.
  Step 3. Per partition, one destination transaction: egress schemas and
          wrapped data keys not yet published, the output records, and the
          batch's end offset in ``_corridor.offsets.<corridor>``, committed one partition
          after another (retrying a commit that timed out; aborting only when
          the error requires it).
  Step 4. On an abort, seek the consumer back to the batch's first offset, so
          the batch is processed again. On a fenced or fatal producer, pause the
          partition and wait ``FENCE_GRACE_S`` (longer than the group's session
          timeout): if this instance is a zombie (another owner fenced it), the
          group takes the partition away meanwhile and it writes nothing more.
          If it still owns the partition then, build a new producer (which
          fences any zombie), re-read the stored offset, seek, resume.

On assignment of a source partition the runner creates the partition's
transactional producer first (``init_transactions`` fences the previous owner
and settles its open transaction), then reads the stored offset back, then
seeks. The consumer never commits offsets to the origin.
"""

from __future__ import annotations

import json
import threading
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, NamedTuple

from confluent_kafka import (
    OFFSET_BEGINNING,
    Consumer,
    KafkaError,
    KafkaException,
    Message,
    TopicPartition,
)
from confluent_kafka.admin import AdminClient

from corridor.core import pipeline, topics, wire
from corridor.core.acl import consumer_group, transactional_prefix
from corridor.core.config import Config
from corridor.core.config.rotation import RotationSchedule
from corridor.core.crypto import DataKeyRing
from corridor.core.errors import CorridorError, KafkaUnavailable, SourceRecreated
from corridor.core.model import Lineage, RawMessage
from corridor.core.plan import CorridorPlan
from corridor.kafka.admin import partition_counts, topic_ids
from corridor.kafka.clients import Endpoint, admin_client, client_config
from corridor.kafka.keys_topic import ControlListener
from corridor.kafka.offsets import (
    OffsetReader,
    StoredOffset,
    encode_offset,
    offset_key,
    offset_partition,
)
from corridor.kafka.sink import (
    BatchAborted,
    OutMessage,
    SideOutput,
    SinkFenced,
    TransactionalSink,
)
from corridor.keys.provider import KekProvider
from corridor.processor.keys import KeyPublisher
from corridor.zones.credentials import Principal

Log = Any  # a structlog bound logger
# Source bytes per transaction: bounds memory and transaction size when messages are
# Arrow IPC batches (~1-8 MiB each); Avro batches stay far below it.
MAX_BATCH_BYTES = 8 * 1024 * 1024
SESSION_TIMEOUT_MS = 10000
# A fenced instance waits this long before it re-creates the producer: by then a zombie
# has missed its session and lost the partition (and so never fences the new owner back).
FENCE_GRACE_S = SESSION_TIMEOUT_MS / 1000 + 3.0
# How long a Kafka read in the rebalance path is retried before the processor gives up.
RETRY_FOR_S = 600.0


class Prepared(NamedTuple):
    """One chunk of one source partition, ready for its destination transaction."""

    tp: tuple[str, int]
    raws: list[RawMessage]
    result: pipeline.BatchResult
    side: list[OutMessage]
    out: list[OutMessage]
    keys: set[bytes | None]
    sink: TransactionalSink


def _chunks(raws: list[RawMessage]) -> list[list[RawMessage]]:
    """Split one partition's messages into runs of about MAX_BATCH_BYTES of values."""
    chunks, start, size = [], 0, 0
    for i, raw in enumerate(raws):
        size += len(raw.value or b"")
        if size >= MAX_BATCH_BYTES or i == len(raws) - 1:
            chunks.append(raws[start : i + 1])
            start, size = i + 1, 0
    return chunks


@dataclass
class Stats:
    """Running totals of one corridor, for progress output and the demo."""

    consumed: int = 0
    delivered: int = 0
    withheld: int = 0
    quarantined: int = 0
    batches: int = 0
    aborted: int = 0
    lag: int = -1  # unprocessed records on owned partitions when last idle; -1 unknown
    started: float = field(default_factory=time.monotonic)
    first_batch: float = 0.0  # when the first batch of this run was consumed
    last_delivery: float = 0.0

    def records_per_s(self) -> float:
        """Records consumed per second, first batch to last commit."""
        span = self.last_delivery - self.first_batch
        return self.consumed / span if self.consumed and span > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        skip = ("started", "first_batch", "last_delivery", "lag")
        return {k: v for k, v in self.__dict__.items() if k not in skip}


class CorridorRunner:
    """Runs one corridor until ``stop`` is set. One instance per process per corridor.

    More instances of the same corridor (in other processes or machines) share
    the source partitions through the consumer group ``corridor.<name>``.
    """

    def __init__(self, config: Config, plan: CorridorPlan, endpoints: dict[str, Endpoint],
                 principal: Principal, log: Log, instance: str = "0",
                 data_keys: DataKeyRing | None = None, kek_provider: KekProvider | None = None,
                 rotation: RotationSchedule | None = None) -> None:
        self.config = config
        self.plan = plan
        self.corridor = plan.corridor
        self.origin = endpoints[self.corridor.origin]
        self.destination = endpoints[self.corridor.destination]
        self.principal = principal
        self.log = log.bind(corridor=self.corridor.name, instance=instance)
        self.stats = Stats()
        self.sinks: dict[tuple[str, int], TransactionalSink] = {}
        self.published: set[bytes] = set()
        # Next source offset to process per owned partition (what was committed last).
        self.positions: dict[tuple[str, int], int] = {}
        # Owned partitions whose producer was fenced: paused since (monotonic seconds).
        self.fenced: dict[tuple[str, int], float] = {}
        # Partitions this consumer paused and has not resumed. librdkafka keeps a pause
        # across revoke and re-assignment, so a partition that comes back must be resumed.
        self.paused: set[tuple[str, int]] = set()
        # Source topic ids (stored with every position: see _check_incarnation).
        self.source_ids: dict[str, str] = {}
        # Per source topic: does its destination topic have at least as many partitions?
        # Then a record keeps its partition number, else murmur2 of its outgoing key decides.
        self.aligned: dict[str, bool] = {}
        self._admin: AdminClient | None = None
        self._dest_admin: AdminClient | None = None
        self._state: dict[str, str] = {}
        self.data_keys = data_keys
        self._stop = threading.Event()
        # Data keys: drawn, rotated and wrapped by the publisher, which pauses the corridor
        # while the key provider is unreachable (fail closed). Wrapping happens in run().
        self.keys: KeyPublisher | None = None
        if data_keys is not None and kek_provider is not None and plan.cipher is not None:
            self.keys = KeyPublisher(
                self.corridor.name, self.corridor.destination, data_keys, kek_provider,
                rotation or RotationSchedule(), self._notify, self.log,
                lambda: ControlListener(self.destination, principal, self.corridor.name))
        self.reader = OffsetReader(self.destination, principal, self.corridor.name)
        self.offset_partitions = self.reader.partitions()
        self.side = SideOutput(self.origin, principal, self._notify)
        self.consumer = self._consumer()

    # -- Kafka plumbing ----------------------------------------------------------

    def _consumer(self) -> Consumer:
        batch = self.corridor.batch
        consumer = Consumer(client_config(self.origin, self.principal, {
            "group.id": consumer_group(self.corridor.name),
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
            "fetch.wait.max.ms": max(10, min(500, batch.max_wait_ms)),
            "log_level": 3,
        }))
        consumer.subscribe(list(self.plan.source_topics()), on_assign=self._on_assign,
                           on_revoke=self._on_revoke, on_lost=self._on_revoke)
        return consumer

    def _notify(self, event: str, fields: dict[str, Any]) -> None:
        """Log a state change once: repeated identical states are not logged again."""
        key = fields.get("step", "")
        if self._state.get(key) == event:
            return
        self._state[key] = event
        level = "warning" if "unavailable" in event else "info"
        getattr(self.log, level)(event, **fields)

    def _transactional_id(self, topic: str, partition: int) -> str:
        # Under the prefix the corridor's principal may use (corridor.core.acl), one per source
        # partition: whoever owns the partition next fences this producer.
        return f"{transactional_prefix(self.corridor.name)}{topic}.{partition}"

    def _on_assign(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Step A: producers first: init_transactions fences the previous owner.
        for tp in partitions:
            self.fenced.pop((tp.topic, tp.partition), None)
            self._sink_for(tp.topic, tp.partition, fresh=True)
        # Step B: then read the committed positions back, and seek there. An exception
        # escaping this callback would end the processor: transient faults are waited out.
        assigned = {tp.topic for tp in partitions}
        self.source_ids.update(self._retrying(
            "origin_unavailable", "describe sources",
            lambda: topic_ids(self._origin_admin(), assigned)))
        self._align(assigned)
        stored = self._retrying("destination_unavailable", "read stored offsets",
                                lambda: self.reader.read_stored(
                                    [(tp.topic, tp.partition) for tp in partitions],
                                    self.offset_partitions))
        starts = []
        for tp in partitions:
            kept = stored.get((tp.topic, tp.partition))
            self._check_incarnation(tp.topic, kept)
            start = None if kept is None else kept.next
            self._retrying("origin_unavailable", "check for a gap",
                           lambda tp=tp, start=start: self._check_gap(tp, start))
            starts.append(TopicPartition(tp.topic, tp.partition,
                                         OFFSET_BEGINNING if start is None else start))
            self.positions[(tp.topic, tp.partition)] = start or 0
        # Resumed before the assignment, whose start offset a later pause/resume op could
        # overtake (librdkafka #2190).
        self._resume([(tp.topic, tp.partition) for tp in partitions])
        consumer.incremental_assign(starts)
        self.log.info("partitions_assigned",
                      partitions=[f"{t.topic}/{t.partition}@{t.offset}" for t in starts])

    def _on_revoke(self, consumer: Consumer, partitions: list[TopicPartition]) -> None:
        # Processing is synchronous and callbacks run inside consume(): no batch is open.
        for tp in partitions:
            self.positions.pop((tp.topic, tp.partition), None)
            # Not ours any more: nothing to resume (a later assignment starts afresh).
            self.fenced.pop((tp.topic, tp.partition), None)
            sink = self.sinks.pop((tp.topic, tp.partition), None)
            if sink is not None:
                sink.close()
        consumer.incremental_unassign(partitions)
        self.log.info("partitions_revoked",
                      partitions=[f"{t.topic}/{t.partition}" for t in partitions])

    def _sink_for(self, topic: str, partition: int, fresh: bool = False) -> TransactionalSink:
        key = (topic, partition)
        if fresh or key not in self.sinks:
            old = self.sinks.pop(key, None)
            if old is not None:
                old.close()
            self.sinks[key] = TransactionalSink(self.destination, self.principal,
                                                self._transactional_id(topic, partition),
                                                self._notify)
        return self.sinks[key]

    def _retrying(self, event: str, step: str, fn: Callable[[], Any]) -> Any:
        """``fn()``, retried with backoff while it fails with a Kafka error that may pass (a
        reset connection, a broker restarting). Raises at once when stopping, on an
        authorization error, or after ``RETRY_FOR_S``."""
        deadline, pause = time.monotonic() + RETRY_FOR_S, 0.5
        while True:
            try:
                return fn()
            except (KafkaException, KafkaUnavailable) as exc:
                if (self._stop.is_set() or time.monotonic() > deadline
                        or "authorization" in str(exc).lower()):  # a refusal will not pass
                    raise
                self._notify(event, {"step": step, "error": str(exc), "retry_in_s": pause})
                self._stop.wait(pause)
                pause = min(pause * 2, 5.0)

    def _align(self, sources: set[str]) -> None:
        """Learn, per source topic, whether records keep their partition number (DESIGN 6)."""
        dests = {t: self.plan.dataset_for_topic(t).destination_topic for t in sources}
        source_counts = self._retrying("origin_unavailable", "count source partitions",
                                       lambda: partition_counts(self._origin_admin(), sources))
        dest_counts = self._retrying("destination_unavailable", "count corridor partitions",
                                     lambda: partition_counts(self._destination_admin(),
                                                              set(dests.values())))
        for topic, dest in dests.items():
            aligned = dest_counts.get(dest, 0) >= source_counts.get(topic, 1 << 30)
            if self.aligned.get(topic) != aligned:
                self.log.info("partitioning", source=topic, destination=dest,
                              source_partitions=source_counts.get(topic),
                              destination_partitions=dest_counts.get(dest),
                              rule="source partition" if aligned else "murmur2 of the key")
            self.aligned[topic] = aligned

    def _destination_admin(self) -> AdminClient:
        if self._dest_admin is None:
            self._dest_admin = admin_client(self.destination, self.principal)
        return self._dest_admin

    def _origin_admin(self) -> AdminClient:
        # Kept for the runner's life: an AdminClient collected early leaves futures hanging.
        if self._admin is None:
            self._admin = admin_client(self.origin, self.principal)
        return self._admin

    def _check_incarnation(self, topic: str, kept: StoredOffset | None) -> None:
        """SourceRecreated when the stored position belongs to an earlier topic of this name
        (raised from the assignment callback, it ends the run before any record is read)."""
        current = self.source_ids.get(topic)
        if kept is not None and kept.topic_id and current and kept.topic_id != current:
            error = SourceRecreated(self.corridor.name, topic, kept.topic_id, current)
            self.log.error("source_recreated", **error.fields())
            raise error

    def _lag(self) -> int:
        """``lag(self)``, or -1 (unknown: never "caught up") while the origin cannot say."""
        try:
            return lag(self)
        except KafkaUnavailable as exc:
            self._notify("origin_unavailable", {"step": "lag", "error": str(exc)})
            return -1

    def _check_gap(self, tp: TopicPartition, start: int | None) -> None:
        """Records deleted by retention before they crossed: report, never skip silently."""
        low, high = self.consumer.get_watermark_offsets(tp, timeout=30, cached=False)
        if start is not None and start > high:
            # The source was deleted and recreated (or truncated) under the corridor: its
            # offsets restart, so new records reuse lineages that already crossed.
            self.log.error("source_rewound", topic=tp.topic, partition=tp.partition,
                           stored_position=start, source_end=high,
                           reason="the source ends before the stored position: it was "
                                  "recreated; `corridor verify` will report the collisions")
        expected = 0 if start is None else start
        if low > expected:
            event = {"event": "gap", "corridor": self.corridor.name, "topic": tp.topic,
                     "partition": tp.partition, "from": expected, "to": low,
                     "ts_ms": int(time.time() * 1000)}
            key = f"{self.corridor.name}|{tp.topic}|{tp.partition}|gap|{expected}"
            self.side.write([OutMessage(self.plan.audit_topic, json.dumps(event).encode(),
                                        key.encode())])
            self.log.error("source_gap", topic=tp.topic, partition=tp.partition,
                           missing_from=expected, missing_to=low,
                           reason="records were deleted at the origin before they crossed")

    # -- the loop ------------------------------------------------------------------

    def run(self, stop: threading.Event, on_batch: Callable[[Stats], None] | None = None) -> None:
        self.log.info("corridor_started", sources=self.plan.source_topics(),
                      destination=self.destination.bootstrap, policy=self.corridor.policy_id)
        batch = self.corridor.batch
        self._stop = stop
        try:
            while not stop.is_set():
                if not self._keys_ready():
                    break
                messages = self.consumer.consume(batch.max_records, batch.max_wait_ms / 1000)
                groups = self._group(messages)
                if groups and not self.stats.first_batch:
                    self.stats.first_batch = time.monotonic()
                if not messages:
                    self.stats.lag = self._lag()
                if groups:
                    self._deliver_round(groups)
                self._resume_fenced()
                if groups and on_batch is not None:
                    on_batch(self.stats)
        finally:
            self.close()

    def _deliver_round(self, groups: dict[tuple[str, int], list[RawMessage]]) -> None:
        """Deliver what one consume() returned: per source partition one transaction per
        chunk of about MAX_BATCH_BYTES of source values (an Arrow IPC message holds
        thousands of records). The side output of the whole round is written (and
        acknowledged) once, before the partitions' transactions. A partition whose chunk
        did not commit drops its later chunks (it seeked back: they are read again)."""
        pending = {tp: _chunks(raws) for tp, raws in groups.items() if tp not in self.fenced}
        while pending:
            prepared = []
            for tp, chunks in pending.items():
                # Step 0 before each chunk, so "rotate every N records" holds per chunk.
                if not self._keys_ready():
                    return  # stopping: nothing more is processed; stored offsets bring it back
                prepared.append(self._prepare(tp, chunks.pop(0)))
            # Step 2: side output to the origin, acknowledged before any destination commit.
            self.side.write([m for p in prepared for m in p.side])
            # Step 3: the destination transactions.
            errors = self._commit_all(prepared)
            for p, error in zip(prepared, errors, strict=True):
                if not self._settle(p, error):
                    pending.pop(p.tp)
            pending = {tp: chunks for tp, chunks in pending.items() if chunks}

    def _group(self, messages: list[Message]) -> dict[tuple[str, int], list[RawMessage]]:
        groups: dict[tuple[str, int], list[RawMessage]] = defaultdict(list)
        headers = bool(self.plan.allowed_headers)  # else park headers are never read
        for msg in messages:
            err = msg.error()
            if err is not None:
                if err.code() != KafkaError._PARTITION_EOF:
                    self._notify("source_error", {"step": "consume", "error": err.str()})
                continue
            topic, partition, offset = msg.topic(), msg.partition(), msg.offset()
            ts_type, ts = msg.timestamp()
            groups[(topic, partition)].append(RawMessage(
                Lineage(topic, partition, offset), msg.value(), msg.key(),
                ts if ts_type else None, tuple(msg.headers() or ()) if headers else None))
        return groups

    def _keys_ready(self) -> bool:
        """Rotate if due and make sure the current key is wrapped; False when stopping first."""
        if self.keys is None:
            return True
        if not self.keys.prepare(self._stop):
            return False
        if self.plan.cipher is not self.keys.cipher:
            self.plan = self.plan.with_cipher(self.keys.cipher)
        return True

    def _prepare(self, tp: tuple[str, int], raws: list[RawMessage]) -> Prepared:
        """Step 1: the pure pipeline; and the messages of steps 2 and 3 for one chunk."""
        topic, partition = tp
        dataset_plan = self.plan.dataset_for_topic(topic)
        result = pipeline.process(raws, self.plan, dataset_plan, int(time.time() * 1000))
        if self.keys is not None:
            self.keys.counted(len(raws))  # encrypted under the current key, committed or not
        first, last = raws[0].lineage.offset, raws[-1].lineage.offset
        side = self._side_messages(result, topic, partition, first, last)
        out = self._catalog_messages(result)
        keys = {m.key for m in out if m.topic == topics.KEYS}
        # The source's partition number when the destination has as many, else murmur2.
        part = partition if self.aligned.get(topic, False) else None
        out += [OutMessage(dataset_plan.destination_topic, d.value, d.key, d.headers, part,
                           d.timestamp) for d in result.delivered]
        key = offset_key(self.corridor.name, topic, partition)
        out.append(OutMessage(self.reader.topic, encode_offset(last + 1, f"{first}-{last}",
                                                            self.source_ids.get(topic)), key,
                              partition=offset_partition(key, self.offset_partitions)))
        return Prepared(tp, raws, result, side, out, keys, self._sink_for(topic, partition))

    def _commit_all(self, prepared: list[Prepared]) -> list[CorridorError | None]:
        """Step 3 for every prepared chunk, one after another; the error of each (None
        when it committed). Concurrent commits were measured faster (avro p99 768 -> 523
        ms) but a SIGCONTed zombie then hung in them in 2 of 3 runs: sequential until
        that is understood."""
        errors: list[CorridorError | None] = []
        for p in prepared:
            try:
                p.sink.write(p.out)
                errors.append(None)
            except (BatchAborted, SinkFenced) as exc:
                errors.append(exc)
        return errors

    def _settle(self, p: Prepared, error: CorridorError | None) -> bool:
        """Step 4: account a committed chunk, or recover from a failed one. True if committed."""
        (topic, partition), first = p.tp, p.raws[0].lineage.offset
        if isinstance(error, BatchAborted):
            # Step 4a: nothing of the batch is visible; process it again.
            self.stats.aborted += 1
            self.log.warning("batch_aborted", topic=topic, partition=partition, first=first,
                             reason=str(error))
            self.consumer.seek(TopicPartition(topic, partition, first))
            return False
        if error is not None:
            # Step 4b: pause; maybe we are the zombie (see _resume_fenced).
            self.log.warning("producer_fenced", topic=topic, partition=partition,
                             reason=str(error),
                             action=f"partition paused for {FENCE_GRACE_S:.0f}s")
            sink = self.sinks.pop((topic, partition), None)
            if sink is not None:
                sink.close()
            self.consumer.pause([TopicPartition(topic, partition)])
            self.paused.add((topic, partition))
            self.fenced[(topic, partition)] = time.monotonic()
            return False
        self.published.update(s.fingerprint for s in p.result.egress_schemas_used)
        self.positions[p.tp] = p.raws[-1].lineage.offset + 1
        if self.keys is not None:
            self.keys.committed(p.keys)
        self._count(p.result, p.result.inputs)  # records: an Arrow message holds many
        return True

    def _resume_fenced(self) -> None:
        """Step 4b, after the grace: still the owner, so a new producer (fencing any
        zombie), then trust only the stored offset."""
        now = time.monotonic()
        for (topic, partition), since in list(self.fenced.items()):
            if now - since < FENCE_GRACE_S:
                continue
            del self.fenced[(topic, partition)]
            self._sink_for(topic, partition, fresh=True)
            stored = self._retrying("destination_unavailable", "read stored offsets",
                                    lambda t=topic, p=partition: self.reader.read(
                                        [(t, p)], self.offset_partitions))
            tp = TopicPartition(topic, partition, stored.get((topic, partition), OFFSET_BEGINNING))
            self._resume([(topic, partition)])
            self.consumer.seek(tp)
            self.log.warning("producer_replaced", topic=topic, partition=partition,
                             resume_at=tp.offset)

    def _resume(self, partitions: list[tuple[str, int]]) -> None:
        """Resume those of ``partitions`` this consumer paused (and only those)."""
        mine = [tp for tp in partitions if tp in self.paused]
        if mine:
            self.consumer.resume([TopicPartition(t, p) for t, p in mine])
            self.paused.difference_update(mine)

    def _side_messages(self, result: pipeline.BatchResult, topic: str, partition: int,
                       first: int, last: int) -> list[OutMessage]:
        side: list[OutMessage] = []
        for target, records in ((self.plan.withheld_topic, result.withheld),
                                (self.plan.quarantine_topic, result.quarantined)):
            side += [OutMessage(target, r.value, str(r.lineage).encode(),
                                [(wire.REASON, r.reason.encode())]) for r in records]
        counts = result.counts()
        audit = {"corridor": self.corridor.name, "topic": topic, "partition": partition,
                 "first": first, "last": last, **counts, "policy": self.corridor.policy_id,
                 "ts_ms": int(time.time() * 1000)}
        key = f"{self.corridor.name}|{topic}|{partition}|{first}-{last}"
        side.append(OutMessage(self.plan.audit_topic, json.dumps(audit).encode(), key.encode()))
        return side

    def _catalog_messages(self, result: pipeline.BatchResult) -> list[OutMessage]:
        """Egress schemas and wrapped keys, before the first record that needs them."""
        out = [OutMessage(topics.SCHEMAS, json.dumps(s.raw).encode(), s.fingerprint.hex().encode())
               for s in result.egress_schemas_used if s.fingerprint not in self.published]
        if self.keys is not None:
            out += [OutMessage(topics.KEYS, wrapped, key_id.encode())
                    for key_id, wrapped in self.keys.pending.items()]
        return out

    def _count(self, result: pipeline.BatchResult, consumed: int) -> None:
        counts = result.counts()
        self.stats.consumed += consumed
        self.stats.delivered += counts["delivered"]
        self.stats.withheld += counts["withheld"]
        self.stats.quarantined += counts["quarantined"]
        self.stats.batches += 1
        self.stats.last_delivery = time.monotonic()

    def close(self) -> None:
        try:  # noqa: SIM105
            self.consumer.close()
        except RuntimeError:
            pass  # already closed
        for sink in self.sinks.values():
            sink.close()
        self.sinks.clear()
        self.side.close()
        if self.keys is not None:
            self.keys.close()
        self.log.info("corridor_stopped", **self.stats.as_dict())


def lag(runner: CorridorRunner) -> int:
    """Source offsets not yet committed on the partitions this runner owns; -1 if it owns none.

    Counted from the committed positions the runner tracks, or the consumer's
    fetch position when that is further (it has moved past transaction markers
    of a transactional source); the fetch position alone is unset on a
    partition that had nothing to fetch.
    """
    if not runner.positions:
        return -1
    fetched = {(tp.topic, tp.partition): tp.offset for tp in runner.consumer.position(
        [TopicPartition(t, p) for t, p in runner.positions])}
    total = 0
    for (topic, partition), tracked in list(runner.positions.items()):
        position = max(tracked, fetched.get((topic, partition), -1))
        try:
            _, high = runner.consumer.get_watermark_offsets(
                TopicPartition(topic, partition), timeout=10, cached=False)
        except KafkaException as exc:
            raise KafkaUnavailable(f"watermarks of {topic}/{partition}: {exc}") from None
        total += max(0, high - position)
    return total
