"""DuckDB: the rows in a table, the consumed offsets in ``_corridor_offsets``, one transaction.

``_corridor_offsets(table_name, topic, partition, next_offset)`` holds, per table and
source partition, the offset after the last message whose rows are in the table. Both
are written in the same DuckDB transaction, so a sink killed mid-batch leaves neither
(DuckDB rolls an uncommitted transaction back when the file is opened again).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import duckdb
import pyarrow as pa

from connectors.errors import ConnectError

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
            self.con.register("incoming", rows)
            self.con.execute(f"INSERT INTO {_quoted(self.table)} BY NAME SELECT * FROM incoming")
            self.con.executemany(
                f"INSERT OR REPLACE INTO {OFFSETS_TABLE} VALUES (?, ?, ?, ?)",
                [[self.table, self.topic, p, o] for p, o in sorted(offsets.items())])
            self.con.execute("COMMIT")
        except duckdb.Error as exc:
            self.con.execute("ROLLBACK")
            raise ConnectError(f"{self.path}:{self.table}", f"write failed: {exc}") from None
        finally:
            self.con.unregister("incoming")

    def close(self) -> None:
        self.con.close()
