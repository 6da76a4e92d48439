"""The rows a sink lands: a corridor record's value plus its residency and lineage (pure).

The table schema follows the corridor's egress schema for the dataset (what crosses:
dropped fields are absent, masked and pseudonymized fields are strings, encrypted fields
are ciphertext bytes, or their original type when the sink decrypts), with every column
nullable, enums as strings and timestamps as microseconds in UTC (what DuckDB, Parquet and
Iceberg all hold without loss). Then the columns that say where each row comes from:

- ``corridor``, ``dataset``, ``event_date`` (the source record's timestamp as a UTC date,
  or ``date_field``'s date): the Parquet dataset's partitions;
- ``corridor_lineage``: ``topic/partition/offset[#row]`` of the source record in its origin;
- ``corridor_origin`` ... ``corridor_key``: the residency headers (``corridor-*``), as
  columns with ``-`` written ``_``;
- ``kafka_topic``, ``kafka_partition``, ``kafka_offset``, ``kafka_timestamp``, ``kafka_key``:
  where the row was read in the destination, its source timestamp and its record key as
  it crossed (a pseudonym by default);
- ``_deleted``: True on a delete marker, the row of a tombstone (a delete at the origin
  that crossed: the record of ``kafka_key`` is gone): its value columns are null, its
  lineage, residency and kafka columns filled. Append-only targets (Parquet, Iceberg) keep
  markers as rows; DuckDB deletes that key's rows instead (``duckdb_target``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime
from typing import Any

import pyarrow as pa

from connectors.errors import ConnectError
from corridor.core import wire
from corridor.core.config import Config
from corridor.core.schema import AvroSchema, arrow_type, egress_schema, union_branches
from corridor.sdk import CorridorRecord

TIMESTAMP = pa.timestamp("us", tz="UTC")
PARTITION_COLUMNS = ("corridor", "dataset", "event_date")
RESIDENCY = (wire.ORIGIN, wire.DESTINATION, wire.JURISDICTION, wire.CLASSIFICATION,
             wire.LEGAL_BASIS, wire.POLICY, wire.KEY_ID)
LINEAGE_COLUMN = "corridor_lineage"
KEY_COLUMN = "kafka_key"
DELETED_COLUMN = "_deleted"
META_FIELDS: tuple[pa.Field, ...] = (
    pa.field("corridor", pa.string()),
    pa.field("dataset", pa.string()),
    pa.field("event_date", pa.date32()),
    pa.field(LINEAGE_COLUMN, pa.string()),
    *(pa.field(h.replace("-", "_"), pa.string()) for h in RESIDENCY),
    pa.field("kafka_topic", pa.string()),
    pa.field("kafka_partition", pa.int32()),
    pa.field("kafka_offset", pa.int64()),
    pa.field("kafka_timestamp", TIMESTAMP),
    pa.field(KEY_COLUMN, pa.binary()),
    pa.field(DELETED_COLUMN, pa.bool_()),
)
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def corridor_egress(config: Config, corridor: str, dataset: str) -> AvroSchema:
    """The egress schema a corridor delivers ``dataset`` with (from the corridor file)."""
    if corridor not in config.corridors:
        raise ConnectError(f"corridors.{corridor}", f"no such corridor in {config.path}")
    c = config.corridors[corridor]
    if dataset not in c.datasets:
        raise ConnectError(f"corridors.{corridor}", f"does not carry dataset {dataset!r}")
    transforms = {path: t.value for path, t in c.transform.get(dataset, {}).items()}
    return egress_schema(config.datasets[dataset].schema, transforms)


def sink_type(t: pa.DataType) -> pa.DataType:
    """What a sink stores for an Arrow type: enums as strings, timestamps in us UTC."""
    if pa.types.is_dictionary(t):
        return sink_type(t.value_type)
    if pa.types.is_timestamp(t):
        return TIMESTAMP
    if pa.types.is_struct(t):
        return pa.struct([pa.field(f.name, sink_type(f.type)) for f in t])
    if pa.types.is_list(t):
        return pa.list_(sink_type(t.value_type))
    if pa.types.is_map(t):
        return pa.map_(t.key_type, sink_type(t.item_type))
    return t


def _avro_type(t: Any, decrypted: bool) -> pa.DataType:
    if isinstance(t, list):
        t = union_branches(t)[1]
    if isinstance(t, dict) and t.get("type") == "record":
        return pa.struct([_field(f, decrypted) for f in t["fields"]])
    if isinstance(t, dict) and t.get("type") == "array":
        return pa.list_(_avro_type(t["items"], decrypted))
    if isinstance(t, dict) and t.get("type") == "map":
        return pa.map_(pa.string(), _avro_type(t["values"], decrypted))
    return sink_type(arrow_type(t))


def _field(f: Mapping[str, Any], decrypted: bool) -> pa.Field:
    t = f["type"]
    if decrypted and str(f.get(wire.ATTR_TRANSFORM, "")).startswith("encrypt"):
        t = f[wire.ATTR_ORIGINAL]
    return pa.field(f["name"], _avro_type(t, decrypted))


class SinkTable:
    """Builds Arrow tables of delivered records for one corridor and dataset.

    ``decrypted``: the records were decrypted (encrypted fields hold their original type);
    ``date_field``: a (dotted) timestamp or date field to take ``event_date`` from instead
    of the record timestamp. Raises ConnectError when a field's name is a metadata column's.
    """

    def __init__(self, corridor: str, dataset: str, egress: AvroSchema, decrypted: bool,
                 date_field: str | None = None) -> None:
        self.corridor, self.dataset, self.date_field = corridor, dataset, date_field
        values = [_field(f, decrypted) for f in egress.expanded["fields"]]
        clash = {f.name for f in values} & {f.name for f in META_FIELDS}
        if clash:
            raise ConnectError(dataset, f"field {sorted(clash)[0]!r} is a sink metadata column")
        self.value_fields = values
        self.schema = pa.schema([*values, *META_FIELDS])

    def build(self, records: Sequence[CorridorRecord]) -> pa.Table:
        """The rows of ``records`` (in order) as a table of ``self.schema``."""
        columns: dict[str, list[Any]] = {f.name: [] for f in self.schema}
        for r in records:
            value = r.value or {}  # a tombstone: no value, every value column null
            for f in self.value_fields:
                columns[f.name].append(value.get(f.name))
            self._meta(columns, r)
        return pa.table({f.name: pa.array(columns[f.name], f.type) for f in self.schema},
                        schema=self.schema)

    def _meta(self, columns: dict[str, list[Any]], r: CorridorRecord) -> None:
        stamp = (None if r.timestamp_ms is None
                 else datetime.fromtimestamp(r.timestamp_ms / 1000, UTC))
        columns["corridor"].append(self.corridor)
        columns["dataset"].append(self.dataset)
        columns["event_date"].append(self._event_date(r, stamp))
        columns[LINEAGE_COLUMN].append(r.lineage)
        for header in RESIDENCY:
            columns[header.replace("-", "_")].append(r.headers.get(header))
        columns["kafka_topic"].append(r.topic)
        columns["kafka_partition"].append(r.partition)
        columns["kafka_offset"].append(r.offset)
        columns["kafka_timestamp"].append(stamp)
        columns[KEY_COLUMN].append(r.key)
        columns[DELETED_COLUMN].append(r.deleted)

    def _event_date(self, r: CorridorRecord, stamp: datetime | None) -> date | None:
        if self.date_field is None:
            return None if stamp is None else stamp.date()
        node: Any = r.value
        for part in self.date_field.split("."):
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, datetime):
            return node.astimezone(UTC).date() if node.tzinfo else node.date()
        if isinstance(node, date):
            return node
        return None if stamp is None else stamp.date()
