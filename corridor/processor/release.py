"""`corridor held release`: held records re-run through the corridor's CURRENT policy, and
the ones it now delivers written exactly once. One process beside the running processor,
never inside it, as the corridor's principal (it needs the corridor's keys and rights).

The steps, in this order (the order is the correctness argument):

  Step 1. The corridor's current plan, built as `corridor run` builds it: a data key
          drawn one epoch past the highest published and wrapped by the destination's
          key provider, the pseudonym secret, and with ``wire: confluent`` the egress
          schemas registered in the destination's registry.
  Step 2. The release's transactional producer, id ``corridor.<name>.release``: its
          ``init_transactions`` fences an earlier release still running and settles its
          open transaction, so the markers read next are final.
  Step 3. Read the release markers (destination), the committed positions, the held
          records (origin); select and triage them (``core.release.triage``: what an
          earlier release took is skipped, what is at or above the committed position
          is left to the processor).
  Step 4. Read the source records behind the lineages to re-run: their timestamp and park
          headers (and key, for records held before ``corridor-source-key``). A source
          record retention removed is re-run from its side record alone (key from the
          header, the time it was held as timestamp, no park headers): counted.
  Step 5. Per source partition, chunks of at most CHUNK_RECORDS / CHUNK_BYTES: the writer
          schemas of Confluent-framed values from the ORIGIN's registry, the pure
          pipeline (``core.pipeline.process``, so nothing bypasses the policy), then ONE
          destination transaction with the catalog (egress schema, wrapped data key),
          the records that now cross (with ``corridor-released``) and one marker per
          lineage. Records the policy still holds stay held: nothing is rewritten.
  Step 6. After the last commit, the release's audit event (``"event": "release"``) to
          the origin's audit topic: it states what crossed.

A dry run does steps 1 (without wrapping or registering anything), 3, 4 and the
pipeline of step 5, and writes nothing.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Any

from corridor.core import pipeline, topics
from corridor.core.codec.arrow_input import decode_inputs
from corridor.core.codec.dialects import confluent_ids
from corridor.core.config import Config
from corridor.core.config.rotation import RotationSchedule
from corridor.core.crypto import DataKeyRing
from corridor.core.crypto.rotation import latest_epoch
from corridor.core.model import Lineage, Outcome, RawMessage
from corridor.core.outbox import Outbox
from corridor.core.plan import CorridorPlan, build_plan
from corridor.core.release import (
    HeldRecord,
    Marker,
    Release,
    Selection,
    classify,
    event_key,
    release_event,
    release_messages,
    triage,
)
from corridor.core.schema import AvroSchema, SchemaStore
from corridor.core.wire import registry_subject
from corridor.kafka.admin import partition_counts
from corridor.kafka.clients import Endpoint, admin_client
from corridor.kafka.held import read_held, read_markers, read_sources
from corridor.kafka.io import PlainProducer, Record
from corridor.kafka.keys_topic import published_keys
from corridor.kafka.offsets import OffsetReader
from corridor.kafka.sink import TransactionalSink
from corridor.processor.keys import KeyPublisher
from corridor.processor.resolve import endpoints_for, kek_provider, pseudonym_secret
from corridor.processor.resolve import schema_registry as registry_of
from corridor.processor.wiring import encrypts, pseudonymizes
from corridor.registry import SchemaRegistry
from corridor.zones.credentials import Principal

Log = Any  # a structlog bound logger
Progress = Callable[[str, int, int], None]  # (what, done, total)
CHUNK_RECORDS = 500
CHUNK_BYTES = 8 * 1024 * 1024  # the processor's transaction bound (processor.runner)


@dataclass
class ReleaseReport:
    """What one release did (or, a dry run, would do) with the records it selected."""

    release: Release
    dry_run: bool
    selected: int
    crossed: list[HeldRecord]
    still_held: list[tuple[HeldRecord, Outcome, str]]  # the outcome and reason today
    already: list[tuple[HeldRecord, str]]  # released before: by which release
    pending: list[HeldRecord]  # not yet committed by the corridor: left to it
    refused: list[tuple[HeldRecord, str]]
    without_source: int = 0  # re-run from the side record alone (source expired)


def held_view(config: Config, name: str, principal: Principal,
              selection: Selection) -> tuple[list[HeldRecord], dict[str, Marker]]:
    """The held records ``selection`` matches, and every release marker of the corridor
    (for `held list|show`)."""
    corridor = config.corridors[name]
    where = endpoints_for(config, [corridor.origin, corridor.destination])
    markers = read_markers(where[corridor.destination], principal, name, missing_ok=True)
    return selection.select(read_held(where[corridor.origin], principal, corridor)), markers


class Releaser:
    """One release of corridor ``name`` (module docstring). ``release`` says who, why, when
    (``policy`` is filled in from the plan)."""

    def __init__(self, config: Config, name: str, principal: Principal, log: Log,
                 progress: Progress = lambda _what, _done, _total: None) -> None:
        self.config, self.name, self.principal = config, name, principal
        self.corridor = config.corridors[name]
        where = endpoints_for(config, [self.corridor.origin, self.corridor.destination])
        self.origin: Endpoint = where[self.corridor.origin]
        self.destination: Endpoint = where[self.corridor.destination]
        self.log, self.progress = log.bind(corridor=name), progress
        self.keys: KeyPublisher | None = None
        self.registry: SchemaRegistry | None = registry_of(config, self.corridor.origin)

    def run(self, release: Release, selection: Selection, *, dry_run: bool) -> ReleaseReport:
        plan = self._plan(dry_run)  # Step 1
        release = replace(release, policy=plan.corridor.policy_id)
        sink = None if dry_run else TransactionalSink(  # Step 2
            self.destination, self.principal, f"corridor.{self.name}.release", self._notify)
        try:
            # Step 3
            markers = read_markers(self.destination, self.principal, self.name)
            held = selection.select(read_held(self.origin, self.principal, self.corridor))
            found = triage(held, markers, self._committed(plan))
            report = ReleaseReport(release, dry_run, len(held), [], [], found.already,
                                   found.pending, found.refused)
            self.log.info("release_started", release=release.release_id, selected=len(held),
                          to_rerun=len(found.todo), already=len(found.already),
                          dry_run=dry_run)
            sources = read_sources(self.origin, self.principal,  # Step 4
                                   [r.lineage for r in found.todo])
            report.without_source = sum(r.lineage not in sources for r in found.todo)
            self._rerun(plan, release, found.todo, sources, sink, report)  # Step 5
        finally:
            if sink is not None:
                sink.close()
            if self.keys is not None:
                self.keys.close()
        if not dry_run and report.crossed:  # Step 6
            self._audit(release, report)
        self.log.info("release_done", release=release.release_id, crossed=len(report.crossed),
                      still_held=len(report.still_held), dry_run=dry_run)
        return report

    # -- step 1 ------------------------------------------------------------------------

    def _plan(self, dry_run: bool) -> CorridorPlan:
        name, dest = self.name, self.corridor.destination
        ring = DataKeyRing() if encrypts(self.config, name) else None
        if ring is not None:
            if dry_run:
                ring.rotate(name)  # encrypts for the dry run only; never published
            else:
                epoch = latest_epoch(published_keys(self.destination, self.principal), name)
                ring.rotate(name, at_least=epoch + 1)
                self.keys = KeyPublisher(name, dest, ring, kek_provider(self.config, dest),
                                         RotationSchedule(), self._notify, self.log)
                self.keys.prepare(threading.Event())  # wraps; waits while the KMS is away
        secret = pseudonym_secret(self.config, name) if pseudonymizes(self.config, name) else None
        plan = build_plan(self.config, name, ring, secret)
        if not plan.confluent:
            return plan
        if dry_run:  # the egress ids only frame bytes a dry run never writes
            return plan.with_egress_ids({ds: 0 for ds in plan.datasets})
        egress = registry_of(self.config, dest)
        assert egress is not None  # a wire: confluent corridor's destination has one (config)
        return plan.with_egress_ids({
            ds: egress.register(registry_subject(dp.destination_topic), dp.egress)
            for ds, dp in plan.datasets.items()})

    # -- step 3 ------------------------------------------------------------------------

    def _committed(self, plan: CorridorPlan) -> dict[tuple[str, int], int]:
        reader = OffsetReader(self.destination, self.principal, self.name)
        counts = partition_counts(admin_client(self.origin, self.principal),
                                  plan.source_topics())
        pairs = [(t, p) for t, n in counts.items() for p in range(n)]
        return reader.read(pairs, reader.partitions())

    # -- step 5 ------------------------------------------------------------------------

    def _rerun(self, plan: CorridorPlan, release: Release, todo: Sequence[HeldRecord],
               sources: dict[Lineage, Record], sink: TransactionalSink | None,
               report: ReleaseReport) -> None:
        aligned = self._aligned(plan)
        outbox = Outbox.for_plan(plan, 1)  # only its catalog is used: no offsets written
        done = 0
        for chunk in _chunks(todo):
            topic, partition = chunk[0].lineage.topic, chunk[0].lineage.partition
            dp = plan.dataset_for_topic(topic)
            raws = [_raw(r, sources.get(r.lineage)) for r in chunk]
            writers = self._writer_schemas(raws)
            result = pipeline.process(raws, plan, dp, release.ts_ms, writer_schemas=writers)
            rerun = classify(chunk, result)
            if sink is not None and rerun.crossing:
                pending = self.keys.pending if self.keys is not None else {}
                out = outbox.catalog(result, (), pending)
                key_ids = {m.key for m in out if m.topic == topics.KEYS}
                out += release_messages(result, {r.lineage: r for r in chunk}, release,
                                        dp.destination_topic, partition if aligned[topic]
                                        else None)
                sink.write(out)  # raises BatchAborted / SinkFenced: nothing of it is visible
                if self.keys is not None:
                    self.keys.committed(key_ids)
                self.log.info("release_committed", release=release.release_id, topic=topic,
                              partition=partition, crossed=len(rerun.crossing))
            report.crossed += rerun.crossing
            report.still_held += rerun.held
            done += len(chunk)
            self.progress("re-running held records", done, len(todo))

    def _aligned(self, plan: CorridorPlan) -> dict[str, bool]:
        """Per source topic: the destination keeps the source partition number when it has
        at least as many partitions (the processor's rule, ``processor.rebalance``)."""
        dests = {t: plan.dataset_for_topic(t).destination_topic for t in plan.source_topics()}
        src = partition_counts(admin_client(self.origin, self.principal), dests)
        dst = partition_counts(admin_client(self.destination, self.principal), dests.values())
        return {t: dst.get(d, 0) >= src.get(t, 1 << 30) for t, d in dests.items()}

    def _writer_schemas(self, raws: Sequence[RawMessage]) -> dict[int, AvroSchema]:
        ids = confluent_ids([r.value for r in raws])
        if not ids or self.registry is None:
            return {}
        return dict(self.registry.writer_schemas(ids).found)  # RegistryUnavailable: raised

    # -- step 6 ------------------------------------------------------------------------

    def _audit(self, release: Release, report: ReleaseReport) -> None:
        event = release_event(release, report.crossed, len(report.still_held),
                              len(report.already))
        producer = PlainProducer(self.origin, self.principal)
        producer.produce(topics.audit(self.corridor.origin), json.dumps(event).encode(),
                         event_key(release))
        producer.flush()

    def _notify(self, event: str, fields: dict[str, Any]) -> None:
        level = "warning" if "unavailable" in event else "info"
        getattr(self.log, level)(event, **fields)


def decoded(config: Config, name: str, record: HeldRecord) -> dict[str, Any] | None:
    """The held value as a record of its dataset when it decodes now (single-object Avro,
    Arrow, JSON, or Confluent-framed with its writer schema from the origin's registry),
    else None. For `held show`: the origin's operator reading the origin's own data."""
    datasets = {topics.outbound(config.corridors[name].origin, d): d
                for d in config.corridors[name].datasets}
    dataset = datasets.get(record.lineage.topic)
    if dataset is None:
        return None
    registry = registry_of(config, config.corridors[name].origin)
    ids = confluent_ids([record.value])
    writers = dict(registry.writer_schemas(ids).found) if registry is not None and ids else {}
    store = SchemaStore([d.schema for d in config.datasets.values()])
    inputs = decode_inputs([RawMessage(record.lineage, record.value)], store,
                           config.datasets[dataset].schema, writer_schemas=writers)
    if inputs.decoded.errors or not inputs.decoded.rows:
        return None
    row: dict[str, Any] = inputs.decoded.batch.to_pylist()[0]
    return row


def _raw(record: HeldRecord, source: Record | None) -> RawMessage:
    """The record as the pipeline first saw it: the held value, and the source record's
    key, timestamp and headers while it is still there."""
    if source is None:
        return RawMessage(record.lineage, record.value, record.key, record.held_at_ms)
    return RawMessage(record.lineage, record.value, source.key, source.timestamp_ms,
                      source.headers)


def _chunks(records: Sequence[HeldRecord]) -> list[list[HeldRecord]]:
    """Runs of one source partition, at most CHUNK_RECORDS records and about CHUNK_BYTES."""
    chunks: list[list[HeldRecord]] = []
    size = 0
    for r in sorted(records, key=lambda r: r.lineage):
        last = chunks[-1] if chunks else None
        if (last is None or (last[0].lineage.topic, last[0].lineage.partition)
                != (r.lineage.topic, r.lineage.partition)
                or len(last) >= CHUNK_RECORDS or size >= CHUNK_BYTES):
            chunks.append([r])
            size = r.size
        else:
            last.append(r)
            size += r.size
    return chunks
