"""Parquet dataset file names and where a sink resumes from them (pure).

A batch writes, per source partition, one file per event date it holds; the files of
that partition's share of the batch are a group named by the partition, the offset range
``first``-``last`` (inclusive) of the messages they hold, and ``index``of``count``:

    corridor=hk-eu/dataset=trade.shipment/event_date=2025-03-01/
        part-p00002-o00000000000000004000-00000000000000004999-0of2.parquet

Files are written under a temporary name (``.`` first, ``.tmp`` last: readers skip them)
and renamed when the whole batch is written. At start ``plan_resume`` finds, per partition,
the highest ``last`` of a complete group (every index present): the sink resumes after it.
An incomplete group (a crash between two renames) lies beyond that point and is deleted:
its rows are written again. An incomplete group below it cannot come from this protocol
and is refused rather than guessed at.
"""

from __future__ import annotations

import re
from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import quote

from connectors.errors import ConnectError

HIVE_NULL = "__HIVE_DEFAULT_PARTITION__"  # what pyarrow and DuckDB read as a null partition
PART = re.compile(r"^part-p(\d+)-o(\d+)-(\d+)-(\d+)of(\d+)\.parquet$")


@dataclass(frozen=True, order=True, slots=True)
class PartFile:
    """One data file of a batch: its source partition's offsets ``first``..``last``."""

    partition: int
    first: int
    last: int
    index: int
    count: int

    def name(self) -> str:
        return (f"part-p{self.partition:05d}-o{self.first:020d}-{self.last:020d}-"
                f"{self.index}of{self.count}.parquet")

    @classmethod
    def parse(cls, name: str) -> PartFile | None:
        """The PartFile a file name spells, or None for any other name."""
        m = PART.match(name)
        if m is None:
            return None
        partition, first, last, index, count = map(int, m.groups())
        if not (first <= last and 0 <= index < count):
            return None
        return cls(partition, first, last, index, count)


def partition_dir(corridor: str, dataset: str, event_date: date | None) -> str:
    """The hive partition folder (relative) of a corridor, dataset and event date."""
    day = HIVE_NULL if event_date is None else event_date.isoformat()
    return f"corridor={quote(corridor, safe='')}/dataset={quote(dataset, safe='')}/event_date={day}"


def temp_name(final: str, token: str) -> str:
    return f".{final}.{token}.tmp"


def is_temp(name: str) -> bool:
    return name.startswith(".") and name.endswith(".tmp")


@dataclass
class ResumePlan:
    """Per partition the next offset to read, and the files (relative paths) to delete."""

    next_offsets: dict[int, int] = field(default_factory=dict)
    delete: list[str] = field(default_factory=list)


def plan_resume(files: Iterable[tuple[str, PartFile]]) -> ResumePlan:
    """Where to resume given the data files found (relative path, parsed name).
    Raises ConnectError for an incomplete group below a complete one."""
    groups: dict[tuple[int, int, int, int], dict[int, str]] = defaultdict(dict)
    for path, part in files:
        groups[(part.partition, part.first, part.last, part.count)][part.index] = path
    plan = ResumePlan()
    incomplete: list[tuple[tuple[int, int, int, int], dict[int, str]]] = []
    for key, members in groups.items():
        partition, _first, last, count = key
        if len(members) == count:
            plan.next_offsets[partition] = max(plan.next_offsets.get(partition, 0), last + 1)
        else:
            incomplete.append((key, members))
    for (partition, first, last, _count), members in incomplete:
        if first < plan.next_offsets.get(partition, 0):
            raise ConnectError(sorted(members.values())[0],
                               f"incomplete batch of partition {partition} (offsets {first}-"
                               f"{last}) below a complete one: the dataset was changed by hand")
        plan.delete.extend(sorted(members.values()))
    return plan
