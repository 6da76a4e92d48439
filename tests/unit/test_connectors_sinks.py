"""Sinks without a broker: the rows they land, Parquet file names and where a sink resumes,
and each target keeping rows and offsets together (DuckDB, Parquet files, Iceberg)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa
import pyarrow.dataset as pads
import pytest
from hypothesis import given
from hypothesis import strategies as st

from connectors.errors import ConnectError
from connectors.sink.duckdb_target import DuckDbTarget
from connectors.sink.feed import Fetched
from connectors.sink.loop import run_sink
from connectors.sink.parquet.names import PartFile, partition_dir, plan_resume, temp_name
from connectors.sink.parquet.target import PARTITIONING, ParquetTarget
from connectors.sink.table import SinkTable, corridor_egress
from corridor.core.config import load_config
from corridor.sdk import CorridorRecord

REPO = Path(__file__).resolve().parents[2]
CONFIG = load_config(REPO / "corridors.yaml")
CORRIDOR = "hk-eu"
DATASET = "trade.shipment"
TOPIC = "corridor.hk-eu.trade.shipment"
DAY1 = datetime(2025, 3, 1, 12, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 12, tzinfo=UTC)


def _value(i: int, email: Any = "a@b.example") -> dict[str, Any]:
    return {"shipment_id": f"DEC-{i}", "declarant": "Kowloon Freight Co", "contact_name": "W C",
            "contact_email": email, "hs_code": "847130", "description": "laptops",
            "declared_value": 10.5 + i, "currency": "HKD", "category": "general",
            "origin_country": "HK", "destination_country": "DE",
            "location": {"port": "HKHKG", "country": "HK"}, "consent": True,
            "declared_at": DAY1}


def record(i: int, partition: int = 0, offset: int | None = None, when: datetime = DAY1,
           email: Any = "a@b.example") -> CorridorRecord:
    headers = {"corridor-origin": "hk", "corridor-destination": "eu",
               "corridor-jurisdiction": "HK", "corridor-policy": "hk-eu@abc",
               "corridor-lineage": f"hk.outbound.trade.shipment/{partition}/{i}"}
    return CorridorRecord(_value(i, email), headers, f"hk.outbound.trade.shipment/{partition}/{i}",
                          b"pseudonym", TOPIC, partition, i if offset is None else offset,
                          timestamp_ms=int(when.timestamp() * 1000))


def sink_table(decrypted: bool = True, date_field: str | None = None) -> SinkTable:
    egress = corridor_egress(CONFIG, CORRIDOR, DATASET)
    return SinkTable(CORRIDOR, DATASET, egress, decrypted, date_field)


# --- rows ----------------------------------------------------------------------------------

def test_rows_carry_the_value_lineage_residency_and_kafka_position() -> None:
    rows = sink_table().build([record(3, partition=2, offset=40)]).to_pylist()[0]
    assert rows["shipment_id"] == "DEC-3" and rows["location"] == {"port": "HKHKG",
                                                                    "country": "HK"}
    assert rows["corridor_lineage"] == "hk.outbound.trade.shipment/2/3"
    assert (rows["corridor_origin"], rows["corridor_jurisdiction"]) == ("hk", "HK")
    assert rows["corridor_key"] is None  # a header the record does not have
    assert (rows["kafka_partition"], rows["kafka_offset"], rows["kafka_key"]) == (2, 40,
                                                                                  b"pseudonym")
    assert (rows["corridor"], rows["dataset"], rows["event_date"]) == (CORRIDOR, DATASET,
                                                                      date(2025, 3, 1))


def test_the_schema_follows_what_crosses_and_what_is_decrypted() -> None:
    plain, sealed = sink_table(True).schema, sink_table(False).schema
    assert "national_id" not in plain.names  # dropped by the corridor
    assert plain.field("contact_email").type == pa.string()
    assert sealed.field("contact_email").type == pa.binary()  # ciphertext kept
    assert plain.field("currency").type == pa.string()  # enums as strings
    assert plain.field("declared_at").type == pa.timestamp("us", tz="UTC")
    assert all(f.nullable for f in plain)


def test_event_date_may_come_from_a_field() -> None:
    table = sink_table(date_field="declared_at")
    assert table.build([record(1, when=DAY2)]).column("event_date").to_pylist() == [
        date(2025, 3, 1)]


def test_an_unknown_corridor_or_dataset_is_an_operator_error() -> None:
    with pytest.raises(ConnectError):
        corridor_egress(CONFIG, "nowhere", DATASET)
    with pytest.raises(ConnectError):
        corridor_egress(CONFIG, CORRIDOR, "media.playback")


# --- Parquet names -------------------------------------------------------------------------

parts = st.builds(lambda p, f, n, c, i: PartFile(p, f, f + n, i % c, c),
                  st.integers(0, 99999), st.integers(0, 10**15), st.integers(0, 10**6),
                  st.integers(1, 9), st.integers(0, 100))


@given(parts)
def test_a_part_file_name_round_trips(part: PartFile) -> None:
    assert PartFile.parse(part.name()) == part
    assert PartFile.parse(temp_name(part.name(), "abc")) is None


def test_partition_folders_are_hive_style() -> None:
    assert partition_dir("hk-eu", "trade.shipment", date(2025, 3, 1)) == (
        "corridor=hk-eu/dataset=trade.shipment/event_date=2025-03-01")
    assert partition_dir("a/b", "d", None).endswith("event_date=__HIVE_DEFAULT_PARTITION__")


def test_resume_after_the_highest_complete_group_and_delete_an_incomplete_one() -> None:
    files = [("d1/a", PartFile(0, 0, 99, 0, 1)),
             ("d1/b", PartFile(0, 100, 199, 0, 2)), ("d2/b", PartFile(0, 100, 199, 1, 2)),
             ("d1/c", PartFile(0, 200, 299, 0, 2)),  # its 1of2 was never renamed
             ("d1/x", PartFile(1, 0, 9, 0, 1))]
    plan = plan_resume(files)
    assert plan.next_offsets == {0: 200, 1: 10}
    assert plan.delete == ["d1/c"]


def test_an_incomplete_group_below_a_complete_one_is_refused() -> None:
    files = [("a", PartFile(0, 0, 99, 0, 2)), ("b", PartFile(0, 100, 199, 0, 1))]
    with pytest.raises(ConnectError):
        plan_resume(files)


# --- targets -------------------------------------------------------------------------------

def test_parquet_target_writes_whole_batches_and_resumes_after_them(tmp_path: Path) -> None:
    table = sink_table()
    target = ParquetTarget(tmp_path, CORRIDOR, DATASET)
    assert target.stored() == {}
    first = [record(i, partition=i % 2, when=DAY1 if i < 3 else DAY2) for i in range(6)]
    target.write(table.build(first), {0: 5, 1: 6})
    # A crash mid-batch: one file of a two-file group renamed, another still temporary.
    folder = tmp_path / partition_dir(CORRIDOR, DATASET, date(2025, 3, 2))
    leftover = folder / PartFile(0, 6, 9, 1, 2).name()
    leftover.write_bytes(b"half a batch")
    (folder / temp_name(PartFile(0, 6, 9, 0, 2).name(), "t")).write_bytes(b"x")
    again = ParquetTarget(tmp_path, CORRIDOR, DATASET)
    assert again.stored() == {0: 5, 1: 6}
    assert not leftover.exists() and not list(folder.glob(".*"))
    rows = pads.dataset(tmp_path, partitioning=PARTITIONING).to_table()
    assert sorted(rows.column("shipment_id").to_pylist()) == [f"DEC-{i}" for i in range(6)]
    assert set(rows.column("event_date").to_pylist()) == {date(2025, 3, 1), date(2025, 3, 2)}
    seen = duckdb.sql(f"SELECT count(*), count(DISTINCT corridor_lineage) FROM read_parquet("
                      f"'{tmp_path}/**/*.parquet', hive_partitioning = true)").fetchall()
    assert seen == [(6, 6)]


def test_duckdb_target_keeps_rows_and_offsets_in_one_transaction(tmp_path: Path) -> None:
    table = sink_table()
    db = tmp_path / "a.duckdb"
    target = DuckDbTarget(db, "shipments", TOPIC, table.schema)
    target.write(table.build([record(i) for i in range(3)]), {0: 3})
    bad = table.build([record(9)]).drop_columns(["kafka_offset"]).append_column(
        "kafka_offset", pa.array(["not a number"]))  # DuckDB cannot cast it: the write fails
    with pytest.raises(ConnectError):
        target.write(bad, {0: 10})
    target.close()
    again = DuckDbTarget(db, "shipments", TOPIC, table.schema)
    assert again.stored() == {0: 3}
    assert again.con.execute("SELECT count(*) FROM shipments").fetchone() == (3,)
    again.close()


def test_iceberg_target_keeps_offsets_in_each_snapshot(tmp_path: Path) -> None:
    from connectors.sink.iceberg_target import IcebergTarget, snapshot_offsets

    table = sink_table()
    target = IcebergTarget(tmp_path, "corridor.shipments", TOPIC, table.schema)
    assert target.stored() == {}
    target.write(table.build([record(i, partition=0) for i in range(3)]), {0: 3})
    target.write(table.build([record(i, partition=1) for i in range(3, 5)]), {1: 2})
    # Someone else's snapshot without offsets (a maintenance job): walked past.
    target.table.append(table.build([]))
    again = IcebergTarget(tmp_path, "corridor.shipments", TOPIC, table.schema)
    assert again.stored() == {0: 3, 1: 2}
    assert snapshot_offsets(again.table) == {TOPIC: {"0": 3, "1": 2}}
    assert again.table.scan().to_arrow().num_rows == 5


def test_peak_memory_is_this_process_in_mib() -> None:
    from connectors.resources import peak_rss_mib

    assert 10 < peak_rss_mib() < 64 * 1024


# --- the loop ------------------------------------------------------------------------------

class FakeFeed:
    def __init__(self, batches: list[list[CorridorRecord]]) -> None:
        self.batches = batches

    def poll(self, _max: int, _timeout: float) -> Fetched:
        if not self.batches:
            return Fetched()
        records = self.batches.pop(0)
        nexts: dict[int, int] = {}
        for r in records:
            nexts[r.partition] = r.offset + 1
        return Fetched(records, nexts, len(records))


class FakeTarget:
    def __init__(self) -> None:
        self.writes: list[tuple[int, dict[int, int]]] = []

    def stored(self) -> dict[int, int]:
        return {}

    def write(self, rows: pa.Table, offsets: Any) -> None:
        self.writes.append((rows.num_rows, dict(offsets)))

    def close(self) -> None:
        pass


def test_the_loop_lands_full_batches_then_the_rest_and_stops_when_idle() -> None:
    feed = FakeFeed([[record(i) for i in range(4)], [record(i) for i in range(4, 7)],
                     [record(7, partition=1)]])
    target = FakeTarget()
    now = [0.0]

    def clock() -> float:
        now[0] += 0.1
        return now[0]

    run = run_sink(feed, target, sink_table(), batch_records=5, max_wait_s=10, idle_s=1,
                   clock=clock)  # type: ignore[arg-type]
    assert target.writes == [(7, {0: 7}), (1, {1: 8})]
    assert (run.records, run.batches, run.messages) == (8, 2, 8)


# --- deletes (tombstones that crossed) -----------------------------------------------------

def tombstone(i: int, key: bytes, partition: int = 0) -> CorridorRecord:
    headers = {"corridor-origin": "hk", "corridor-lineage":
               f"hk.outbound.trade.shipment/{partition}/{i}"}
    return CorridorRecord(None, headers, headers["corridor-lineage"], key, TOPIC, partition, i,
                          key_treatment="pseudonymize", timestamp_ms=int(DAY2.timestamp() * 1000))


def keyed(i: int, key: bytes) -> CorridorRecord:
    r = record(i)
    return CorridorRecord(r.value, r.headers, r.lineage, key, r.topic, r.partition, r.offset,
                          timestamp_ms=r.timestamp_ms)


def test_a_tombstone_is_a_delete_marker_row() -> None:
    [row] = sink_table().build([tombstone(7, b"k")]).to_pylist()
    assert row["_deleted"] is True and row["shipment_id"] is None and row["kafka_key"] == b"k"
    assert row["corridor_lineage"] == "hk.outbound.trade.shipment/0/7"
    assert row["event_date"] == date(2025, 3, 2)
    assert sink_table().build([record(1)]).column("_deleted").to_pylist() == [False]


def test_duckdb_deletes_the_rows_of_a_key_in_order_with_its_offsets(tmp_path: Path) -> None:
    table = sink_table()
    target = DuckDbTarget(tmp_path / "d.duckdb", "shipments", TOPIC, table.schema)
    target.write(table.build([keyed(0, b"a"), keyed(1, b"b"), keyed(2, b"a")]), {0: 3})
    # One batch: delete a, re-insert a, delete b: a's re-insert stays, b is gone.
    target.write(table.build([tombstone(3, b"a"), keyed(4, b"a"), tombstone(5, b"b")]), {0: 6})
    found = target.con.execute("SELECT shipment_id, kafka_key FROM shipments").fetchall()
    assert found == [("DEC-4", b"a")]
    assert "_deleted" not in [c[0] for c in target.con.execute("DESCRIBE shipments").fetchall()]
    assert target.stored() == {0: 6}
    target.close()


def test_append_only_targets_keep_delete_markers(tmp_path: Path) -> None:
    from connectors.sink.iceberg_target import IcebergTarget

    table = sink_table()
    rows = table.build([keyed(0, b"a"), tombstone(1, b"a")])
    parquet = ParquetTarget(tmp_path / "pq", CORRIDOR, DATASET)
    parquet.stored()
    parquet.write(rows, {0: 2})
    landed = pads.dataset(tmp_path / "pq", partitioning=PARTITIONING).to_table()
    assert sorted(landed.column("_deleted").to_pylist()) == [False, True]
    iceberg = IcebergTarget(tmp_path / "wh", "corridor.shipments", TOPIC, table.schema)
    iceberg.stored()
    iceberg.write(rows, {0: 2})
    assert sorted(iceberg.table.scan().to_arrow().column("_deleted").to_pylist()) == [False,
                                                                                      True]
