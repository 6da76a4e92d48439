"""Local schema registries: one Apicurio Registry per local zone, started after its broker.

Owns starting, checking and stopping the registry processes; what a registry is asked
(schemas by id, subjects) is ``corridor.registry``'s, and which registry a corridor uses
is the corridor file's (``zones.<zone>.schema_registry``).

Each runs from the runnable layout ``make install`` unpacks into ``.kafka/registry``
(``quarkus-run.jar``; infra/fetch-registry.sh) with in-memory storage (its schemas
live as long as the process), serving the Confluent-compatible API at
``http://127.0.0.1:<zone port - 11>/apis/ccompat/v7`` (hk 19081, eu 29081, asean 31081)
and its management interface (health, metrics) on ``<zone port - 12>``, both on loopback
only. Files beside the broker's in ``<state>/<zone>/``: ``registry.pid`` and
``registry.log`` (the process's console). Like the brokers, a registry that runs is left
alone, and ``down`` only signals a process whose command line names this zone's folder.

Apicurio's classes need Java 21+; the brokers run on Java 17. ``find_java`` looks for
one at run time: ``CORRIDOR_REGISTRY_JAVA``, then ``java`` on PATH, then every JDK under
``/usr/lib/jvm``.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from corridor.core.errors import ZoneError
from corridor.zones.launcher import (
    ZoneSpec,
    is_group_leader,
    java_major_version,
    port_free,
    wait_gone,
)

JAVA_MINIMUM = 21
JVM_FOLDER = Path("/usr/lib/jvm")
API_PATH = "/apis/ccompat/v7"
HEAP = ("-Xms64m", "-Xmx384m")
# Quick start-up on a 2-core box: client JIT only, serial GC.
JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:TieredStopAtLevel=1", "-Djava.awt.headless=true")
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 20.0
PID_FILE, LOG_FILE = "registry.pid", "registry.log"


def registry_port(spec: ZoneSpec) -> int:
    """The registry's HTTP port: the zone's port - 11 (below 32768, like the zone's)."""
    return spec.port - 11


def management_port(spec: ZoneSpec) -> int:
    return spec.port - 12


def registry_url(spec: ZoneSpec) -> str:
    """The base of the zone's Confluent-compatible API (what corridors.yaml names)."""
    return f"http://127.0.0.1:{registry_port(spec)}{API_PATH}"


@dataclass(frozen=True, slots=True)
class RegistryStatus:
    name: str
    url: str
    pid: int | None
    running: bool


def answers(url: str, timeout: float = 2.0) -> bool:
    """Whether ``GET <url>/subjects`` answers 200."""
    try:
        with urllib.request.urlopen(f"{url}/subjects", timeout=timeout) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError, ValueError):
        return False


def find_java(minimum: int = JAVA_MINIMUM, jvm_folder: Path = JVM_FOLDER) -> str:
    """A ``java`` of version ``minimum`` or later: ``CORRIDOR_REGISTRY_JAVA`` when set, else
    the newest of ``java`` on PATH and the JDKs under ``jvm_folder``. Raises ZoneError (one
    line naming what to install) when there is none."""
    chosen = os.environ.get("CORRIDOR_REGISTRY_JAVA")
    if chosen:
        version = java_major_version(chosen)
        if version is None or version < minimum:
            raise ZoneError("*", f"CORRIDOR_REGISTRY_JAVA={chosen} is Java {version}; the schema "
                                 f"registry needs Java {minimum}+")
        return chosen
    candidates = [shutil.which("java")]
    if jvm_folder.is_dir():
        candidates += [str(p / "bin" / "java") for p in sorted(jvm_folder.iterdir())]
    real = {os.path.realpath(c): c for c in reversed(candidates) if c and os.access(c, os.X_OK)}
    found: list[tuple[int, str]] = []
    for java in real.values():
        try:
            version = java_major_version(java)
        except ZoneError:  # cannot run: not a candidate
            continue
        if version is not None and version >= minimum:
            found.append((version, java))
    if not found:
        raise ZoneError("*", f"the schema registry (Apicurio) needs Java {minimum}+ and none was "
                             f"found: install one (apt-get install openjdk-{minimum}-jre-headless, "
                             "or a Temurin JDK under /usr/lib/jvm) or set CORRIDOR_REGISTRY_JAVA")
    return max(found)[1]


class RegistryLauncher:
    """Starts, checks and stops the local zones' schema registries.

    ``home`` is the unpacked registry (``.kafka/registry``), ``state`` the zones' folder
    (``.zones``). ``probe(url)`` answers whether a registry serves its API (injected for tests).
    """

    def __init__(self, state: Path, home: Path, java: str | None = None,
                 probe: Callable[[str], bool] = answers) -> None:
        self.state = state
        self.home = home
        self.java = java
        self.probe = probe

    def zone_dir(self, spec: ZoneSpec) -> Path:
        return self.state / spec.name

    def pid_of(self, spec: ZoneSpec) -> int | None:
        """The pid of our running registry for this zone, or None."""
        try:
            pid = int((self.zone_dir(spec) / PID_FILE).read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_our_registry(pid, self.zone_dir(spec)) else None

    def status(self, specs: Iterable[ZoneSpec]) -> list[RegistryStatus]:
        return [RegistryStatus(s.name, registry_url(s), pid := self.pid_of(s), pid is not None)
                for s in specs]

    def check(self) -> str:
        """The java to run with; ZoneError when it or the registry's files are missing.
        Called before any broker starts, so that ``zones up`` fails whole or not at all."""
        if not (self.home / "quarkus-run.jar").exists():
            raise ZoneError("*", f"the schema registry is missing in {self.home}: run `make install`")
        if self.java is None:
            self.java = find_java()
        return self.java

    def up(self, specs: list[ZoneSpec], say: Callable[[str], None]) -> list[str]:
        """Start every zone's registry not already running; wait until each answers.
        Returns the zones whose registry it started. Raises ZoneError with a one-line cause."""
        java = self.check()
        started: list[tuple[ZoneSpec, subprocess.Popen[bytes]]] = []
        for spec in specs:
            pid = self.pid_of(spec)
            if pid is not None:
                say(f"registry {spec.name}: already running (pid {pid}) on {registry_url(spec)}")
                continue
            for port in (registry_port(spec), management_port(spec)):
                if not port_free(port):
                    raise ZoneError(spec.name, f"registry port {port} is already in use by another "
                                               "process; stop it or set CORRIDOR_PORT_"
                                               f"{spec.name.upper()} to move the whole zone")
            started.append((spec, self._start(spec, java)))
            say(f"registry {spec.name}: starting on {registry_url(spec)}")
        for spec, proc in started:
            self._wait_ready(spec, proc)
            say(f"registry {spec.name}: ready on {registry_url(spec)} (pid {proc.pid})")
        return [spec.name for spec, _ in started]

    def _start(self, spec: ZoneSpec, java: str) -> subprocess.Popen[bytes]:
        zdir = self.zone_dir(spec)
        zdir.mkdir(parents=True, exist_ok=True)
        env = {
            **os.environ,
            "QUARKUS_HTTP_HOST": "127.0.0.1",
            "QUARKUS_HTTP_PORT": str(registry_port(spec)),
            "QUARKUS_MANAGEMENT_HOST": "127.0.0.1",
            "QUARKUS_MANAGEMENT_PORT": str(management_port(spec)),
            "QUARKUS_HTTP_ACCESS_LOG_ENABLED": "false",  # one line per request otherwise
            "APICURIO_STORAGE_KIND": "sql",
            "APICURIO_STORAGE_SQL_KIND": "h2",  # in memory (jdbc:h2:mem)
            "APICURIO_DATASOURCE_JDBC_INITIAL_SIZE": "2",
            "APICURIO_DATASOURCE_JDBC_MIN_SIZE": "2",
            "APICURIO_DATASOURCE_JDBC_MAX_SIZE": "10",
        }
        cmd = [java, *HEAP, *JVM_FLAGS, f"-Dcorridor.registry.zone={zdir}",
               "-jar", str(self.home / "quarkus-run.jar")]
        with open(zdir / LOG_FILE, "ab") as log:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True,
                                    cwd=zdir, env=env)
        (zdir / PID_FILE).write_text(f"{proc.pid}\n")
        return proc

    def _wait_ready(self, spec: ZoneSpec, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ZoneError(spec.name, f"schema registry exited with code {proc.returncode}: "
                                           f"{self.last_log_line(spec)}")
            if self.probe(registry_url(spec)):
                return
            time.sleep(0.25)  # a refused connection returns at once; don't spin
        raise ZoneError(spec.name, f"schema registry did not answer within "
                                   f"{READY_TIMEOUT_S:.0f}s: {self.last_log_line(spec)}")

    def last_log_line(self, spec: ZoneSpec) -> str:
        """The last ERROR (or exception) line of the registry's log, else its last line."""
        path = self.zone_dir(spec) / LOG_FILE
        lines = path.read_text(errors="replace").splitlines()[-200:] if path.exists() else []
        errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln]
        return (errors or lines or ["(no log output)"])[-1].strip()[:300]

    def down(self, specs: list[ZoneSpec], say: Callable[[str], None]) -> list[str]:
        """Stop the registries we started: SIGTERM, then SIGKILL after a timeout."""
        pids: dict[str, tuple[ZoneSpec, int]] = {}
        for spec in specs:
            pid = self.pid_of(spec)
            if pid is None:
                (self.zone_dir(spec) / PID_FILE).unlink(missing_ok=True)
                continue
            if is_group_leader(pid):
                os.killpg(pid, signal.SIGTERM)
            else:
                os.kill(pid, signal.SIGTERM)
            pids[spec.name] = (spec, pid)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, (spec, pid) in pids.items():
            how = "stopped"
            if not wait_gone(pid, deadline):
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid, time.monotonic() + 10)
                how = "killed after timeout"
            (self.zone_dir(spec) / PID_FILE).unlink(missing_ok=True)
            say(f"registry {name}: {how} (pid {pid})")
        return list(pids)


def _is_our_registry(pid: int, zone_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
        stat = Path(f"/proc/{pid}/stat").read_text()
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    if stat.split(")")[-1].split()[0] == "Z":
        return False
    return f"-Dcorridor.registry.zone={zone_dir}".encode() in cmdline
