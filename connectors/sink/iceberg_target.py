"""Apache Iceberg (pyiceberg, SQL catalog on SQLite): each batch one snapshot that carries the
consumed offsets in its summary.

Every append commits a snapshot whose summary holds ``corridor.offsets`` (JSON: topic ->
partition -> next offset, for every partition landed so far). Iceberg commits are atomic
(the catalog swaps the table's metadata pointer), so a sink killed mid-append leaves at
most unreferenced data files, never rows without their offsets. At start the offsets are
read from the newest snapshot that has them (walking back past snapshots that others made,
such as compactions). The table is partitioned by ``event_date``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pyarrow as pa
import structlog
from pyiceberg.catalog.sql import SqlCatalog
from pyiceberg.exceptions import NoSuchPropertyException

from connectors.errors import ConnectError

log = structlog.get_logger("connectors.sink")
OFFSETS_PROPERTY = "corridor.offsets"
PARTITION_BY = "event_date"


def catalog_at(warehouse: str | Path, uri: str | None = None) -> SqlCatalog:
    """The SQL catalog of a warehouse folder (default: ``<warehouse>/catalog.db``, SQLite)."""
    root = Path(warehouse).resolve()
    root.mkdir(parents=True, exist_ok=True)
    return SqlCatalog("corridor", uri=uri or f"sqlite:///{root / 'catalog.db'}",
                      warehouse=root.as_uri())


def snapshot_offsets(table: Any) -> dict[str, dict[str, int]]:
    """topic -> partition (text) -> next offset, from the newest snapshot that carries
    them (walking back past snapshots without them); empty for a new table."""
    snapshot = table.current_snapshot()
    while snapshot is not None:
        text = _property(snapshot, OFFSETS_PROPERTY)
        if text is not None:
            found: dict[str, dict[str, int]] = json.loads(text)
            return found
        parent = snapshot.parent_snapshot_id
        snapshot = table.snapshot_by_id(parent) if parent is not None else None
    return {}


def _property(snapshot: Any, name: str) -> str | None:
    summary = snapshot.summary
    if summary is None:
        return None
    try:
        value = summary[name]
    except (KeyError, NoSuchPropertyException):
        return None
    return str(value) if value is not None else None


class IcebergTarget:
    """One Iceberg table (``namespace.table``), created with ``schema`` when missing."""

    def __init__(self, warehouse: str | Path, identifier: str, topic: str, schema: pa.Schema,
                 catalog_uri: str | None = None) -> None:
        self.identifier, self.topic = identifier, topic
        namespace = identifier.rsplit(".", 1)[0] if "." in identifier else None
        if namespace is None:
            raise ConnectError(identifier, "give the table as namespace.table")
        self.catalog = catalog_at(warehouse, catalog_uri)
        self.catalog.create_namespace_if_not_exists(namespace)
        if not self.catalog.table_exists(identifier):
            table = self.catalog.create_table_if_not_exists(identifier, schema=schema)
            with table.update_spec() as spec:
                spec.add_identity(PARTITION_BY)
        self.table = self.catalog.load_table(identifier)
        self._offsets: dict[str, dict[str, int]] = {}

    def stored(self) -> dict[int, int]:
        self.table = self.catalog.load_table(self.identifier)
        self._offsets = snapshot_offsets(self.table)
        return {int(p): int(o) for p, o in self._offsets.get(self.topic, {}).items()}

    def write(self, rows: pa.Table, offsets: Mapping[int, int]) -> None:
        merged = {topic: dict(parts) for topic, parts in self._offsets.items()}
        merged.setdefault(self.topic, {}).update({str(p): o for p, o in offsets.items()})
        properties = {OFFSETS_PROPERTY: json.dumps(merged, sort_keys=True)}
        self.table.append(rows, snapshot_properties=properties)  # rows + offsets: one snapshot
        self._offsets = merged

    def close(self) -> None:
        pass
