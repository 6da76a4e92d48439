"""Reading rows out of CSV, JSON Lines, Parquet and Avro container files (I/O: one file).

Every reader yields ``SourceRow``s in file order with a ``position`` (0, 1, 2, ...: data
rows of a CSV, non-blank lines of a JSON Lines file, rows of a Parquet file across its
row groups, records of an Avro file across its blocks) and ``Where`` it is for a person:
the 1-based line for CSV and JSON Lines, the row group (an Avro file's data block) and the
0-based row within it for Parquet and Avro. ``start`` skips the positions before it
(Parquet row groups and Avro blocks wholly before it are not even decoded).

A row the reader cannot make at all (a line that is not JSON, a CSV row with the wrong
number of fields) is yielded with a ``Problem``; a file that cannot be read on (a
corrupt Parquet footer, a truncated Avro block) raises ``Unreadable`` naming where.
Text files are read up to ``size`` bytes: the size their identity was taken at.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq

from connectors.source.convert import Problem, unflatten

CHUNK_ROWS = 4096  # rows per Arrow slice turned into Python values at a time


@dataclass(frozen=True, slots=True)
class Where:
    """Where a row is in its file: ``line`` (CSV, JSON Lines) or ``row_group`` and ``row``
    (Parquet; for Avro the data block and the record within it)."""

    file: str
    line: int | None = None
    row_group: int | None = None
    row: int | None = None


@dataclass(frozen=True, slots=True)
class SourceRow:
    position: int
    where: Where
    values: Mapping[str, Any] | None
    problem: Problem | None = None


class Unreadable(Exception):
    """The file cannot be read past ``where``; ``reason`` says why."""

    def __init__(self, where: Where, reason: str) -> None:
        super().__init__(reason)
        self.where, self.reason = where, reason


class FileRows:
    """The rows of one file. ``columns``: its column names, once known (None for JSON
    Lines, whose rows each have their own); ``total``: its row count when the format
    says it up front (Parquet), else None."""

    def __init__(self, path: str, fmt: str, size: int, delimiter: str | None = None) -> None:
        self.path, self.fmt, self.size, self.delimiter = path, fmt, size, delimiter
        self.columns: list[str] | None = None
        self.total: int | None = None
        if fmt == "parquet":
            self._parquet = _open_parquet(path)
            self.columns = list(self._parquet.schema_arrow.names)
            self.total = self._parquet.metadata.num_rows

    def rows(self, start: int = 0) -> Iterator[SourceRow]:
        readers = {"csv": self._csv, "jsonl": self._jsonl, "parquet": self._parquet_rows,
                   "avro": self._avro}
        return readers[self.fmt](start)

    def _csv(self, start: int) -> Iterator[SourceRow]:
        delimiter = self.delimiter or ("\t" if self.path.lower().endswith(".tsv") else ",")
        with _text(self.path, self.size) as text:
            reader = csv.reader(text, delimiter=delimiter)
            header = next(reader, None)
            if header is None:
                return
            header = [h.strip() for h in header]
            self.columns = header
            shape = _shaper(header)
            position, line = 0, reader.line_num + 1
            for cells in reader:
                where, line = Where(self.path, line=line), reader.line_num + 1
                if not cells:
                    continue  # a blank line is no row
                if position >= start:
                    yield _csv_row(position, where, len(header), cells, shape)
                position += 1

    def _jsonl(self, start: int) -> Iterator[SourceRow]:
        position = 0
        with open(self.path, "rb") as fh:
            for number, line in enumerate(_lines(fh, self.size), 1):
                if not line.strip():
                    continue
                if position >= start:
                    yield _json_row(position, Where(self.path, line=number), line)
                position += 1

    def _parquet_rows(self, start: int) -> Iterator[SourceRow]:
        meta = self._parquet.metadata
        nested = any("." in c for c in self.columns or ())
        base = 0
        for group in range(meta.num_row_groups):
            count = meta.row_group(group).num_rows
            if base + count > start:
                yield from self._row_group(group, base, start, nested)
            base += count

    def _row_group(self, group: int, base: int, start: int, nested: bool) -> Iterator[SourceRow]:
        try:
            table = self._parquet.read_row_group(group)
        except (OSError, pa.ArrowException) as exc:
            raise Unreadable(Where(self.path, row_group=group, row=0), str(exc)) from None
        row = 0
        for batch in table.to_batches(max_chunksize=CHUNK_ROWS):
            if base + row + batch.num_rows <= start:
                row += batch.num_rows
                continue
            for values in batch.to_pylist():
                if base + row >= start:
                    yield SourceRow(base + row, Where(self.path, row_group=group, row=row),
                                    unflatten(values) if nested else values)
                row += 1

    def _avro(self, start: int) -> Iterator[SourceRow]:
        with open(self.path, "rb") as fh:
            try:
                blocks = fastavro.block_reader(fh)
                schema: Any = blocks.writer_schema
                self.columns = [f["name"] for f in schema.get("fields", [])]
            except (ValueError, EOFError, OSError, StopIteration) as exc:
                raise Unreadable(Where(self.path, row_group=0, row=0),
                                 f"not an Avro container file: {exc}") from None
            yield from _avro_blocks(self.path, blocks, start)


def _avro_blocks(path: str, blocks: Any, start: int) -> Iterator[SourceRow]:
    base, group, row = 0, 0, 0
    try:
        for group, block in enumerate(blocks):
            count = block.num_records
            if base + count > start:
                for row, values in enumerate(block):
                    if base + row >= start:
                        yield SourceRow(base + row, Where(path, row_group=group, row=row), values)
            base += count
    except (ValueError, EOFError, OSError, IndexError, KeyError) as exc:
        raise Unreadable(Where(path, row_group=group, row=row), f"bad Avro block: {exc}") from None


def _open_parquet(path: str) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(path)
    except (OSError, pa.ArrowException) as exc:
        raise Unreadable(Where(path, row_group=0, row=0), f"not a Parquet file: {exc}") from None


def _csv_row(position: int, where: Where, width: int, cells: list[str],
             shape: Callable[[list[str]], dict[str, Any]]) -> SourceRow:
    if len(cells) != width:
        problem = Problem(None, f"expected {width} fields, got {len(cells)}")
        return SourceRow(position, where, None, problem)
    return SourceRow(position, where, shape(cells))


def _shaper(header: list[str]) -> Callable[[list[str]], dict[str, Any]]:
    """Cells -> the row mapping, dotted column names nested (planned once per header)."""
    if not any("." in h for h in header):
        return lambda cells: dict(zip(header, cells, strict=True))
    plan = unflatten({h: i for i, h in enumerate(header)})

    def build(node: Mapping[str, Any], cells: list[str]) -> dict[str, Any]:
        return {k: build(v, cells) if isinstance(v, dict) else cells[v] for k, v in node.items()}

    return lambda cells: build(plan, cells)


def _json_row(position: int, where: Where, line: bytes) -> SourceRow:
    try:
        values = json.loads(line)
    except ValueError as exc:  # UnicodeDecodeError included
        return SourceRow(position, where, None, Problem(None, f"not JSON: {exc}"))
    if not isinstance(values, dict):
        return SourceRow(position, where, None, Problem(None, "not a JSON object"))
    return SourceRow(position, where, values)


def _lines(fh: io.BufferedReader, size: int) -> Iterator[bytes]:
    left = size
    while left > 0:
        line = fh.readline(left)
        if not line:
            return
        left -= len(line)
        yield line


def _text(path: str, size: int) -> io.TextIOWrapper:
    """``path``'s first ``size`` bytes as text (UTF-8, a BOM skipped; invalid bytes kept as
    surrogates so that the cell holding them is rejected, not the file)."""
    raw = io.BufferedReader(_Limited(open(path, "rb"), size))  # noqa: SIM115 (closed by the wrapper)
    return io.TextIOWrapper(raw, encoding="utf-8-sig", errors="surrogateescape", newline="")


class _Limited(io.RawIOBase):
    """A binary file that ends after ``size`` bytes."""

    def __init__(self, fh: io.BufferedReader, size: int) -> None:
        self.fh, self.left = fh, size

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        view = memoryview(buffer)
        n = self.fh.readinto(view[: min(len(view), self.left)]) or 0
        self.left -= n
        return n

    def close(self) -> None:
        self.fh.close()
        super().close()
