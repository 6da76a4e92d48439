"""Reading what `corridor held` works on, read_committed: the records a corridor holds in
its origin (``<origin>.withheld|quarantine.<corridor>``), its release markers in the
destination (``_corridor.released.<corridor>``), and the source records behind held
lineages (for their timestamp and park headers, which the side records do not keep).

Does not own: what the records mean (``corridor.core.release``), writing anything
(``corridor.processor.release`` writes through ``kafka.sink``).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterable, Mapping

from confluent_kafka import Consumer, KafkaException, TopicPartition

from corridor.core import topics
from corridor.core.config import Corridor
from corridor.core.errors import CorridorError, KafkaUnavailable
from corridor.core.model import Lineage, Outcome
from corridor.core.release import HeldRecord, Marker, held_record
from corridor.kafka.admin import partition_counts
from corridor.kafka.clients import Endpoint, admin_client, client_config, unavailable
from corridor.kafka.io import Record, read_to_end
from corridor.kafka.io import _record as _record  # the one Message -> Record
from corridor.zones.credentials import Principal

READ_TIMEOUT_S = 120.0


def read_held(origin: Endpoint, principal: Principal, corridor: Corridor) -> list[HeldRecord]:
    """Every record ``corridor`` holds, as compaction keeps it: the last record of each
    lineage key, none where that is a tombstone."""
    found: dict[tuple[Outcome, bytes], HeldRecord | None] = {}
    for outcome, topic in ((Outcome.WITHHELD, topics.withheld(corridor)),
                           (Outcome.QUARANTINED, topics.quarantine(corridor))):
        for rec in read_to_end(origin, principal, topic, timeout_s=READ_TIMEOUT_S):
            if rec.key is None:
                continue
            # One key lives in one partition, so the records of a key arrive in order.
            found[(outcome, rec.key)] = None if rec.value is None else held_record(
                outcome, rec.key, rec.value, rec.headers, rec.timestamp_ms)
    return [r for r in found.values() if r is not None]


def read_markers(destination: Endpoint, principal: Principal, corridor_name: str, *,
                 missing_ok: bool = False) -> dict[str, Marker]:
    """The release markers of ``corridor_name`` by lineage text. ``missing_ok``: a topic that
    does not exist (provisioned before releases existed) holds none. A marker that does not
    parse is an operator's problem (CorridorError naming it), never skipped: skipping it
    could release its lineage twice."""
    topic = topics.released_topic(corridor_name)
    if missing_ok and not partition_counts(admin_client(destination, principal), [topic]):
        return {}
    out: dict[str, Marker] = {}
    for rec in read_to_end(destination, principal, topic, timeout_s=READ_TIMEOUT_S):
        if rec.key is None:
            continue
        text = rec.key.decode("utf-8", errors="replace")
        if rec.value is None:
            out.pop(text, None)
            continue
        try:
            out[text] = Marker.decode(rec.value)
        except ValueError as exc:
            raise CorridorError(f"{destination.zone}: {topic}/{rec.partition}/{rec.offset}: "
                                f"{exc}") from None
    return out


def read_sources(origin: Endpoint, principal: Principal,
                 lineages: Iterable[Lineage]) -> dict[Lineage, Record]:
    """The source record behind each lineage still in its topic (an Arrow row maps to its
    whole message); a lineage below the log start is left out. Reads each partition once,
    from its lowest wanted offset to its highest."""
    asked = set(lineages)
    wanted: dict[tuple[str, int], set[int]] = {}
    for lin in asked:
        wanted.setdefault((lin.topic, lin.partition), set()).add(lin.offset)
    if not wanted:
        return {}
    consumer = Consumer(client_config(origin, principal, {
        "group.id": f"corridor-reader-{uuid.uuid4().hex[:10]}", "enable.auto.commit": False,
        "isolation.level": "read_committed", "auto.offset.reset": "earliest",
        "enable.partition.eof": False, "log_level": 2}))
    try:
        found = _read_positions(consumer, wanted)
    except KafkaException as exc:
        raise unavailable(f"{origin.zone}: reading source records", exc) from None
    finally:
        consumer.close()
    return {lin: rec for lin in asked
            if (rec := found.get((lin.topic, lin.partition, lin.offset))) is not None}


def _read_positions(consumer: Consumer, wanted: Mapping[tuple[str, int], set[int]]
                    ) -> dict[tuple[str, int, int], Record]:
    ends: dict[tuple[str, int], int] = {}
    starts = []
    for (topic, partition), offsets in wanted.items():
        low, high = consumer.get_watermark_offsets(TopicPartition(topic, partition),
                                                   timeout=30, cached=False)
        first, last = max(min(offsets), low), min(max(offsets) + 1, high)
        if first < last:
            ends[(topic, partition)] = last
            starts.append(TopicPartition(topic, partition, first))
    if not starts:
        return {}
    consumer.assign(starts)
    found: dict[tuple[str, int, int], Record] = {}
    deadline = time.monotonic() + READ_TIMEOUT_S
    while not _past(consumer, ends):
        if time.monotonic() > deadline:
            raise KafkaUnavailable(f"reading source records did not finish within "
                                   f"{READ_TIMEOUT_S:.0f}s")
        for msg in consumer.consume(1000, timeout=0.2):
            rec = None if msg.error() is not None else _record(msg)
            if rec is not None and rec.offset in wanted[(rec.topic, rec.partition)]:
                found[(rec.topic, rec.partition, rec.offset)] = rec
    return found


def _past(consumer: Consumer, ends: Mapping[tuple[str, int], int]) -> bool:
    positions = consumer.position([TopicPartition(t, p) for t, p in ends])
    return all(tp.offset >= ends[(tp.topic, tp.partition)] for tp in positions)
