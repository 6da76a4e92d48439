"""Writing a batch into the Parquet dataset so that it appears whole or not at all (I/O).

Step 1: every file of the batch is written under a temporary name and synced; Step 2:
each is renamed to its final name (``names.PartFile``), and the folders are synced. The
stored offsets are the file names themselves (see ``names.plan_resume``). The partition
columns (corridor, dataset, event_date) are in the folder names, not in the files.
"""

from __future__ import annotations

import os
import uuid
from collections import defaultdict
from collections.abc import Mapping
from datetime import date
from pathlib import Path

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import structlog

from connectors.sink.parquet.names import (
    PartFile,
    is_temp,
    partition_dir,
    plan_resume,
    temp_name,
)
from connectors.sink.table import PARTITION_COLUMNS

log = structlog.get_logger("connectors.sink")
# How to read the dataset with pyarrow: ``pyarrow.dataset.dataset(root, partitioning=
# PARTITIONING)`` (plain "hive" would read event_date as text). DuckDB:
# ``read_parquet('<root>/**/*.parquet', hive_partitioning = true)``.
PARTITIONING = pads.partitioning(
    pa.schema([("corridor", pa.string()), ("dataset", pa.string()), ("event_date", pa.date32())]),
    flavor="hive")


class ParquetTarget:
    """The files of one corridor and dataset under ``root`` (a hive-partitioned dataset)."""

    def __init__(self, root: str | Path, corridor: str, dataset: str,
                 compression: str = "zstd") -> None:
        self.root, self.corridor, self.dataset = Path(root), corridor, dataset
        self.compression = compression
        self.base = self.root / partition_dir(corridor, dataset, None).rsplit("/", 1)[0]
        self._next: dict[int, int] = {}

    def stored(self) -> dict[int, int]:
        """Resume after the highest complete batch per partition; delete leftovers first."""
        found, temps = [], []
        if self.base.exists():
            for path in self.base.rglob("*"):
                if not path.is_file():
                    continue
                if is_temp(path.name):
                    temps.append(path)
                elif (part := PartFile.parse(path.name)) is not None:
                    found.append((str(path.relative_to(self.base)), part))
        plan = plan_resume(found)
        for path in [*temps, *(self.base / p for p in plan.delete)]:
            path.unlink()
        if temps or plan.delete:
            log.info("parquet_leftovers_deleted", temporary=len(temps),
                     incomplete_batch_files=len(plan.delete))
        self._next = dict(plan.next_offsets)
        return dict(self._next)

    def write(self, rows: pa.Table, offsets: Mapping[int, int]) -> None:
        token = uuid.uuid4().hex[:12]
        staged: list[tuple[Path, Path]] = []
        try:
            for partition, (first, per_date) in _split(rows).items():
                last = offsets[partition] - 1
                days = sorted(per_date, key=lambda d: (d is None, d))
                for index, day in enumerate(days):
                    part = PartFile(partition, first, last, index, len(days))
                    folder = self.root / partition_dir(self.corridor, self.dataset, day)
                    staged.append(self._stage(per_date[day], folder, part.name(), token))
        except BaseException:
            for tmp, _ in staged:
                tmp.unlink(missing_ok=True)
            raise
        for tmp, final in staged:  # Step 2: the batch appears
            os.replace(tmp, final)
        for folder in {final.parent for _, final in staged}:
            _sync_dir(folder)
        self._next.update(offsets)

    def _stage(self, rows: pa.Table, folder: Path, final: str, token: str) -> tuple[Path, Path]:
        folder.mkdir(parents=True, exist_ok=True)
        tmp = folder / temp_name(final, token)
        data = rows.drop_columns([c for c in PARTITION_COLUMNS if c in rows.column_names])
        pq.write_table(data, tmp, compression=self.compression)  # Step 1
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        return tmp, folder / final

    def close(self) -> None:
        pass


def _split(rows: pa.Table) -> dict[int, tuple[int, dict[date | None, pa.Table]]]:
    """Per source partition: its lowest offset in the batch, and its rows per event date."""
    partitions = rows.column("kafka_partition").to_pylist()
    days = rows.column("event_date").to_pylist()
    offsets = rows.column("kafka_offset").to_pylist()
    index: dict[int, dict[date | None, list[int]]] = defaultdict(lambda: defaultdict(list))
    first: dict[int, int] = {}
    for i, (p, d) in enumerate(zip(partitions, days, strict=True)):
        index[p][d].append(i)
        first[p] = min(first.get(p, offsets[i]), offsets[i])
    return {p: (first[p], {d: rows.take(pa.array(ix)) for d, ix in per_day.items()})
            for p, per_day in index.items()}


def _sync_dir(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
