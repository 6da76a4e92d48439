"""A local PostgreSQL cluster for change data capture: development and tests, not production.

Layout under ``root`` (``.zones/postgres`` for ``make connect-postgres``, a temporary folder
in tests): ``secrets.json`` (0600, the superuser's and the capture role's passwords, never
printed) and ``cluster/``, owned by the ``postgres`` user, holding ``data/`` (the cluster)
and ``postgres.log``. The server refuses to run as root, so when this process is root every
server command runs as ``postgres`` through ``runuser``; otherwise as the current user.

The cluster listens on 127.0.0.1 only (no Unix socket), with ``wal_level=logical`` (what
logical decoding, hence Debezium's ``pgoutput`` plugin, needs) and password authentication
(SCRAM) for every connection, replication included. ``init`` creates the database
``corridor`` and the role ``corridor_cdc`` (LOGIN REPLICATION); ``capture_table`` grants it
SELECT on a table (the initial snapshot reads it) and creates the table's publication.

Does not own: Debezium's replication slot (the connector creates it on first start and
resumes from it; ``drop_slot`` removes it), the tables (the caller's), the server binaries
(Debian's ``postgresql`` package: ``make connect-postgres`` installs it when missing).
"""

from __future__ import annotations

import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from connectors.debezium.worker import write_private
from connectors.errors import ConnectError

DEFAULT_PORT = 15432  # below Linux's ephemeral range (32768-60999), like the zones' ports
DATABASE = "corridor"
SUPERUSER = "postgres"
CDC_ROLE = "corridor_cdc"
PG_USER = "postgres"  # the OS user the server runs as when we are root
BIN_FOLDERS = Path("/usr/lib/postgresql")
START_TIMEOUT_S = 60
SETTINGS = {
    "listen_addresses": "'127.0.0.1'",
    "unix_socket_directories": "''",
    "wal_level": "logical",
    "max_wal_senders": "8",
    "max_replication_slots": "8",
    "shared_buffers": "32MB",
    "log_min_messages": "warning",
}
_IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]*(\.[a-z_][a-z0-9_]*)?$")


@dataclass(frozen=True, slots=True)
class Connection:
    """How a client reaches the cluster as ``user`` (the password is not printed)."""

    host: str
    port: int
    database: str
    user: str
    password: str

    def __repr__(self) -> str:
        return f"Connection({self.user}@{self.host}:{self.port}/{self.database})"


def find_bindir() -> Path:
    """The folder of ``initdb`` and ``pg_ctl``: ``CORRIDOR_PG_BIN``, else the newest
    ``/usr/lib/postgresql/<version>/bin`` (Debian's layout), else where ``pg_ctl`` is on PATH."""
    chosen = os.environ.get("CORRIDOR_PG_BIN")
    candidates = [Path(chosen)] if chosen else []
    if BIN_FOLDERS.is_dir():
        versions = sorted((p for p in BIN_FOLDERS.iterdir() if p.name.isdigit()),
                          key=lambda p: int(p.name), reverse=True)
        candidates += [v / "bin" for v in versions]
    on_path = shutil.which("pg_ctl")
    if on_path:
        candidates.append(Path(os.path.realpath(on_path)).parent)
    for folder in candidates:
        if (folder / "initdb").exists() and (folder / "pg_ctl").exists():
            return folder
    raise ConnectError("postgres", "PostgreSQL's server is not installed (initdb, pg_ctl): run "
                                   "`make connect-postgres` (apt-get install postgresql) or set "
                                   "CORRIDOR_PG_BIN")


def table_identifier(name: str) -> str:
    """``schema.table`` or ``table`` in lower case (refused otherwise: it goes into SQL)."""
    if not _IDENTIFIER.match(name):
        raise ConnectError(name, "a table is [schema.]name in lower case letters, digits and _")
    return name if "." in name else f"public.{name}"


class LocalPostgres:
    """One local cluster under ``root`` listening on 127.0.0.1:``port``."""

    def __init__(self, root: Path, port: int = DEFAULT_PORT, bindir: Path | None = None) -> None:
        self.root = root
        self.port = port
        self.bindir = bindir or find_bindir()
        self.cluster = root / "cluster"
        self.data = self.cluster / "data"
        self.log = self.cluster / "postgres.log"
        self.secrets_path = root / "secrets.json"

    # -- lifecycle -------------------------------------------------------------------------

    def initialized(self) -> bool:
        return (self.data / "PG_VERSION").exists()

    def init(self) -> None:
        """Create the cluster, its database and the capture role (nothing when it exists)."""
        if self.initialized():
            return
        self.root.mkdir(parents=True, exist_ok=True)
        self.root.chmod(0o755)  # the server's user must reach cluster/
        shutil.rmtree(self.cluster, ignore_errors=True)
        self.cluster.mkdir(mode=0o700)
        passwords = {SUPERUSER: secrets.token_urlsafe(18), CDC_ROLE: secrets.token_urlsafe(18)}
        write_private(self.secrets_path, json.dumps(passwords))
        pwfile = self.cluster / "pwfile"
        write_private(pwfile, passwords[SUPERUSER] + "\n")
        self._give_to_server_user(self.cluster, pwfile)
        try:
            self._server(str(self.bindir / "initdb"), "-D", str(self.data), "-U", SUPERUSER,
                         "--auth=scram-sha-256", f"--pwfile={pwfile}", "-E", "UTF8",
                         "--locale=C.UTF-8", what="initdb")
        finally:
            pwfile.unlink(missing_ok=True)
        with open(self.data / "postgresql.conf", "a") as conf:
            conf.write("\n# corridor (connectors/debezium/postgres.py)\n")
            conf.writelines(f"{k} = {v}\n" for k, v in SETTINGS.items())
            conf.write(f"port = {self.port}\n")
        self.start()
        self.sql(f"CREATE DATABASE {DATABASE}", database="postgres")
        self.sql(f"CREATE ROLE {CDC_ROLE} LOGIN REPLICATION PASSWORD "
                 f"'{passwords[CDC_ROLE]}'", database="postgres")

    def running(self) -> bool:
        if not self.initialized():
            return False
        done = subprocess.run(self._as_server(str(self.bindir / "pg_ctl"), "-D", str(self.data),
                                              "status"),
                              capture_output=True, text=True, check=False)
        return done.returncode == 0

    def start(self) -> bool:
        """Start the server and wait until it accepts connections; False when it ran already."""
        if self.running():
            return False
        self._server(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-l", str(self.log),
                     "-w", "-t", str(START_TIMEOUT_S), "start", what="pg_ctl start")
        return True

    def stop(self) -> bool:
        """Stop the server (fast shutdown); False when it was not running."""
        if not self.running():
            return False
        self._server(str(self.bindir / "pg_ctl"), "-D", str(self.data), "-m", "fast", "-w",
                     "stop", what="pg_ctl stop")
        return True

    # -- clients ---------------------------------------------------------------------------

    def connection(self, user: str = CDC_ROLE) -> Connection:
        try:
            password = json.loads(self.secrets_path.read_text())[user]
        except (OSError, ValueError, KeyError):
            raise ConnectError(str(self.secrets_path), f"no password for {user}: run "
                                                       "`corridor connect postgres up`") from None
        return Connection("127.0.0.1", self.port, DATABASE, user, password)

    def sql(self, statement: str, database: str = DATABASE) -> list[list[str]]:
        """Run ``statement`` as the superuser; rows of the last result as lists of text."""
        conn = self.connection(SUPERUSER)
        done = subprocess.run(
            [str(self.bindir / "psql"), "-h", conn.host, "-p", str(conn.port), "-U", conn.user,
             "-d", database, "-v", "ON_ERROR_STOP=1", "-X", "-q", "-A", "-t", "-F", "\t",
             "-c", statement],
            capture_output=True, text=True, check=False,
            env={**os.environ, "PGPASSWORD": conn.password, "PGCONNECT_TIMEOUT": "10"})
        if done.returncode != 0:
            raise ConnectError(f"postgres {conn.host}:{conn.port}/{database}",
                               done.stderr.strip().splitlines()[-1] if done.stderr.strip()
                               else f"psql exited with {done.returncode}")
        return [line.split("\t") for line in done.stdout.splitlines() if line]

    def capture_table(self, table: str, publication: str) -> None:
        """Let the capture role read ``table`` and publish its changes (idempotent)."""
        table = table_identifier(table)
        self.sql(f"GRANT USAGE ON SCHEMA {table.split('.')[0]} TO {CDC_ROLE}; "
                 f"GRANT SELECT ON {table} TO {CDC_ROLE}")
        exists = self.sql(f"SELECT 1 FROM pg_publication WHERE pubname = '{publication}'")
        if not exists:
            self.sql(f"CREATE PUBLICATION {publication} FOR TABLE {table}")

    def drop_slot(self, slot: str) -> bool:
        """Drop a replication slot no capture will resume from; False when there is none."""
        rows = self.sql(f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                        f"WHERE slot_name = '{slot}'")
        return bool(rows)

    # -- as the server's user --------------------------------------------------------------

    def _as_server(self, *cmd: str) -> list[str]:
        if os.geteuid() != 0:
            return list(cmd)
        return ["runuser", "-u", PG_USER, "--", *cmd]

    def _server(self, *cmd: str, what: str) -> None:
        done = subprocess.run(self._as_server(*cmd), capture_output=True, text=True,
                              check=False, cwd=self.cluster)
        if done.returncode != 0:
            tail = (done.stderr.strip() or done.stdout.strip() or self._log_tail()).splitlines()
            raise ConnectError(f"postgres {self.root}", f"{what} failed: "
                                                        f"{tail[-1] if tail else done.returncode}")

    def _give_to_server_user(self, *paths: Path) -> None:
        if os.geteuid() != 0:
            return
        try:
            user = pwd.getpwnam(PG_USER)
        except KeyError:
            raise ConnectError("postgres", f"no {PG_USER} user (Debian's postgresql package "
                                           "creates it): run `make connect-postgres`") from None
        for path in paths:
            os.chown(path, user.pw_uid, user.pw_gid)

    def _log_tail(self) -> str:
        try:
            return self.log.read_text(errors="replace").strip()[-300:]
        except OSError:
            return ""

