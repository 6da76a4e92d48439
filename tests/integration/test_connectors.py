"""Connectors on real brokers: file sources into a park topic and analytics sinks from a
corridor topic, each SIGKILLed mid-run and run again: nothing twice, nothing missing.

Every test uses a throwaway corridor (fresh zone names, so its own topics); the loaders
and sinks run as subprocesses (`corridor connect ...`), as an operator runs them.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import duckdb
import fastavro
import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.parquet as pq
import pytest

from connectors.source.progress import progress_topic
from corridor.core import topics
from corridor.core.errors import KafkaUnavailable
from corridor.core.schema import unframe
from corridor.dev.sample import generate_rows
from corridor.kafka import admin as kadmin
from corridor.kafka.io import read_to_end, watermarks
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint

from .chaos_env import corridor
from .corridor_env import REPO, drop_topics, make_corridor
from .processor_env import DATASET, wait_until

pytestmark = pytest.mark.integration

ROWS = 100_000
BAD_EVERY = 100  # 1% bad rows
# Until `connect` is registered in corridor/cli.py, the same CLI with the group added.
BOOT = ("import sys; from corridor.cli import cli, main; "
        "from corridor.commands.connect import connect; "
        "'connect' in cli.commands or cli.add_command(connect); sys.argv[0] = 'corridor'; main()")
CSV_COLUMNS = ["shipment_id", "declarant", "contact_name", "contact_email", "national_id",
               "hs_code", "description", "declared_value", "currency", "category",
               "origin_country", "destination_country", "location.port", "location.country",
               "consent", "declared_at"]


def corridor_cli(*args: str) -> list[str]:
    from corridor import cli

    if ("corridor.commands.connect", "connect") in cli.COMMANDS:
        return [sys.executable, "-m", "corridor.cli", *args]
    return [sys.executable, "-c", BOOT, *args]


class Run:
    """One `corridor connect ...` subprocess; its output (JSON log lines) goes to a file."""

    def __init__(self, log_path: Path, *args: str) -> None:
        self.log_path = log_path
        self.log_file = open(log_path, "ab")  # noqa: SIM115 (closed in close())
        environment = {**os.environ, "CORRIDOR_HOME": str(REPO), "CORRIDOR_LOG_JSON": "1"}
        self.proc = subprocess.Popen(corridor_cli(*args), stdout=self.log_file,
                                     stderr=subprocess.STDOUT, cwd=REPO, env=environment)

    def events(self, name: str) -> list[dict[str, Any]]:
        out = []
        for line in self.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{") and f'"{name}"' in line:
                event = json.loads(line)
                if event.get("event") == name:
                    out.append(event)
        return out

    def kill(self) -> None:
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(30)

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            tail = "\n".join(self.log_path.read_text(errors="replace").splitlines()[-20:])
            raise AssertionError(f"did not finish in {timeout_s:.0f}s:\n{tail}") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.log_file.close()


@pytest.fixture
def env(zones, tmp_path):
    with corridor(zones, tmp_path) as env:
        yield env
        kadmin.delete_topics(zones.admin("hk"), [progress_topic(env.origin)])


# --- sources -------------------------------------------------------------------------------

def _shipments(count: int, seed: int) -> list[dict[str, Any]]:
    return generate_rows(DATASET, count, seed=seed)


def write_csv(path: Path, rows: list[dict[str, Any]]) -> dict[int, str]:
    """The rows as CSV, every BAD_EVERY-th one broken; returns {line: column} of the bad."""
    bad: dict[int, str] = {}
    with open(path, "w", newline="") as fh:
        out = csv.writer(fh)
        out.writerow(CSV_COLUMNS)
        for i, r in enumerate(rows):
            cells = [r["shipment_id"], r["declarant"], r["contact_name"], r["contact_email"] or "",
                     r["national_id"], r["hs_code"], r["description"], repr(r["declared_value"]),
                     r["currency"], r["category"], r["origin_country"], r["destination_country"],
                     r["location"]["port"], r["location"]["country"],
                     "true" if r["consent"] else "false", r["declared_at"].isoformat()]
            if i % BAD_EVERY == 7:
                column = ("declared_value", "currency", "declared_at")[(i // BAD_EVERY) % 3]
                cells[CSV_COLUMNS.index(column)] = "n/a"
                bad[i + 2] = column  # line 1 is the header
            out.writerow(cells)
    return bad


def write_parquet(path: Path, rows: list[dict[str, Any]], group: int = 8192) -> dict[int, str]:
    """The rows as Parquet, every BAD_EVERY-th one broken; returns {row index: column}."""
    bad: dict[int, str] = {}
    broken = []
    for i, r in enumerate(rows):
        r = dict(r)
        if i % BAD_EVERY == 7:
            column = ("currency", "contact_name")[(i // BAD_EVERY) % 2]
            r[column] = "XYZ" if column == "currency" else None
            bad[i] = column
        broken.append(r)
    pq.write_table(pa.Table.from_pylist(broken), path, row_group_size=group)
    return bad


def park_records(env, admin, keys: dict[str, bytes | None] | None = None) -> Counter:
    """shipment_id -> how many times it is in the park topic (committed records only);
    ``keys`` collects each record's Kafka key by shipment_id."""
    schema = env.config.datasets[DATASET].schema
    counts: Counter = Counter()
    topic = topics.outbound(env.origin, DATASET)
    for record in read_to_end(zone_endpoint(env.config, env.origin), admin, topic):
        _, body = unframe(record.value)
        value = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
        counts[value["shipment_id"]] += 1
        if keys is not None:
            keys[value["shipment_id"]] = record.key
    return counts


def _ended(env, admin) -> int:
    """Records (committed or not) in the park topic; -1 while it cannot say."""
    endpoint = zone_endpoint(env.config, env.origin)
    try:
        marks = watermarks(endpoint, admin, topics.outbound(env.origin, DATASET))
    except KafkaUnavailable:
        return -1
    return sum(high for _, high in marks.values())


def load_killed_then_rerun(env, zones, tmp_path: Path, path: Path) -> tuple[dict, Path]:
    """Load ``path``, SIGKILL the loader mid-file, load again to the end. Returns the second
    run's summary and the report folder."""
    admin = zones.credentials.admin
    report = tmp_path / "report"
    args = ("connect", "source", "file", str(path), "--zone", env.origin, "--dataset", DATASET,
            "--key-field", "national_id", "--batch-rows", "2000", "--report-dir", str(report),
            "-c", str(env.path), "-o", "json")
    first = Run(tmp_path / "load-1.log", *args)
    try:
        wait_until(lambda: _ended(env, admin) >= ROWS // 4 or first.proc.poll() is not None,
                   120, "a quarter of the file in the park topic", every_s=0.05)
        first.kill()
    finally:
        first.close()
    assert first.proc.returncode == -signal.SIGKILL, "the loader finished before the kill"
    second = Run(tmp_path / "load-2.log", *args)
    try:
        assert second.wait(300) == 0
    finally:
        second.close()
    resumed = second.events("file_found")[0]
    assert resumed["status"] == "resumed" and 0 < resumed["start"] < ROWS
    return json.loads((report / "summary.json").read_text()), report


def _assert_each_good_row_once(env, zones, rows: list[dict[str, Any]], bad: set[int]) -> None:
    keys: dict[str, bytes | None] = {}
    counts = park_records(env, zones.credentials.admin, keys)
    good = {r["shipment_id"]: r for i, r in enumerate(rows) if i not in bad}
    assert sum(counts.values()) == len(good) == ROWS - ROWS // BAD_EVERY
    assert set(counts) == set(good)
    assert max(counts.values()) == 1
    # Keyed by the person (--key-field national_id), as a park keys its records.
    assert all(keys[i] == good[i]["national_id"].encode() for i in good)


def test_csv_file_loads_exactly_once_across_a_sigkill(zones, env, tmp_path):
    rows = _shipments(ROWS, seed=21)
    path = tmp_path / "shipments.csv"
    bad = write_csv(path, rows)
    summary, report = load_killed_then_rerun(env, zones, tmp_path, path)
    _assert_each_good_row_once(env, zones, rows, {line - 2 for line in bad})
    rejects = [json.loads(line) for line in (report / "rejects.jsonl").read_text().splitlines()]
    assert sorted((r["line"], r["column"]) for r in rejects) == sorted(bad.items())
    assert all(r["file"] == str(path) and r["reason"] for r in rejects)
    totals = summary["files"][0]
    assert (totals["loaded"], totals["rejected"], totals["done"]) == (
        ROWS - len(bad), len(bad), True)
    print(f"\ncsv source: {summary['rows_per_s']} rows/s (resumed run), "
          f"peak RSS {summary['peak_rss_mib']} MiB")


def test_parquet_file_loads_exactly_once_across_a_sigkill(zones, env, tmp_path):
    rows = _shipments(ROWS, seed=22)
    path = tmp_path / "shipments.parquet"
    bad = write_parquet(path, rows, group=8192)
    summary, report = load_killed_then_rerun(env, zones, tmp_path, path)
    _assert_each_good_row_once(env, zones, rows, set(bad))
    rejects = [json.loads(line) for line in (report / "rejects.jsonl").read_text().splitlines()]
    assert sorted((r["row_group"] * 8192 + r["row"], r["column"]) for r in rejects) == sorted(
        bad.items())
    assert all(r["line"] is None for r in rejects)
    assert summary["files"][0]["rejected"] == len(bad)
    print(f"\nparquet source: {summary['rows_per_s']} rows/s (resumed run), "
          f"peak RSS {summary['peak_rss_mib']} MiB")


def test_follow_loads_new_and_grown_files_of_a_folder(zones, env, tmp_path):
    admin = zones.credentials.admin
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    rows = _shipments(300, seed=23)
    report = tmp_path / "report"
    run = Run(tmp_path / "follow.log", "connect", "source", "file", str(inbox), "--follow",
              "--poll", "0.2", "--settle", "0.5", "--zone", env.origin, "--dataset", DATASET,
              "--report-dir", str(report), "-c", str(env.path))
    try:
        _drop(inbox / "a.jsonl", [json.dumps(r, default=str) for r in rows[:100]])
        avro = tmp_path / "b.avro"
        with open(avro, "wb") as fh:
            fastavro.writer(fh, env.config.datasets[DATASET].schema.parsed, rows[100:200])
        avro.rename(inbox / "b.avro")
        wait_until(lambda: _parked(env, admin) == 200, 60, "both files")
        with open(inbox / "a.jsonl", "a") as fh:  # a file that grows: only the new rows
            fh.write("".join(json.dumps(r, default=str) + "\n" for r in rows[200:]))
        wait_until(lambda: _parked(env, admin) == 300, 60, "the appended rows")
        run.proc.send_signal(signal.SIGTERM)
        assert run.wait(60) == 0
    finally:
        run.close()
    counts = park_records(env, admin)
    assert set(counts) == {r["shipment_id"] for r in rows} and max(counts.values()) == 1
    assert [e["status"] for e in run.events("file_found")] == ["new", "new", "grew"]


def _parked(env, admin) -> int:
    try:
        return sum(park_records(env, admin).values())
    except KafkaUnavailable:  # a topic made seconds ago may still be electing its leader
        return -1


def _drop(path: Path, lines: list[str]) -> None:
    """Write a file elsewhere, then move it in whole (as a producer of files should)."""
    tmp = path.with_name("." + path.name)
    tmp.write_text("".join(line + "\n" for line in lines))
    tmp.rename(path)


# --- sinks ---------------------------------------------------------------------------------

STREAM = 20_000
SINK_BATCH = "1000"


@dataclass
class Stream:
    """A corridor stream that crossed: what the corridor delivered, and what stayed home."""

    env: Any
    admin: Any
    delivered: dict[str, dict[str, Any]]  # lineage -> the record's value as the SDK decrypts it
    kept_home: set[str]  # lineages of withheld and quarantined records
    source: dict[str, dict[str, Any]]  # shipment_id -> the park's row


@pytest.fixture(scope="module")
def stream(zones, tmp_path_factory) -> Iterator[Stream]:
    from corridor.commands.provision import provision_topics
    from corridor.dev.sample import generate_keys, generate_records
    from corridor.sdk import CorridorConsumer, ParkProducer

    from .processor_env import Processor, committed, source_end, verify

    admin = zones.credentials.admin
    tmp = tmp_path_factory.mktemp("stream")
    env = make_corridor(zones, tmp)
    provision_topics(str(env.path), 3)
    LocalKekProvider(env.keys).init(env.dest)
    park = ParkProducer(env.config, env.origin, DATASET, admin)
    values = generate_records(DATASET, STREAM, seed=31, bad_ratio=0.01)
    for value, key in zip(values, generate_keys(DATASET, STREAM, seed=31), strict=True):
        park.send_raw(value, key)
    park.flush(120)
    processor = Processor(env, tmp, "p", "--until-caught-up")
    try:
        assert processor.wait(300) == 0
    finally:
        processor.close()
    wait_until(lambda: committed(env, admin) == source_end(env, admin), 60, "the corridor")
    report = verify(env, admin)
    assert report.ok and report.source == STREAM, report
    topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    with CorridorConsumer(env.config, topic, kek_provider=LocalKekProvider(env.keys),
                          principal=admin) as consumer:
        delivered = {r.lineage: r.value for r in consumer.records(idle_timeout_s=5)}
    assert len(delivered) == report.delivered
    origin = zone_endpoint(env.config, env.origin)
    kept_home = {r.key.decode() for side in (topics.withheld(env.corridor),
                                             topics.quarantine(env.corridor))
                 for r in read_to_end(origin, admin, side)}
    assert kept_home and not kept_home & set(delivered)
    rows = {r["shipment_id"]: r for r in generate_rows(DATASET, STREAM, seed=31)}
    yield Stream(env, admin, delivered, kept_home, rows)
    drop_topics(zones, env)


def sink_killed_twice(stream: Stream, tmp_path: Path, kind: str, *target: str) -> dict:
    """Run a sink, SIGKILL it twice mid-run, run it to the end; the last run's summary."""
    args = ("connect", "sink", kind, "--corridor", stream.env.name, "--decrypt",
            "--batch-records", SINK_BATCH, "-c", str(stream.env.path), *target)
    for attempt in (1, 2):
        run = Run(tmp_path / f"{kind}-{attempt}.log", *args)
        try:
            wait_until(lambda run=run: _landed(run) >= 4000 or run.proc.poll() is not None, 120,
                       f"{kind} sink to land some batches", every_s=0.05)
            run.kill()
        finally:
            run.close()
        assert run.proc.returncode == -signal.SIGKILL, f"the {kind} sink ended before the kill"
    final = Run(tmp_path / f"{kind}-3.log", *args, "--idle", "5", "-o", "json")
    try:
        assert final.wait(300) == 0
    finally:
        final.close()
    assert final.events("feed_started")[0]["resumed"], "the last run did not resume"
    finished = final.events("sink_finished")[0]
    print(f"\n{kind} sink: {finished['records_per_s']} records/s (last run), "
          f"peak RSS {finished['peak_rss_mib']} MiB")
    return finished


def _landed(run: Run) -> int:
    batches = run.events("batch_committed")
    return batches[-1]["total"] if batches else 0


def assert_exactly_the_delivered(stream: Stream, rows: list[dict[str, Any]]) -> None:
    lineages = [r["corridor_lineage"] for r in rows]
    assert len(lineages) == len(set(lineages)), "duplicates"
    assert set(lineages) == set(stream.delivered)
    assert not set(lineages) & stream.kept_home
    env = stream.env
    for r in rows:
        assert (r["corridor_origin"], r["corridor_destination"]) == (env.origin, env.dest)
        assert r["corridor_jurisdiction"] == "HK" and r["corridor_policy"].startswith(env.name)
        assert r["corridor_key"]  # the data key id: contact_email is encrypted
        assert "national_id" not in r  # dropped by the corridor
        source = stream.source[r["shipment_id"]]
        assert r["contact_email"] == source["contact_email"]  # decrypted: the park's value
        assert r["contact_name"] == source["contact_name"]


def test_duckdb_sink_holds_each_delivered_record_once_across_kills(stream, tmp_path):
    database = tmp_path / "analytics.duckdb"
    sink_killed_twice(stream, tmp_path, "duckdb", "--database", str(database))
    con = duckdb.connect(str(database), read_only=True)
    try:
        cursor = con.execute("SELECT * FROM trade_shipment")
        names = [d[0] for d in cursor.description]
        rows = [dict(zip(names, values, strict=True)) for values in cursor.fetchall()]
        stored = dict(con.execute("SELECT partition, next_offset FROM _corridor_offsets")
                      .fetchall())
    finally:
        con.close()
    assert_exactly_the_delivered(stream, rows)
    topic = topics.corridor_topic(stream.env.origin, stream.env.dest, DATASET)
    ends = watermarks(zone_endpoint(stream.env.config, stream.env.dest), stream.admin, topic)
    # The stored offsets are at the end (the last transaction marker aside).
    assert all(ends[p][1] - 1 <= stored[p] <= ends[p][1] for p in stored) and stored


def test_parquet_sink_holds_each_delivered_record_once_across_kills(stream, tmp_path):
    from connectors.sink.parquet.target import PARTITIONING

    root = tmp_path / "lake"
    sink_killed_twice(stream, tmp_path, "parquet", "--out", str(root))
    by_arrow = pads.dataset(root, partitioning=PARTITIONING).to_table().to_pylist()
    assert_exactly_the_delivered(stream, by_arrow)
    assert {(r["corridor"], r["dataset"]) for r in by_arrow} == {(stream.env.name, DATASET)}
    con = duckdb.connect()
    try:
        cursor = con.execute(f"SELECT * FROM read_parquet('{root}/**/*.parquet', "
                             "hive_partitioning = true)")
        names = [d[0] for d in cursor.description]
        by_duckdb = [dict(zip(names, v, strict=True)) for v in cursor.fetchall()]
    finally:
        con.close()
    assert_exactly_the_delivered(stream, by_duckdb)
    assert not [p for p in root.rglob("*") if p.name.startswith(".")]  # no temporary left


def test_iceberg_sink_holds_each_delivered_record_once_across_kills(stream, tmp_path):
    from connectors.sink.iceberg_target import catalog_at, snapshot_offsets

    warehouse = tmp_path / "warehouse"
    sink_killed_twice(stream, tmp_path, "iceberg", "--warehouse", str(warehouse))
    table = catalog_at(warehouse).load_table("corridor.trade_shipment")
    assert_exactly_the_delivered(stream, table.scan().to_arrow().to_pylist())
    topic = topics.corridor_topic(stream.env.origin, stream.env.dest, DATASET)
    assert set(snapshot_offsets(table)) == {topic}


def test_a_sink_without_decrypt_keeps_the_ciphertext(stream, tmp_path):
    database = tmp_path / "sealed.duckdb"
    run = Run(tmp_path / "sealed.log", "connect", "sink", "duckdb", "--corridor",
              stream.env.name, "--database", str(database), "--idle", "3",
              "-c", str(stream.env.path))
    try:
        assert run.wait(300) == 0
    finally:
        run.close()
    con = duckdb.connect(str(database), read_only=True)
    try:
        emails = con.execute("SELECT shipment_id, contact_email FROM trade_shipment "
                             "WHERE contact_email IS NOT NULL").fetchall()
    finally:
        con.close()
    assert len(emails) > len(stream.delivered) // 2
    for shipment_id, sealed in emails:
        assert isinstance(sealed, bytes)
        assert stream.source[shipment_id]["contact_email"].encode() not in sealed
