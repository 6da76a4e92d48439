"""Reads what `corridor verify` checks, from the real topics of one corridor.

Order matters for a running corridor: committed offsets are read FIRST, then
the outcome topics (the release markers after the corridor topics: a marker
commits with its record, so none is seen without it), then the sources. Outcomes read later can only be ahead
of the committed position (counted as "ahead", not a violation), never
behind it; a source read last holds every record below that position.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field

from corridor.core import topics
from corridor.core.codec import from_ipc
from corridor.core.codec.arrow_batches import arrow_rows
from corridor.core.config import Corridor
from corridor.core.errors import DecodeError
from corridor.core.model import Lineage
from corridor.core.release import Marker
from corridor.core.verify import Gap, VerifyReport, verify
from corridor.core.wire import (
    AVRO_MAGIC,
    CONFLUENT_MAGIC,
    LINEAGE,
    LINEAGE_OFFSET,
    LINEAGE_ROW,
    REASON,
    lineage_source,
    lineage_text,
)
from corridor.kafka.clients import Endpoint
from corridor.kafka.held import read_markers
from corridor.kafka.io import Record, read_to_end, watermarks
from corridor.kafka.offsets import OffsetReader
from corridor.zones.credentials import Principal

Progress = Callable[[str], None]


@dataclass
class VerifyInput:
    """Everything ``corridor.core.verify.verify`` needs, as read from the clusters."""

    source: list[Lineage] = field(default_factory=list)
    committed: dict[tuple[str, int], int] = field(default_factory=dict)
    log_start: dict[tuple[str, int], int] = field(default_factory=dict)
    delivered: list[str] = field(default_factory=list)
    withheld: list[tuple[str, str]] = field(default_factory=list)
    quarantined: list[tuple[str, str]] = field(default_factory=list)
    gaps: list[Gap] = field(default_factory=list)
    unreadable: list[str] = field(default_factory=list)  # corridor messages that do not parse
    released: list[Marker] = field(default_factory=list)  # `corridor held release` markers

    def check(self) -> VerifyReport:
        return verify(self.source, self.committed, self.delivered, self.withheld,
                      self.quarantined, self.gaps, self.log_start,
                      [m.lineage for m in self.released])


def _delivered_lineages(value: bytes | None, header: str | None) -> list[str]:
    """Lineages one corridor message carries: its header (avro, or a tombstone: a delete that
    crossed, null value), or one per row (arrow)."""
    if value is None or value[:2] == AVRO_MAGIC or value[:1] == CONFLUENT_MAGIC:
        return [header] if header else []  # one record (either framing, or none): its header
    if header is None:
        return []
    source = lineage_source(header)
    batch = from_ipc(value)
    offsets = batch.column(batch.schema.get_field_index(LINEAGE_OFFSET)).to_pylist()
    if LINEAGE_ROW not in batch.schema.names:
        return [f"{source}/{o}" for o in offsets]
    rows = batch.column(batch.schema.get_field_index(LINEAGE_ROW)).to_pylist()
    topic, _, partition = source.rpartition("/")
    return [lineage_text(topic, int(partition), o, r) for o, r in zip(offsets, rows, strict=True)]


def _source_lineages(rec: Record) -> list[Lineage]:
    """The records one source message holds: one per row of an Arrow IPC message (the
    framing rule the processor applies, ``corridor.core.codec.arrow_batches.arrow_rows``), else one."""
    rows = arrow_rows(rec.value)
    if rows is None:
        return [Lineage(rec.topic, rec.partition, rec.offset)]
    return [Lineage(rec.topic, rec.partition, rec.offset, r) for r in range(rows)]


def _side(endpoint: Endpoint, principal: Principal, topic: str) -> list[tuple[str, str]]:
    out = []
    for rec in read_to_end(endpoint, principal, topic):
        if rec.key is not None and rec.value is not None:  # a tombstone deletes, it is no outcome
            out.append((rec.key.decode("utf-8", errors="replace"), rec.header(REASON) or ""))
    return out


def _gap_events(endpoint: Endpoint, principal: Principal, corridor: str) -> list[Gap]:
    gaps = []
    for rec in read_to_end(endpoint, principal, topics.audit(endpoint.zone)):
        try:
            event = json.loads(rec.value or b"null")
        except ValueError:
            continue
        if not isinstance(event, dict) or event.get("corridor") != corridor:
            continue
        if event.get("kind") == "gap":  # a chained event (core.audit): offsets inclusive
            gaps.append(Gap(str(event["topic"]), int(event["partition"]),
                            int(event["first_offset"]), int(event["last_offset"]) + 1))
        elif event.get("event") == "gap":  # written before the chain
            gaps.append(Gap(str(event["topic"]), int(event["partition"]), int(event["from"]),
                            int(event["to"])))
    return sorted(set(gaps))


def read_verify_input(origin: Endpoint, dest: Endpoint, corridor: Corridor,
                      principal: Principal,
                      progress: Progress = lambda _: None) -> VerifyInput:
    """Read offsets, outcomes and sources of ``corridor`` from its ``origin`` and ``dest``
    clusters (see the module docstring)."""
    sources = [topics.outbound(corridor.origin, d) for d in corridor.datasets]
    found = VerifyInput()
    marks = {t: watermarks(origin, principal, t) for t in sources}
    progress(f"reading committed offsets from {dest.zone}/{topics.offsets_topic(corridor.name)}")
    reader = OffsetReader(dest, principal, corridor.name, timeout_s=60.0)
    pairs = [(t, p) for t in sources for p in marks[t]]
    found.committed = reader.read(pairs, reader.partitions())
    for ds in corridor.datasets:
        topic = topics.corridor_topic(corridor.origin, corridor.destination, ds)
        progress(f"reading {dest.zone}/{topic}")
        for rec in read_to_end(dest, principal, topic):
            try:
                found.delivered.extend(_delivered_lineages(rec.value, rec.header(LINEAGE)))
            except DecodeError:
                found.unreadable.append(f"{topic}/{rec.partition}/{rec.offset}")
    progress(f"reading {dest.zone}/{topics.released_topic(corridor.name)}")
    found.released = list(read_markers(dest, principal, corridor.name, missing_ok=True).values())
    progress(f"reading {origin.zone}/{topics.withheld(corridor)}, quarantine and audit")
    found.withheld = _side(origin, principal, topics.withheld(corridor))
    found.quarantined = _side(origin, principal, topics.quarantine(corridor))
    found.gaps = _gap_events(origin, principal, corridor.name)
    for topic in sources:
        progress(f"reading {origin.zone}/{topic}")
        found.log_start.update({(topic, p): low for p, (low, _) in marks[topic].items()})
        for rec in read_to_end(origin, principal, topic):
            found.source.extend(_source_lineages(rec))
    return found
