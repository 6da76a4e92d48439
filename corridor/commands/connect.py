"""`corridor connect`: file sources into a park's topic, analytics sinks from corridor topics.

The work is in the top-level ``connectors`` package; this module resolves what it needs
from the corridor file and the environment (endpoints, principals, key providers, with the
one resolver), shows progress, prints the summary and maps SIGTERM/Ctrl-C to "finish the
batch, then stop" (a second signal exits at once: the open transaction aborts).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

from connectors.errors import ConnectError
from connectors.resources import peak_rss_mib
from connectors.sink.feed import CorridorFeed
from connectors.sink.loop import SinkRun, Target, run_sink
from connectors.sink.table import SinkTable, corridor_egress
from connectors.source.discover import Watcher, matching
from connectors.source.loader import FileLoader, FileReport, SourceJob
from connectors.source.rejects import RejectsFile, write_summary
from corridor import log as corridor_log
from corridor.commands.options import config_option, emit_json, output_option, table
from corridor.commands.run import install_signals
from corridor.core.config import Config, load_config
from corridor.core.errors import ConfigError
from corridor.core.topics import corridor_topic
from corridor.processor.resolve import credentials, kek_provider, zone_endpoint
from corridor.sdk import ParkProducer
from corridor.zones.credentials import Principal

FORMATS = ("csv", "jsonl", "parquet", "avro")


@click.group()
def connect() -> None:
    """Connectors: load files into a park's topic, land corridor streams in tables."""


@connect.group()
def source() -> None:
    """Bring data into <zone>.outbound.<dataset> (exactly once across crashes)."""


@source.command("file")
@click.argument("paths", nargs=-1, required=True)
@click.option("--zone", required=True, help="The park's zone (origin cluster).")
@click.option("--dataset", required=True, help="Dataset the rows are records of.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default=None,
              help="File format (default: by extension: .csv .tsv .jsonl .ndjson .json "
                   ".parquet .avro).")
@click.option("--delimiter", default=None, help="CSV delimiter (default , or tab for .tsv).")
@click.option("--key-field", default=None,
              help="Key each record by this (dotted) field: the dataset's person key.")
@click.option("--follow", is_flag=True, help="Keep watching the paths for new or grown files.")
@click.option("--poll", default=2.0, show_default=True, type=click.FloatRange(0.05),
              help="--follow: seconds between scans.")
@click.option("--settle", default=2.0, show_default=True, type=click.FloatRange(0),
              help="--follow: a file is loaded once unchanged for this many seconds.")
@click.option("--batch-rows", default=5000, show_default=True, type=click.IntRange(1),
              help="Rows per transaction.")
@click.option("--name", default="files", show_default=True,
              help="Job name: runs with the same name fence each other.")
@click.option("--report-dir", default=None, type=click.Path(file_okay=False),
              help="Where rejects.jsonl and summary.json go "
                   "(default .corridor/connect/<topic>/<name>).")
@click.option("--principal", "principal_name", default=None,
              help="Write as this principal of the credentials file (default: the admin; a "
                   "park's principal needs write on <zone>.connect.progress and its "
                   "transactional id).")
@config_option
@output_option
def file(paths: tuple[str, ...], zone: str, dataset: str, fmt: str | None,
         delimiter: str | None, key_field: str | None, follow: bool, poll: float,
         settle: float, batch_rows: int, name: str, report_dir: str | None,
         principal_name: str | None, config_path: str, output: str) -> None:
    """Load PATHS (files, globs or folders) into <ZONE>.outbound.<DATASET>.

    Rows are converted to the dataset's schema; a row that does not fit goes to the
    rejects file with its file, line (or row group and row) and column, and the load
    goes on. Each batch and the file's progress are one Kafka transaction: run it again
    after a crash and it resumes where the last commit left off.
    """
    config = load_config(Path(config_path))
    if dataset not in config.datasets:
        raise ConfigError(config_path, None, f"datasets.{dataset}", "no such dataset")
    if key_field and config.datasets[dataset].schema.field_type(key_field) is None:
        raise click.BadParameter(f"{dataset} has no field {key_field!r}", param_hint="--key-field")
    principal = _principal(principal_name, None)  # a park principal lacks the progress rights
    park = ParkProducer(config, zone, dataset, principal)
    job = SourceJob(zone, dataset, name, fmt, delimiter, key_field, batch_rows)
    folder = Path(report_dir or Path(".corridor") / "connect" / park.topic / name)
    rejects = RejectsFile(folder / "rejects.jsonl")
    stop = _stop_on_signals()
    began = time.monotonic()
    with _FileProgress() as shown:
        loader = FileLoader(park, job, zone_endpoint(config, zone), principal, rejects,
                            on_batch=shown.update)
        loader.start()
        try:
            if follow:
                _follow(loader, Watcher(paths, fmt, settle), poll, stop)
            else:
                loader.load(_existing(paths, fmt), stop.is_set)
        finally:
            loader.close()
    summary = _summary(loader, rejects, time.monotonic() - began)
    write_summary(folder / "summary.json", summary)
    _print_summary(summary, output)


def _existing(paths: tuple[str, ...], fmt: str | None) -> list[str]:
    found = matching(paths, fmt)
    if not found:
        raise ConnectError(" ".join(paths), "no file matches (a folder's files need a known "
                                            "extension, or --format)")
    return found


def _follow(loader: FileLoader, watcher: Watcher, poll: float, stop: threading.Event) -> None:
    log = corridor_log.get_logger("corridor.connect")
    while not stop.is_set():
        for path in watcher.ready():
            if stop.is_set():
                return
            if loader.is_done(path):
                continue
            try:
                loader.load_file(path, stop.is_set)
            except ConnectError as exc:  # gone or unreadable now: the next scan tries again
                log.warning("file_skipped", path=path, error=str(exc))
        stop.wait(poll)


def _summary(loader: FileLoader, rejects: RejectsFile, seconds: float) -> dict[str, Any]:
    loaded = sum(r.this_run_loaded for r in loader.reports)
    rejected = sum(r.this_run_rejected for r in loader.reports)
    return {
        "topic": loader.topic, "job": loader.job.name, "seconds": round(seconds, 3),
        "loaded": loaded, "rejected": rejected,
        "rows_per_s": round((loaded + rejected) / seconds, 1) if seconds > 0 else None,
        "peak_rss_mib": peak_rss_mib(),
        "rejects_file": str(rejects.path), "reject_reasons": rejects.reasons(loader.topic),
        "files": [vars(r) for r in loader.reports],
    }


def _print_summary(summary: dict[str, Any], output: str) -> None:
    if output == "json":
        emit_json(summary)
        return
    out = table(f"{summary['topic']}: {summary['loaded']} loaded, {summary['rejected']} "
                f"rejected in {summary['seconds']:.1f} s ({summary['rows_per_s'] or 0:,.0f} "
                f"rows/s, peak RSS {summary['peak_rss_mib']} MiB)")
    for column in ("file", "format", "status", "loaded", "rejected", "done", "error"):
        out.add_column(column)
    for r in summary["files"]:
        out.add_row(r["path"], r["format"], r["why"], str(r["this_run_loaded"]),
                    str(r["this_run_rejected"]), "yes" if r["done"] else "no", r["error"] or "")
    Console().print(out)
    for reason, count in list(summary["reject_reasons"].items())[:10]:
        click.echo(f"  {count:>8}  {reason}")
    click.echo(f"rejects: {summary['rejects_file']}")


class _FileProgress:
    """A rich progress bar per file on a terminal (stderr), rows/s included; silent otherwise."""

    def __init__(self) -> None:
        console = Console(stderr=True)
        self.progress = Progress(
            TextColumn("[bold]{task.description}"), BarColumn(),
            TextColumn("{task.completed:,.0f} rows"), TextColumn("{task.fields[rate]}"),
            TextColumn("[red]{task.fields[rejected]} rejected"), TimeElapsedColumn(),
            console=console, disable=not console.is_terminal)
        self.tasks: dict[str, TaskID] = {}

    def update(self, report: FileReport) -> None:
        if report.path not in self.tasks:
            self.tasks[report.path] = self.progress.add_task(
                Path(report.path).name, total=report.total, completed=report.start,
                rate="", rejected=0)
        task = self.tasks[report.path]
        self.progress.update(task, completed=report.next, total=report.total or None)
        speed = self.progress.tasks[task].speed
        self.progress.update(task, rate=f"{speed:,.0f} rows/s" if speed else "",
                             rejected=report.this_run_rejected)

    def __enter__(self) -> _FileProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()


# --- sinks -------------------------------------------------------------------------------

@connect.group()
def sink() -> None:
    """Land corridor.<from>-<to>.<dataset> in a table (exactly once across crashes)."""


def _sink_options(fn: Callable[..., Any]) -> Callable[..., Any]:
    options = [
        click.option("--corridor", "corridor_name", required=True, help="The corridor."),
        click.option("--dataset", default=None,
                     help="The dataset (default: the corridor's only one)."),
        click.option("--decrypt", is_flag=True,
                     help="Decrypt encrypted fields with the destination zone's KEK "
                          "(default: keep the ciphertext)."),
        click.option("--date-field", default=None,
                     help="Take event_date from this timestamp or date field (default: the "
                          "record timestamp)."),
        click.option("--batch-records", default=5000, show_default=True,
                     type=click.IntRange(1), help="Rows per commit at most."),
        click.option("--max-wait", default=1.0, show_default=True, type=click.FloatRange(0.01),
                     help="Seconds a batch waits to fill before it is committed."),
        click.option("--idle", default=None, type=click.FloatRange(0),
                     help="Stop once nothing arrived for this many seconds (default: follow)."),
        click.option("--principal", "principal_name", default=None,
                     help="Read as this principal (default: analytics-<zone> when it exists, "
                          "else the admin)."),
        config_option,
        output_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@sink.command("duckdb")
@click.option("--database", required=True, type=click.Path(dir_okay=False),
              help="DuckDB database file (created when missing).")
@click.option("--table", "table_name", default=None,
              help="Table (default: the dataset, dots as underscores).")
@_sink_options
def duckdb_sink(database: str, table_name: str | None, **common: Any) -> None:
    """Land a corridor topic in a DuckDB table; the offsets live in _corridor_offsets."""
    from connectors.sink.duckdb_target import DuckDbTarget

    def target(topic: str, table: SinkTable) -> Target:
        name = table_name or table.dataset.replace(".", "_")
        return DuckDbTarget(database, name, topic, table.schema)

    _run_sink(target, **common)


@sink.command("parquet")
@click.option("--out", "root", required=True, type=click.Path(file_okay=False),
              help="Dataset folder: corridor=<c>/dataset=<d>/event_date=<YYYY-MM-DD>/*.parquet.")
@_sink_options
def parquet_sink(root: str, **common: Any) -> None:
    """Land a corridor topic in a Parquet dataset partitioned by corridor, dataset, date."""
    from connectors.sink.parquet.target import ParquetTarget

    def target(_topic: str, table: SinkTable) -> Target:
        return ParquetTarget(root, table.corridor, table.dataset)

    _run_sink(target, **common)


@sink.command("iceberg")
@click.option("--warehouse", required=True, type=click.Path(file_okay=False),
              help="Warehouse folder (data, metadata and, by default, the SQLite catalog).")
@click.option("--catalog-uri", default=None,
              help="SQLAlchemy URI of the SQL catalog (default sqlite:///<warehouse>/catalog.db).")
@click.option("--table", "identifier", default=None,
              help="namespace.table (default: corridor.<dataset, dots as underscores>).")
@_sink_options
def iceberg_sink(warehouse: str, catalog_uri: str | None, identifier: str | None,
                 **common: Any) -> None:
    """Land a corridor topic in an Apache Iceberg table; offsets in each snapshot's summary."""
    from connectors.sink.iceberg_target import IcebergTarget

    def target(topic: str, table: SinkTable) -> Target:
        name = identifier or f"corridor.{table.dataset.replace('.', '_')}"
        return IcebergTarget(warehouse, name, topic, table.schema, catalog_uri)

    _run_sink(target, **common)


def _run_sink(make_target: Callable[[str, SinkTable], Target], *, corridor_name: str,
              dataset: str | None, decrypt: bool, date_field: str | None, batch_records: int,
              max_wait: float, idle: float | None, principal_name: str | None,
              config_path: str, output: str) -> None:
    config = load_config(Path(config_path))
    corridor = config.corridors.get(corridor_name)
    if corridor is None:
        raise click.BadParameter(f"no corridor {corridor_name!r}", param_hint="--corridor")
    if dataset is None:
        if len(corridor.datasets) != 1:
            raise click.BadParameter(f"{corridor_name} carries {', '.join(corridor.datasets)}: "
                                     "name one", param_hint="--dataset")
        dataset = corridor.datasets[0]
    stop = _stop_on_signals()
    topic, run = land(config, corridor_name, dataset, make_target, decrypt=decrypt,
                      date_field=date_field, batch_records=batch_records, max_wait=max_wait,
                      idle=idle, principal_name=principal_name, stop=stop.is_set)
    _print_sink(topic, run, output)


def land(config: Config, corridor_name: str, dataset: str,
         make_target: Callable[[str, SinkTable], Target], *, decrypt: bool = False,
         date_field: str | None = None, batch_records: int = 5000, max_wait: float = 1.0,
         idle: float | None = None, principal_name: str | None = None,
         stop: Callable[[], bool] = lambda: False) -> tuple[str, SinkRun]:
    """Land ``dataset``'s stream of ``corridor_name`` in a target (the sinks' one path, also
    `corridor demo`'s): the corridor topic and what the run landed."""
    corridor = config.corridors[corridor_name]
    egress = corridor_egress(config, corridor_name, dataset)
    table = SinkTable(corridor_name, dataset, egress, decrypt, date_field)
    topic = corridor_topic(corridor.origin, corridor.destination, dataset)
    endpoint = zone_endpoint(config, corridor.destination)
    principal = _principal(principal_name, f"analytics-{corridor.destination}")
    target = make_target(topic, table)
    try:
        feed = CorridorFeed(endpoint, principal, topic, target.stored(),
                            kek_provider(config, corridor.destination) if decrypt else None)
        try:
            run = run_sink(feed, target, table, batch_records=batch_records, max_wait_s=max_wait,
                           idle_s=idle, stop=stop)
        finally:
            feed.close()
    finally:
        target.close()
    return topic, run


def _print_sink(topic: str, run: SinkRun, output: str) -> None:
    doc = {"topic": topic, "records": run.records, "messages": run.messages,
           "batches": run.batches, "seconds": round(run.seconds, 3),
           "records_per_s": round(run.rate, 1), "peak_rss_mib": peak_rss_mib()}
    if output == "json":
        emit_json(doc)
    else:
        click.echo(f"{topic}: {run.records} records landed in {run.batches} batches, "
                   f"{run.seconds:.1f} s ({run.rate:,.0f} records/s), "
                   f"peak RSS {doc['peak_rss_mib']} MiB")


def _principal(name: str | None, preferred: str | None) -> Principal:
    creds = credentials()
    if name:
        return creds.get(name)
    if preferred is None:
        return creds.admin
    if preferred in creds.principals:
        return creds.principals[preferred]
    corridor_log.get_logger("corridor.connect").warning(
        "running_as_admin", principal=creds.admin.username, wanted=preferred)
    return creds.admin


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    install_signals(stop)
    return stop


# PostgreSQL through Debezium: its own module (corridor/commands/connect_postgres.py), which
# uses _principal above, hence imported last.
from corridor.commands.connect_postgres import postgres_cluster, postgres_source  # noqa: E402

source.add_command(postgres_source)
connect.add_command(postgres_cluster)
