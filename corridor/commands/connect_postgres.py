"""`corridor connect postgres` (a local PostgreSQL cluster) and `corridor connect source
postgres` (a table captured into a park's topic by Debezium on a Kafka Connect worker).

The work is in ``connectors.debezium``; this module resolves what it needs (the corridor
file, the zone's endpoint, the park's principal with the one resolver, a Java 17+), starts
and stops the processes and prints what they do. Exit codes: 0 done, 1 an operator error
(printed on one line: no such dataset, PostgreSQL not installed, the connector failed...).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from connectors.debezium.config import (
    Capture,
    connector_properties,
    kafka_client_properties,
    worker_properties,
)
from connectors.debezium.postgres import DEFAULT_PORT, Connection, LocalPostgres, table_identifier
from connectors.debezium.worker import ConnectWorker, WorkerStatus
from connectors.errors import ConnectError
from corridor.commands.connect import _principal
from corridor.commands.options import config_option, emit_json, output_option, table
from corridor.core.acl import park_principal
from corridor.core.config import Config, load_config
from corridor.core.errors import ConfigError, KafkaUnavailable
from corridor.core.topics import outbound
from corridor.kafka.clients import client_config
from corridor.kafka.io import watermarks
from corridor.processor.resolve import zone_endpoint
from corridor.zones.launcher import java_major_version
from corridor.zones.local import home
from corridor.zones.registry import find_java

JAVA_MINIMUM = 17  # Kafka Connect 4 and Debezium 3
REST_PORT = 18083
START_TIMEOUT_S = 180.0


def local_cluster(port: int | None = None) -> LocalPostgres:
    """The development cluster in ``<CORRIDOR_HOME>/.zones/postgres`` (port:
    ``CORRIDOR_PG_PORT``, default 15432)."""
    chosen = port or int(os.environ.get("CORRIDOR_PG_PORT", DEFAULT_PORT))
    return LocalPostgres(home() / ".zones" / "postgres", chosen)


# --- the local cluster ---------------------------------------------------------------------

@click.group("postgres")
def postgres_cluster() -> None:
    """A local PostgreSQL cluster for change data capture (development and tests)."""


@postgres_cluster.command("up")
def cluster_up() -> None:
    """Create (first time) and start the cluster in .zones/postgres: 127.0.0.1 only,
    wal_level=logical, database `corridor`, replication role `corridor_cdc` (passwords in
    .zones/postgres/secrets.json, 0600)."""
    pg = local_cluster()
    created = not pg.initialized()
    pg.init()
    started = pg.start()
    how = "created and started" if created else ("started" if started else "already running")
    conn = pg.connection()
    click.echo(f"postgres: {how} on {conn.host}:{conn.port}, database {conn.database}, "
               f"capture role {conn.user} (password in {pg.secrets_path})")


@postgres_cluster.command("down")
def cluster_down() -> None:
    """Stop the local cluster (its data stays in .zones/postgres)."""
    pg = local_cluster()
    click.echo("postgres: stopped" if pg.stop() else "postgres: not running")


@postgres_cluster.command("status")
@output_option
def cluster_status(output: str) -> None:
    """Whether the local cluster runs, and where."""
    pg = local_cluster()
    doc = {"folder": str(pg.root), "port": pg.port, "initialized": pg.initialized(),
           "running": pg.running()}
    if output == "json":
        emit_json(doc)
    else:
        state = "running" if doc["running"] else "stopped" if doc["initialized"] else "absent"
        click.echo(f"postgres: {state} ({pg.root}, 127.0.0.1:{pg.port})")


# --- the capture ---------------------------------------------------------------------------

@click.group("postgres")
def postgres_source() -> None:
    """Capture a PostgreSQL table into <zone>.outbound.<dataset> (Debezium on Kafka Connect).

    Each insert or update becomes one JSON record (the full row) keyed by --key-column;
    each delete a tombstone, which crosses an avro corridor as a tombstone under the key
    policy (README, connectors)."""


def _capture_options(fn: Any) -> Any:
    options = [
        click.option("--zone", required=True, help="The park's zone (origin cluster)."),
        click.option("--dataset", required=True, help="Dataset the table's rows are records of."),
        click.option("--name", default="cdc", show_default=True,
                     help="Job name (one worker, replication slot and publication per name)."),
        click.option("--state-dir", default=None, type=click.Path(file_okay=False),
                     help="The worker's files (default .corridor/connect/<topic>/<name>)."),
        click.option("--rest-port", default=REST_PORT, show_default=True, type=int,
                     help="The worker's REST API port (127.0.0.1)."),
        config_option,
        output_option,
    ]
    for option in reversed(options):
        fn = option(fn)
    return fn


@postgres_source.command("start")
@click.option("--table", "table_name", required=True, help="[schema.]table to capture.")
@click.option("--key-column", required=True,
              help="Key each record by this column (the primary key, or the person it is about).")
@click.option("--pg-host", default=None,
              help="PostgreSQL host (default: the local cluster of `corridor connect postgres "
                   "up`, which also gets the table's grants and publication).")
@click.option("--pg-port", default=5432, show_default=True, type=int)
@click.option("--pg-database", default="postgres", show_default=True)
@click.option("--pg-user", default=None, help="A role with REPLICATION and SELECT on the table.")
@click.option("--pg-password-env", default="PGPASSWORD", show_default=True,
              help="Environment variable holding that role's password.")
@click.option("--create-publication", is_flag=True,
              help="With --pg-host: let Debezium create the publication (the role must own "
                   "the table); by default it must exist, named like the replication slot, "
                   "corridor_<zone>_<dataset>_<name> with every other character as _.")
@click.option("--principal", "principal_name", default=None,
              help="Write as this principal (default park-<zone>-<dataset> when it exists, "
                   "else the admin).")
@click.option("--timeout", default=START_TIMEOUT_S, show_default=True, type=float,
              help="Seconds to wait for the connector and its task to run.")
@_capture_options
def capture_start(table_name: str, key_column: str, pg_host: str | None, pg_port: int,
                  pg_database: str, pg_user: str | None, pg_password_env: str,
                  create_publication: bool, principal_name: str | None, timeout: float,
                  zone: str, dataset: str, name: str, state_dir: str | None, rest_port: int,
                  config_path: str, output: str) -> None:
    """Start capturing TABLE: a snapshot of its rows, then every change, into the park topic.

    Runs a standalone Kafka Connect worker in the background (stop it with `stop`) and
    returns once the connector and its task run. The worker keeps its source offsets in
    the state folder: started again, it resumes where it stopped (changes since its last
    offset flush, at most a second, are sent again)."""
    config = load_config(Path(config_path))
    _check_dataset(config, config_path, dataset, key_column)
    table = table_identifier(table_name)
    if pg_host is None:
        pg = local_cluster()
        if not pg.running():
            raise ConnectError("postgres", "the local cluster is not running: run `corridor "
                                           "connect postgres up` (or give --pg-host)")
        probe = Capture(zone, dataset, table, key_column, None, name)
        pg.capture_table(table, probe.slot)
        database, create = pg.connection(), False
    else:
        if not pg_user or pg_password_env not in os.environ:
            raise click.BadParameter(f"--pg-user and ${pg_password_env} are needed with "
                                     "--pg-host", param_hint="--pg-user")
        database = Connection(pg_host, pg_port, pg_database, pg_user, os.environ[pg_password_env])
        create = create_publication
    capture = Capture(zone, dataset, table, key_column, database, name, create)
    principal = _principal(principal_name, park_principal(zone, dataset))
    client = kafka_client_properties(client_config(zone_endpoint(config, zone), principal))
    worker = _worker(capture.topic, name, state_dir, rest_port, capture.connector_name)
    libs = home() / ".kafka" / "connect"
    pid = worker.start(_java(), worker_properties(client, worker.folder, libs / "plugins",
                                                  rest_port), connector_properties(capture))
    seen: list[str] = []

    def show(now: WorkerStatus) -> None:
        state = now.connector or "starting"
        if output != "json" and (not seen or seen[-1] != state):
            click.echo(f"{capture.connector_name}: {state.lower()}", err=True)
        seen.append(state)

    try:
        now = worker.wait_running(timeout, show)
    except ConnectError:
        worker.stop()
        raise
    _print_status(config, capture.topic, principal_name, zone, dataset, worker, now, output,
                  {"pid": pid, "table": table, "slot": capture.slot})


@postgres_source.command("status")
@click.option("--principal", "principal_name", default=None,
              help="Read the park topic's size as this principal (default park-<zone>-<dataset>).")
@_capture_options
def capture_status(principal_name: str | None, zone: str, dataset: str, name: str,
                   state_dir: str | None, rest_port: int, config_path: str, output: str) -> None:
    """The worker's pid, the connector's and task's state, records in the park topic, and
    the worker's peak memory."""
    config = load_config(Path(config_path))
    topic = outbound(zone, dataset)
    worker = _worker(topic, name, state_dir, rest_port, f"corridor-{zone}-{dataset}-{name}")
    _print_status(config, topic, principal_name, zone, dataset, worker, worker.status(), output,
                  {})


@postgres_source.command("stop")
@_capture_options
def capture_stop(zone: str, dataset: str, name: str, state_dir: str | None, rest_port: int,
                 config_path: str, output: str) -> None:
    """Stop the worker (it flushes its offsets first). The replication slot stays, so that
    `start` resumes; PostgreSQL keeps the WAL the slot has not confirmed meanwhile."""
    topic = outbound(zone, dataset)
    worker = _worker(topic, name, state_dir, rest_port, f"corridor-{zone}-{dataset}-{name}")
    pid = worker.stop()
    if output == "json":
        emit_json({"stopped": pid})
    else:
        click.echo(f"worker stopped (pid {pid})" if pid else "no worker running")


def _check_dataset(config: Config, config_path: str, dataset: str, key_column: str) -> None:
    if dataset not in config.datasets:
        raise ConfigError(config_path, None, f"datasets.{dataset}", "no such dataset")
    if config.datasets[dataset].schema.field_type(key_column) is None:
        raise click.BadParameter(f"{dataset} has no field {key_column!r}",
                                 param_hint="--key-column")


def _worker(topic: str, name: str, state_dir: str | None, rest_port: int,
            connector: str) -> ConnectWorker:
    folder = Path(state_dir or Path(".corridor") / "connect" / topic / name).resolve()
    return ConnectWorker(folder, home() / ".kafka" / "connect" / "libs", rest_port, connector)


def _java() -> str:
    java = os.environ.get("CORRIDOR_JAVA") or shutil.which("java")
    if java and (java_major_version(java) or 0) >= JAVA_MINIMUM:
        return java
    return find_java(JAVA_MINIMUM)


def _records(config: Config, zone: str, topic: str, principal_name: str | None,
             dataset: str) -> int | None:
    principal = _principal(principal_name, park_principal(zone, dataset))
    try:
        marks = watermarks(zone_endpoint(config, zone), principal, topic)
    except KafkaUnavailable:
        return None
    return sum(high for _, high in marks.values())


def _print_status(config: Config, topic: str, principal_name: str | None, zone: str,
                  dataset: str, worker: ConnectWorker, now: WorkerStatus, output: str,
                  extra: dict[str, Any]) -> None:
    doc = {"connector": worker.connector, "topic": topic, "pid": now.pid,
           "state": now.connector, "tasks": list(now.tasks), "errors": list(now.errors),
           "records_in_topic": _records(config, zone, topic, principal_name, dataset),
           "worker_peak_rss_mib": now.peak_rss_mib, "folder": str(worker.folder), **extra}
    if output == "json":
        emit_json(doc)
        return
    out = table(f"{worker.connector} -> {topic}")
    out.add_column("")
    out.add_column("")
    for key in ("pid", "state", "tasks", "records_in_topic", "worker_peak_rss_mib", "folder",
                "errors"):
        value = doc[key]
        out.add_row(key, ", ".join(value) if isinstance(value, list) else str(value))
    Console().print(out)
