"""The sink loop: read a batch, land it with its offsets in one step of the target, repeat.

Commit protocol, per batch (at most ``batch_records`` rows, or what arrived within
``max_wait_s``):

1. poll the corridor topic from the stored offsets and decode (``CorridorFeed``);
2. build the rows (``SinkTable``);
3. ``target.write(rows, next_offsets)``: the rows and, per partition, the offset after the
   last message they came from, atomically (a DuckDB transaction, a renamed set of Parquet
   files, an Iceberg snapshot).

At start the target's stored offsets say where the feed begins, so a sink killed at any
moment lands each delivered record once: a batch is either in the target with its
offsets or not at all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Protocol

import pyarrow as pa
import structlog

from connectors.resources import peak_rss_mib
from connectors.sink.feed import CorridorFeed
from connectors.sink.table import SinkTable
from corridor.sdk import CorridorRecord

log = structlog.get_logger("connectors.sink")
POLL_MESSAGES = 2000


class Target(Protocol):
    """Where a sink lands rows: reads back its offsets, writes rows and offsets at once."""

    def stored(self) -> dict[int, int]:
        """Per partition, the next offset to read (what the last write stored)."""
        ...

    def write(self, rows: pa.Table, offsets: Mapping[int, int]) -> None:
        """Land ``rows`` and ``offsets`` atomically: both or neither."""
        ...

    def close(self) -> None:
        ...


@dataclass
class SinkRun:
    """What one run landed; ``seconds`` from the start to the last batch landed (waiting
    for records that never came, as ``--idle`` does at the end, is not counted)."""

    records: int = 0
    messages: int = 0
    batches: int = 0
    seconds: float = 0.0

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds > 0 else 0.0


def run_sink(feed: CorridorFeed, target: Target, table: SinkTable, *, batch_records: int = 5000,
             max_wait_s: float = 1.0, idle_s: float | None = None,
             stop: Callable[[], bool] = lambda: False,
             clock: Callable[[], float] = time.monotonic,
             on_batch: Callable[[SinkRun], None] | None = None) -> SinkRun:
    """Land the topic until ``stop()``, or until nothing arrived for ``idle_s`` seconds."""
    run, began = SinkRun(), clock()
    pending: list[CorridorRecord] = []
    offsets: dict[int, int] = {}
    first_at = last_seen = clock()
    # The most rows per message seen (an Arrow corridor message holds thousands, an Avro one
    # holds one): polls ask for no more messages than the batch has room for at that size.
    per_message = float(batch_records)  # unknown yet: the first poll asks for one message
    while not stop():
        # Step 1: read and decode.
        room = max(1, math.ceil((batch_records - len(pending)) / per_message))
        fetched = feed.poll(min(POLL_MESSAGES, room), min(0.5, max_wait_s))
        now = clock()
        if fetched.messages:
            seen = max(1.0, len(fetched.records) / fetched.messages)
            per_message = seen if run.messages == 0 else max(per_message, seen)
            if not pending:
                first_at = now
            pending.extend(fetched.records)
            offsets.update(fetched.next_offsets)
            run.messages += fetched.messages
            last_seen = now
        full = len(pending) >= batch_records
        if offsets and (full or now - first_at >= max_wait_s or not fetched.messages):
            _land(target, table, pending, offsets, run)
            pending, offsets = [], {}
            run.seconds = clock() - began
            if on_batch is not None:
                on_batch(run)
        elif idle_s is not None and not fetched.messages and now - last_seen >= idle_s:
            break
    if offsets:
        _land(target, table, pending, offsets, run)
        run.seconds = clock() - began
    return _finished(run)


def _finished(run: SinkRun) -> SinkRun:
    log.info("sink_finished", records=run.records, messages=run.messages, batches=run.batches,
             seconds=round(run.seconds, 3), records_per_s=round(run.rate, 1),
             peak_rss_mib=peak_rss_mib())
    return run


def _land(target: Target, table: SinkTable, records: list[CorridorRecord],
          offsets: Mapping[int, int], run: SinkRun) -> None:
    rows = table.build(records)  # Step 2
    target.write(rows, offsets)  # Step 3: rows and offsets together
    run.records += rows.num_rows
    run.batches += 1
    log.info("batch_committed", rows=rows.num_rows, total=run.records,
             offsets={p: o for p, o in sorted(offsets.items())})
