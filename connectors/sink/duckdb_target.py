"""DuckDB: the rows in a table, the consumed offsets in ``_corridor_offsets``, one transaction.

``_corridor_offsets(table_name, topic, partition, next_offset)`` holds, per table and
source partition, the offset after the last message whose rows are in the table. Both
are written in the same DuckDB transaction, so a sink killed mid-batch leaves neither
(DuckDB rolls an uncommitted transaction back when the file is opened again).

Deletes: a delete marker (``table.DELETED_COLUMN``, a tombstone that crossed) deletes the
rows of its key (``kafka_key``, the key as it crossed, or decrypted) in that same
transaction, in order: rows of the key landed before the marker go, rows after it (a
re-insert) stay. The table has no ``_deleted`` column: it holds the rows that exist.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from connectors.errors import ConnectError
from connectors.sink.table import DELETED_COLUMN, KEY_COLUMN

OFFSETS_TABLE = "_corridor_offsets"


def _quoted(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


class DuckDbTarget:
    """One table of a DuckDB database file (created with ``schema`` when missing)."""

    def __init__(self, path: str | Path, table: str, topic: str, schema: pa.Schema) -> None:
        self.path, self.table, self.topic = str(path), table, topic
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        try:
            self.con = duckdb.connect(self.path)
        except duckdb.Error as exc:
            raise ConnectError(self.path, f"cannot open the DuckDB database: {exc}") from None
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {OFFSETS_TABLE} (table_name VARCHAR, "
                         "topic VARCHAR, partition INTEGER, next_offset BIGINT, "
                         "PRIMARY KEY (table_name, topic, partition))")
        if DELETED_COLUMN in schema.names:
            schema = schema.remove(schema.get_field_index(DELETED_COLUMN))
        self.con.register("shape", schema.empty_table())
        self.con.execute(f"CREATE TABLE IF NOT EXISTS {_quoted(table)} AS "
                         "SELECT * FROM shape LIMIT 0")
        self.con.unregister("shape")

    def stored(self) -> dict[int, int]:
        found = self.con.execute(
            f"SELECT partition, next_offset FROM {OFFSETS_TABLE} "
            "WHERE table_name = ? AND topic = ?", [self.table, self.topic]).fetchall()
        return {int(p): int(o) for p, o in found}

    def write(self, rows: pa.Table, offsets: Mapping[int, int]) -> None:
        self.con.execute("BEGIN TRANSACTION")
        try:
            for piece, deleted in _runs(rows):
                self._insert(piece)
                if deleted is not None:
                    self.con.execute(f"DELETE FROM {_quoted(self.table)} "
                                     f"WHERE {KEY_COLUMN} = ?", [deleted])
            self.con.executemany(
                f"INSERT OR REPLACE INTO {OFFSETS_TABLE} VALUES (?, ?, ?, ?)",
                [[self.table, self.topic, p, o] for p, o in sorted(offsets.items())])
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            self.con.execute("ROLLBACK")
            raise ConnectError(f"{self.path}:{self.table}", f"write failed: {exc}") from None

    def _insert(self, rows: pa.Table) -> None:
        if not rows.num_rows:
            return
        if DELETED_COLUMN in rows.column_names:
            rows = rows.drop_columns([DELETED_COLUMN])
        self.con.register("incoming", rows)
        try:
            self.con.execute(f"INSERT INTO {_quoted(self.table)} BY NAME SELECT * FROM incoming")
        finally:
            self.con.unregister("incoming")

    def close(self) -> None:
        self.con.close()


def _runs(rows: pa.Table) -> list[tuple[pa.Table, bytes | None]]:
    """``rows`` cut at each delete marker: (the rows before it, the key it deletes), and
    last (the rows after the last marker, None)."""
    if DELETED_COLUMN not in rows.column_names or not pc.any(rows[DELETED_COLUMN]).as_py():
        return [(rows, None)]
    keys = rows[KEY_COLUMN].to_pylist()
    out, start = [], 0
    for i, deleted in enumerate(rows[DELETED_COLUMN].to_pylist()):
        if deleted:
            out.append((rows.slice(start, i - start), keys[i]))
            start = i + 1
    out.append((rows.slice(start), None))
    return out
