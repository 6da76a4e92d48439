"""The boundary processor: one corridor's consume -> policy -> exactly-once loop.

For each round (what one ``consume()`` returned, split per source partition),
``CorridorRunner._deliver_round`` does, in this order (the order is the
correctness argument; each source partition has its own transaction):

  Step 0. Keys (``processor.keys``): rotate when due or asked; the current
          data key must be wrapped by the destination's key provider first
          (while it is unreachable the corridor pauses; nothing crosses).
  Step 1. Writer schemas of the chunk's Confluent-framed records from the ORIGIN
          zone's registry (fetched once per id; while the registry does not answer the
          chunk waits, never quarantined). Then the pure pipeline: decode, classify,
          withhold, transform, tag, encode; erasable fields ask ``processor.subject_keys``
          once for the chunk's subject keys (found, unwrapped, or drawn and wrapped; it
          waits while the key provider does not answer). Nothing has left the process yet.
          A corridor whose datasets name their subject waits first for a fresh consent view
          and decides with its ledger and consent view (``processor.subjects``: paused,
          nothing crosses, while the view is stale). Then the chunk's audit events are
          drafted from its chain's head (``processor.audit``): nothing of them is visible yet.
  Step 2. Write the withheld and quarantined records of every partition of the round,
          the round's ledger entries (keyed by entry; counted once acknowledged), and the
          audit events (and signed checkpoints) of the chunks committed before, to the
          origin and wait until every one is acknowledged. Side records are keyed by
          lineage on compacted topics, so a replay rewrites the same keys; an audit event
          written twice is a byte-identical replay.
  Step 3. Per partition, one destination transaction: egress schemas and
          wrapped data keys (and that partition's subject keys) not yet published, the
          output records, the destination's copy of a checkpoint when one is due, and the
          batch's end offset in ``_corridor.offsets.<corridor>`` with its audit events,
          committed one partition after another (retrying a commit that timed out; aborting
          only when the error requires it). Once committed, the chain's head moves to the
          chunk's last event.
  Step 4. On an abort, seek the consumer back to the batch's first offset, so
          the batch is processed again. On a fenced or fatal producer, pause the
          partition and wait ``FENCE_GRACE_S`` (longer than the group's session
          timeout): if this instance is a zombie (another owner fenced it), the
          group takes the partition away meanwhile and it writes nothing more.
          If it still owns the partition then, build a new producer (which
          fences any zombie), re-read the stored offset (and continue the audit
          chain from the events stored with it), seek, resume.

On a clean stop, the head of every chain not yet signed is signed (its destination copy
in a transaction of its own) and the waiting audit records are written to the origin.
Every transfer-instrument state change (expiring, expired) is logged once.

With ``wire: confluent`` the egress schemas are registered in the DESTINATION zone's
registry under ``<corridor topic>-value`` when the runner starts, before any record
that names their ids (waiting while the registry does not answer).

On assignment of a source partition the runner creates the partition's
transactional producer first (``init_transactions`` fences the previous owner
and settles its open transaction), then reads the stored offset back, then
seeks (``processor.rebalance``). The consumer never commits offsets to the origin.

The records of steps 2 and 3 are values built by ``core.outbox``; Kafka is
reached only through ``kafka.source`` (the origin consumer), ``kafka.sink``
and ``kafka.offsets``, each injectable, so every step runs without a broker.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple, TypeVar

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corridor.core import pipeline
from corridor.core.acl import consumer_group
from corridor.core.codec.dialects import confluent_ids
from corridor.core.config import AuditSettings, Config
from corridor.core.config.rotation import RotationSchedule
from corridor.core.crypto import DataKeyRing
from corridor.core.errors import CorridorError, KafkaUnavailable
from corridor.core.model import OutMessage, RawMessage
from corridor.core.outbox import Outbox
from corridor.core.plan import CorridorPlan
from corridor.core.schema import AvroSchema
from corridor.core.wire import registry_subject
from corridor.kafka.clients import Endpoint
from corridor.kafka.keys_topic import ControlListener
from corridor.kafka.offsets import OffsetReader
from corridor.kafka.sink import BatchAborted, SideOutput, SinkFenced, TransactionalSink
from corridor.kafka.source import BEGINNING, SESSION_TIMEOUT_MS, Partition, Source
from corridor.keys.provider import KekProvider
from corridor.processor import retry
from corridor.processor.audit import AuditTrail, Draft, InstrumentWatch
from corridor.processor.keys import KeyPublisher
from corridor.processor.metrics import RunObserver
from corridor.processor.rebalance import Assignment, MakeSink, Topology
from corridor.processor.stats import Stats
from corridor.processor.subject_keys import Notify, SubjectKeyKeeper
from corridor.processor.subject_keys import Stopped as SubjectKeysStopped
from corridor.processor.subjects import NoSubjects, SubjectGate
from corridor.registry import SchemaRegistry
from corridor.registry.waiting import Stopped, until_available
from corridor.zones.credentials import Principal

T = TypeVar("T")
Log = Any  # a structlog bound logger
# Source bytes per transaction: bounds memory and transaction size when messages are
# Arrow IPC batches (~1-8 MiB each); Avro batches stay far below it.
MAX_BATCH_BYTES = 8 * 1024 * 1024
# A fenced instance waits this long before it re-creates the producer: by then a zombie
# has missed its session and lost the partition (and so never fences the new owner back).
FENCE_GRACE_S = SESSION_TIMEOUT_MS / 1000 + 3.0


def _wall_ms() -> int:
    return int(time.time() * 1000)


class Prepared(NamedTuple):
    """One chunk of one source partition, ready for its destination transaction."""

    tp: Partition
    raws: list[RawMessage]
    result: pipeline.BatchResult
    side: list[OutMessage]
    out: list[OutMessage]
    keys: set[bytes | None]
    sink: TransactionalSink
    draft: Draft


def _chunks(raws: list[RawMessage]) -> list[list[RawMessage]]:
    """Split one partition's messages into runs of about MAX_BATCH_BYTES of values."""
    chunks, start, size = [], 0, 0
    for i, raw in enumerate(raws):
        size += len(raw.value or b"")
        if size >= MAX_BATCH_BYTES or i == len(raws) - 1:
            chunks.append(raws[start : i + 1])
            start, size = i + 1, 0
    return chunks


class CorridorRunner:
    """Runs one corridor until ``stop`` is set. One instance per process per corridor.

    More instances of the same corridor (in other processes or machines) share
    the source partitions through the consumer group ``corridor.<name>``.

    The keyword-only arguments replace what reaches Kafka (tests pass fakes): the
    origin consumer, a factory of destination producers by transactional id, the
    side output, the stored-offset reader, the clusters' topology; ``clock`` is
    monotonic seconds (fence grace, retries, stats), ``wall_ms`` the record time.
    ``config`` is accepted for the callers' sake and not used. ``registry``: the ORIGIN
    zone's schema registry (None: it has none; Confluent-framed records are then
    quarantined as of an unknown schema id, JSON still decodes); ``egress_registry``: the
    DESTINATION zone's, needed by ``wire: confluent``. ``signer``: the origin zone's audit
    signing key (None: checkpoints are not signed); ``audit``: the file's ``audit:`` settings.
    ``subject_keys`` makes the keeper of the per-subject keys of erasable fields
    (``processor.subject_keys``; needed when the corridor has any) from the runner's notify
    and log. ``subjects``: the corridor's ledger and consent view (None: its datasets name
    no subject).
    """

    def __init__(self, config: Config, plan: CorridorPlan, endpoints: dict[str, Endpoint],
                 principal: Principal, log: Log, instance: str = "0",
                 data_keys: DataKeyRing | None = None, kek_provider: KekProvider | None = None,
                 rotation: RotationSchedule | None = None, *, source: Source | None = None,
                 make_sink: MakeSink | None = None, side: SideOutput | None = None,
                 reader: OffsetReader | None = None, topology: Topology | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 wall_ms: Callable[[], int] = _wall_ms,
                 observer: RunObserver | None = None,
                 registry: SchemaRegistry | None = None,
                 egress_registry: SchemaRegistry | None = None,
                 signer: Ed25519PrivateKey | None = None,
                 audit: AuditSettings | None = None,
                 subject_keys: Callable[[Notify, Log], SubjectKeyKeeper] | None = None,
                 subjects: SubjectGate | None = None) -> None:
        self.plan = plan
        self.subjects = subjects or NoSubjects()
        self.registry, self.egress_registry = registry, egress_registry
        if plan.confluent and egress_registry is None:
            raise CorridorError(f"corridor {plan.name}: wire: confluent needs a schema "
                                f"registry in zone {plan.destination} (schema_registry:)")
        self.corridor = plan.corridor
        self.origin = endpoints[self.corridor.origin]
        self.destination = endpoints[self.corridor.destination]
        self.principal = principal
        self.log = log.bind(corridor=self.corridor.name, instance=instance)
        self.clock, self.wall_ms = clock, wall_ms
        self.stats = Stats()
        # Metrics and health (a no-op observer keeps only the health values).
        self.observer = observer or RunObserver(self.corridor.name, self.corridor.destination)
        self.published: set[bytes] = set()
        self._state: dict[str, str] = {}
        self._stop = threading.Event()
        # Data keys: drawn, rotated and wrapped by the publisher, which pauses the corridor
        # while the key provider is unreachable (fail closed). Wrapping happens in run().
        self.keys: KeyPublisher | None = None
        if data_keys is not None and kek_provider is not None and plan.cipher is not None:
            self.keys = KeyPublisher(
                self.corridor.name, self.corridor.destination, data_keys, kek_provider,
                rotation or RotationSchedule(), self._notify, self.log,
                lambda: ControlListener(self.destination, principal, self.corridor.name),
                wait=self._wait_turning)
        self.subject_keys = subject_keys(self._notify, self.log) if subject_keys else None
        self.reader = reader or OffsetReader(self.destination, principal, self.corridor.name)
        self.offset_partitions = self.reader.partitions()
        self.outbox = Outbox.for_plan(plan, self.offset_partitions)
        self.audit = AuditTrail(plan, self.outbox, signer, audit, clock)
        self.instrument = InstrumentWatch(plan, self.log)
        self.side = side or SideOutput(self.origin, principal, self._notify)
        self.source = source or Source(
            self.origin, principal, consumer_group(self.corridor.name),
            max_wait_ms=self.corridor.batch.max_wait_ms, headers=bool(plan.allowed_headers),
            notify=self._notify)
        self.assignment = Assignment(
            self.corridor.name,
            {d.source_topic: d.destination_topic for d in plan.datasets.values()},
            source=self.source, reader=self.reader, offset_partitions=self.offset_partitions,
            topology=topology or Topology(self.origin, self.destination, principal),
            make_sink=make_sink or self._new_sink, audit=self.audit,
            retrying=self._retrying, log=self.log, wall_ms=wall_ms)
        self.source.subscribe(plan.source_topics(), on_assign=self.assignment.assigned,
                              on_revoke=self.assignment.revoked)

    @property
    def positions(self) -> dict[Partition, int]:
        """Next source offset to process per owned partition (what was committed last)."""
        return self.assignment.positions

    # -- Kafka plumbing ----------------------------------------------------------

    def _new_sink(self, transactional_id: str) -> TransactionalSink:
        return TransactionalSink(self.destination, self.principal, transactional_id,
                                 self._notify)

    def _wait_turning(self, stop: threading.Event, seconds: float) -> bool:
        """Wait inside a turn (the KMS outage loop) while telling health the loop is alive."""
        self.observer.turned()
        return stop.wait(seconds)

    def _notify(self, event: str, fields: dict[str, Any]) -> None:
        """Log a state change once: repeated identical states are not logged again."""
        key = fields.get("step", "")
        if self._state.get(key) == event:
            return
        self._state[key] = event
        self.observer.event(event, fields)
        level = "warning" if "unavailable" in event else "info"
        getattr(self.log, level)(event, **fields)

    def _retrying(self, event: str, step: str, fn: Callable[[], T]) -> T:
        """``fn()`` with transient Kafka failures waited out until stopping (``retry``)."""
        return retry.retrying(fn, event=event, step=step, notify=self._notify, stop=self._stop,
                              clock=self.clock)

    def _lag(self) -> int:
        """``lag(self)``, or -1 (unknown: never "caught up") while the origin cannot say."""
        try:
            if not self.positions:
                return -1
            lags = self.source.lags(self.positions)
            self.observer.lags(lags)
            return sum(lags.values())
        except KafkaUnavailable as exc:
            self._notify("origin_unavailable", {"step": "lag", "error": str(exc)})
            return -1

    # -- the loop ------------------------------------------------------------------

    def run(self, stop: threading.Event, on_batch: Callable[[Stats], None] | None = None) -> None:
        self.log.info("corridor_started", sources=self.plan.source_topics(),
                      destination=self.destination.bootstrap, policy=self.corridor.policy_id)
        batch = self.corridor.batch
        self._stop = stop
        self.observer.started(self.corridor.policy_id, self.corridor.origin,
                              self.keys is not None)
        self.observer.instrument(self.plan.instrument, self.plan.instrument_expiry_ms)
        clean = False
        try:
            if not self._egress_registered():
                return
            while not stop.is_set():
                self.observer.turned(len(self.positions))
                self.instrument.check(self.wall_ms())
                self.subjects.refresh(self._stop)  # consent view fresh while idle too
                if not self._keys_ready():
                    break
                groups, empty = self.source.consume(batch.max_records, batch.max_wait_ms / 1000)
                if groups and not self.stats.first_batch:
                    self.stats.first_batch = self.clock()
                if empty:
                    self.stats.lag = self._lag()
                    self._flush_audit()
                if groups:
                    self._deliver_round(groups)
                self._resume_fenced()
                if groups and on_batch is not None:
                    on_batch(self.stats)
            clean = True
        finally:
            if clean:
                self._close_audit()
            self.close()

    def _deliver_round(self, groups: dict[Partition, list[RawMessage]]) -> None:
        """Deliver what one consume() returned: per source partition one transaction per
        chunk of about MAX_BATCH_BYTES of source values (an Arrow IPC message holds
        thousands of records). The side output of the whole round is written (and
        acknowledged) once, before the partitions' transactions. A partition whose chunk
        did not commit drops its later chunks (it seeked back: they are read again)."""
        fenced = self.assignment.fenced
        # Only partitions this instance owns (assigned, not revoked) and whose producer works.
        pending = {tp: _chunks(raws) for tp, raws in groups.items()
                   if tp not in fenced and tp in self.positions}
        if self.subject_keys is not None:  # a new producer: the book is read again
            self.subject_keys.owned({f"{t}/{p}": sink for (t, p), sink
                                     in self.assignment.sinks.items()}, self._stop)
        while pending:
            prepared = []
            for tp, chunks in pending.items():
                # Step 0 before each chunk, so "rotate every N records" holds per chunk.
                if not self._keys_ready():
                    return  # stopping: nothing more is processed; stored offsets bring it back
                ready = self._prepare(tp, chunks.pop(0))
                if ready is None:
                    return  # stopping while a registry did not answer: as above
                prepared.append(ready)
            # Step 2: side output to the origin, acknowledged before any destination commit:
            # the audit records of the chunks committed before, then this round's side
            # records and ledger entries.
            results = [p.result for p in prepared]
            self.side.write(self.audit.take() + [m for p in prepared for m in p.side]
                            + self.subjects.records(results))
            self.subjects.acknowledged(results)
            # Step 3: the destination transactions.
            errors = self._commit_all(prepared)
            for p, error in zip(prepared, errors, strict=True):
                if not self._settle(p, error):
                    pending.pop(p.tp)
            pending = {tp: chunks for tp, chunks in pending.items() if chunks}

    def _egress_registered(self) -> bool:
        """``wire: confluent``: every egress schema registered in the destination's registry
        (once per runner, so once per egress schema); False when stopping first. A refusal
        (e.g. 409 incompatible with the subject's earlier versions) is the operator's:
        it raises."""
        if not self.plan.confluent or all(d.egress_id is not None
                                          for d in self.plan.datasets.values()):
            return True
        assert self.egress_registry is not None
        registry, ids = self.egress_registry, {}
        try:
            for name, dp in self.plan.datasets.items():
                subject = registry_subject(dp.destination_topic)
                ids[name] = until_available(
                    lambda s=subject, e=dp.egress: registry.register(s, e),
                    zone=self.corridor.destination, notify=self._notify, stop=self._stop)
                self.log.info("egress_schema_registered", subject=subject, id=ids[name],
                              fingerprint=dp.egress.fingerprint.hex())
        except Stopped:
            return False
        self.plan = self.plan.with_egress_ids(ids)
        return True

    def _writer_schemas(self, raws: list[RawMessage]) -> dict[int, AvroSchema] | None:
        """Step 1a: the writer schemas of the chunk's Confluent ids ({} without a registry);
        None when stopping while the origin's registry does not answer."""
        ids = confluent_ids([r.value for r in raws])
        if not ids or self.registry is None:
            return {}
        registry = self.registry
        try:
            found = until_available(lambda: registry.writer_schemas(ids),
                                    zone=self.corridor.origin, notify=self._notify,
                                    stop=self._stop)
        except Stopped:
            return None
        return dict(found.found)

    def _keys_ready(self) -> bool:
        """Rotate if due and make sure the current key is wrapped; False when stopping first."""
        if self.keys is None:
            return True
        if not self.keys.prepare(self._stop):
            return False
        if self.plan.cipher is not self.keys.cipher:
            self.plan = self.plan.with_cipher(self.keys.cipher)
        self.observer.key(self.keys.cipher.key.epoch, ready=True)
        return True

    def _prepare(self, tp: Partition, raws: list[RawMessage]) -> Prepared | None:
        """Step 1: the pure pipeline; and the messages of steps 2 and 3 for one chunk
        (None: stopping while the origin's registry did not answer)."""
        topic, partition = tp
        dataset_plan = self.plan.dataset_for_topic(topic)
        writers = self._writer_schemas(raws)
        if writers is None or not self.subjects.ready(self._stop):
            return None
        now_ms = self.wall_ms()
        subject_keys = self.subject_keys
        try:
            result = pipeline.process(raws, self.plan, dataset_plan, now_ms,
                                      writer_schemas=writers,
                                      erasable=subject_keys.sealing if subject_keys else None,
                                      subjects=self.subjects.inputs())
        except SubjectKeysStopped:
            return None  # stopping while the key provider did not answer
        self.subjects.reserve(result)
        if self.keys is not None:
            self.keys.counted(len(raws))  # encrypted under the current key, committed or not
        first, last = raws[0].lineage.offset, raws[-1].lineage.offset
        draft = self.audit.draft(tp, dataset_plan, result, first, last, now_ms)
        # The source's partition number when the destination has as many, else murmur2.
        aligned = self.assignment.aligned.get(topic, False)
        batch = self.outbox.batch(
            result, topic, partition, first, last,
            destination_topic=dataset_plan.destination_topic,
            destination_partition=partition if aligned else None,
            topic_id=self.assignment.source_ids.get(topic), published=self.published,
            pending_keys=self.keys.pending if self.keys is not None else {},
            audit=draft.encoded, checkpoint=draft.checkpoint,
            subject_keys=subject_keys.pending_for(f"{topic}/{partition}") if subject_keys
            else None)
        return Prepared(tp, raws, result, batch.side, batch.out, batch.key_ids,
                        self.assignment.sink_for(topic, partition), draft)

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
            self.observer.aborted()
            self.log.warning("batch_aborted", topic=topic, partition=partition, first=first,
                             reason=str(error))
            self.source.seek(topic, partition, first)
            return False
        if error is not None:
            # Step 4b: pause; maybe we are the zombie (see _resume_fenced).
            self.log.warning("producer_fenced", topic=topic, partition=partition,
                             reason=str(error),
                             action=f"partition paused for {FENCE_GRACE_S:.0f}s")
            self.assignment.fence(p.tp, self.clock())
            self.observer.fenced()
            return False
        self.published.update(s.fingerprint for s in p.result.egress_schemas_used)
        self.positions[p.tp] = p.raws[-1].lineage.offset + 1
        self.audit.committed(p.tp, p.draft)
        if self.keys is not None:
            self.keys.committed(p.keys)
        if self.subject_keys is not None:
            self.subject_keys.committed(f"{topic}/{partition}", p.keys)
        # Records: an Arrow message holds many.
        self.stats.count(p.result.counts(), p.result.inputs, self.clock())
        self.observer.committed(topic, partition, p.result, p.raws)
        return True

    def _resume_fenced(self) -> None:
        """Step 4b, after the grace: still the owner, so a new producer (fencing any
        zombie), then trust only the stored offset."""
        now, fenced = self.clock(), self.assignment.fenced
        for (topic, partition), since in list(fenced.items()):
            if now - since < FENCE_GRACE_S:
                continue
            del fenced[(topic, partition)]
            self.assignment.sink_for(topic, partition, fresh=True)
            stored = self._retrying("destination_unavailable", "read stored offsets",
                                    lambda t=topic, p=partition: self.reader.read_stored(
                                        [(t, p)], self.offset_partitions))
            kept = stored.get((topic, partition))
            # Another owner may have committed meanwhile: its position and chain head count.
            self.audit.restore((topic, partition), kept)
            offset = BEGINNING if kept is None else kept.next
            self.positions[(topic, partition)] = 0 if kept is None else kept.next
            self.assignment.resume([(topic, partition)])
            self.source.seek(topic, partition, offset)
            self.log.warning("producer_replaced", topic=topic, partition=partition,
                             resume_at=offset)

    def _flush_audit(self) -> None:
        """Idle (nothing consumed): the audit records of the chunks committed last go to the
        origin now rather than with the next round, so an idle corridor's evidence is on
        the audit topic, not only in its stored offset records."""
        waiting = self.audit.take()
        if waiting:
            self.side.write(waiting)

    def _close_audit(self) -> None:
        """A clean stop: sign every chain head not signed yet (its destination copy and the
        stored-offset record naming it in a transaction of its own; a producer that fails
        here signs nothing), then write the
        waiting audit records to the origin. A crash skips this: the stored offset records
        hold what it would have written, and the next owner writes it."""
        for tp, cp, records in self.audit.closing(self.wall_ms(), self.assignment.source_ids):
            sink = self.assignment.sinks.get(tp)
            if sink is None or tp in self.assignment.fenced:
                continue
            try:
                sink.write(records)
            except (BatchAborted, SinkFenced) as exc:
                self.log.warning("audit_checkpoint_skipped", topic=tp[0], partition=tp[1],
                                 seq=cp.seq, reason=str(exc))
                continue
            self.audit.signed(tp, cp)
        self.side.write(self.audit.take())

    def close(self) -> None:
        self.source.close()
        self.assignment.close()
        self.side.close()
        self.subjects.close()
        if self.keys is not None:
            self.keys.close()
        if self.subject_keys is not None:
            self.subject_keys.close()
        self.log.info("corridor_stopped", **self.stats.as_dict())


def lag(runner: CorridorRunner) -> int:
    """Source offsets not yet committed on the partitions this runner owns; -1 if it owns none
    (counted by the source from the runner's committed positions: ``Source.lag``)."""
    return runner.source.lag(runner.positions)
