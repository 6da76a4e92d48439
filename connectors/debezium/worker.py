"""One standalone Kafka Connect worker running one Debezium connector, as a background process.

Files in the capture's ``folder``: ``worker.properties`` and ``connector.properties`` (0600:
they hold the Kafka and PostgreSQL passwords), ``log4j2.properties``, ``worker.log`` (the
worker's log; its console goes to ``console.log``), ``offsets.dat`` (the source offsets) and
``worker.pid``. The worker's REST API listens on 127.0.0.1:``rest_port``; ``status`` reads
the connector's and its task's state from it.

Like the zones' launcher, ``stop`` only signals a process whose command line names this
folder. Does not own: the Java runtime (``java``, 17 or later: Kafka Connect 4 needs it),
the jars (``libs``, ``plugins``: infra/fetch-connect.sh), what the connector is told
(``connectors.debezium.config``).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from connectors.debezium.config import properties_text
from connectors.errors import ConnectError
from connectors.resources import peak_rss_mib
from corridor.kafka.log4j import log4j2_properties

HEAP = ("-Xms128m", "-Xmx512m")
JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:MaxMetaspaceSize=192m", "-Djava.awt.headless=true")
MAIN = "org.apache.kafka.connect.cli.ConnectStandalone"
PID_FILE, LOG_FILE, CONSOLE_FILE = "worker.pid", "worker.log", "console.log"
STOP_TIMEOUT_S = 30.0
QUIET_LOGGERS = ("org.reflections",)


@dataclass(frozen=True, slots=True)
class WorkerStatus:
    """What the REST API says: the connector's state and each task's (``FAILED`` tasks carry
    the first line of their trace in ``errors``); all None when the worker does not answer."""

    pid: int | None
    connector: str | None
    tasks: tuple[str, ...]
    errors: tuple[str, ...]
    peak_rss_mib: float | None

    @property
    def running(self) -> bool:
        return self.connector == "RUNNING" and bool(self.tasks) and \
            all(t == "RUNNING" for t in self.tasks)

    @property
    def failed(self) -> bool:
        return self.connector == "FAILED" or "FAILED" in self.tasks


class ConnectWorker:
    """Start, watch and stop the worker of one capture (module docstring)."""

    def __init__(self, folder: Path, libs: Path, rest_port: int, connector: str) -> None:
        self.folder = folder
        self.libs = libs
        self.rest_port = rest_port
        self.connector = connector
        self._proc: subprocess.Popen[bytes] | None = None  # the worker this object started

    @property
    def log_path(self) -> Path:
        return self.folder / LOG_FILE

    def pid(self) -> int | None:
        """The pid of this folder's running worker, or None."""
        try:
            pid = int((self.folder / PID_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _runs_folder(pid, self.folder) else None

    def start(self, java: str, worker: Mapping[str, str], connector: Mapping[str, str]) -> int:
        """Write the files and start the worker; its pid. ConnectError when one runs already
        or the jars are missing. Returns at once: ``wait_running`` waits for the connector."""
        if self.pid() is not None:
            raise ConnectError(str(self.folder), f"a worker runs already (pid {self.pid()}): "
                                                 "stop it first")
        if not any(self.libs.glob("connect-runtime-*.jar")):
            raise ConnectError(str(self.libs), "Kafka Connect is not installed: run "
                                               "`make install` (infra/fetch-connect.sh)")
        self.folder.mkdir(parents=True, exist_ok=True)
        write_private(self.folder / "worker.properties", properties_text(worker))
        write_private(self.folder / "connector.properties", properties_text(connector))
        (self.folder / "log4j2.properties").write_text(
            log4j2_properties(self.log_path, QUIET_LOGGERS))
        cmd = [java, *HEAP, *JVM_FLAGS, f"-Dcorridor.connect={self.folder}",
               f"-Dlog4j2.configurationFile={self.folder / 'log4j2.properties'}",
               "-cp", f"{self.libs}/*", MAIN, str(self.folder / "worker.properties"),
               str(self.folder / "connector.properties")]
        with open(self.folder / CONSOLE_FILE, "ab") as console:
            proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=self.folder)
        (self.folder / PID_FILE).write_text(f"{proc.pid}\n")
        self._proc = proc
        return proc.pid

    def status(self) -> WorkerStatus:
        pid = self.pid()
        rss = peak_rss_mib(pid) if pid is not None else None
        url = f"http://127.0.0.1:{self.rest_port}/connectors/{self.connector}/status"
        try:
            with urllib.request.urlopen(url, timeout=2.0) as response:
                doc: dict[str, Any] = json.loads(response.read())
        except (urllib.error.URLError, OSError, ValueError):
            return WorkerStatus(pid, None, (), (), rss)
        tasks = doc.get("tasks") or []
        errors = tuple(str(t.get("trace", "")).splitlines()[0] for t in tasks if t.get("trace"))
        return WorkerStatus(pid, doc.get("connector", {}).get("state"),
                            tuple(str(t.get("state")) for t in tasks), errors, rss)

    def wait_running(self, timeout_s: float, on_wait: Callable[[WorkerStatus], None]) -> \
            WorkerStatus:
        """Wait until the connector and its task run. ConnectError when the worker exits,
        the connector or its task fails, or ``timeout_s`` passes (with the cause)."""
        deadline = time.monotonic() + timeout_s
        while True:
            now = self.status()
            on_wait(now)
            if now.running:
                return now
            if now.failed:
                raise ConnectError(self.connector, "failed: " + "; ".join(now.errors or
                                                                          (self.last_error(),)))
            if self._exited():
                raise ConnectError(self.connector, f"the worker exited: {self.last_error()}")
            if time.monotonic() > deadline:
                raise ConnectError(self.connector, f"not running after {timeout_s:.0f}s: "
                                                   f"{self.last_error()}")
            time.sleep(0.5)  # a JVM starting: the REST API refuses at once, don't spin

    def _exited(self) -> bool:
        # Right after fork the child's command line is still ours: ask the child itself.
        if self._proc is not None:
            return self._proc.poll() is not None
        return self.pid() is None

    def stop(self) -> int | None:
        """SIGTERM (the worker flushes its offsets), SIGKILL after a timeout; the pid stopped."""
        pid = self.pid()
        if pid is None:
            (self.folder / PID_FILE).unlink(missing_ok=True)
            return None
        os.killpg(pid, signal.SIGTERM)
        if not _wait_gone(pid, time.monotonic() + STOP_TIMEOUT_S):
            os.killpg(pid, signal.SIGKILL)
            _wait_gone(pid, time.monotonic() + 10)
        (self.folder / PID_FILE).unlink(missing_ok=True)
        return pid

    def last_error(self) -> str:
        """The last ERROR line (or exception) of the worker's log, else of its console."""
        for path in (self.log_path, self.folder / CONSOLE_FILE):
            try:
                lines = path.read_text(errors="replace").splitlines()[-400:]
            except OSError:
                continue
            errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln]
            if errors:
                return errors[-1].strip()[:300]
        return "(nothing in the worker's log)"


def _runs_folder(pid: int, folder: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return False
    if stat.split(")")[-1].split()[0] == "Z":
        return False
    return f"-Dcorridor.connect={folder}".encode() in cmdline


def _wait_gone(pid: int, deadline: float) -> bool:
    while time.monotonic() < deadline:
        try:
            waited, _ = os.waitpid(pid, os.WNOHANG)  # our child: reap it
        except ChildProcessError:
            waited = 0
        if waited == pid or not Path(f"/proc/{pid}").exists():
            return True
        try:
            if Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] == "Z":
                return True
        except OSError:
            return True
        time.sleep(0.1)
    return False


def write_private(path: Path, text: str) -> None:
    """Write ``text`` to ``path``, readable by its owner only (0600) from the first byte."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)
