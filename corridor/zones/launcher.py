"""Local zones: one single-node KRaft cluster per zone, from Apache Kafka's own jars.

Each zone lives under ``<state>/<zone>/`` (default state folder ``.zones``):
``server.properties``, ``log4j2.properties``, ``data/`` (the KRaft log dirs),
``broker.log`` (the broker's own log), ``console.log`` (its stdout/stderr)
and ``pid``. With ``tls`` the client listener is SASL_SSL only, with a
certificate from the CA in ``<state>/tls/`` (see corridor.zones.tls). Credentials of the local principals are kept in
``<state>/credentials.json`` (0600); the ``admin`` super user is created at
format time with ``--add-scram``, since SCRAM users can only be seeded that way
before the cluster's metadata log exists.

The launcher never kills what it did not start: ``down`` reads the pid files
and checks that the process still runs our ``server.properties`` before it
signals it. Each zone's schema registry runs beside its broker, started by
``corridor.zones.registry`` (``registry.pid``, ``registry.log`` in the same folder).
"""

from __future__ import annotations

import os
import secrets
import shutil
import signal
import socket
import subprocess
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from corridor.core.errors import ZoneError
from corridor.zones.credentials import Credentials, load_or_create_credentials
from corridor.zones.properties import log4j2_properties, server_properties
from corridor.zones.tls import ensure_zone_tls

# Each zone uses port..port+3, and its schema registry port-12..port-11
# (corridor.zones.registry). All below 32768: Linux hands out 32768-60999 as the local
# ports of outgoing connections, and one such connection holding a zone's port (asean
# was 39092) made the broker's start fail at random.
DEFAULT_PORTS: dict[str, int] = {"hk": 19092, "eu": 29092, "asean": 31092}
HEAP = ("-Xms256m", "-Xmx512m")
# Lean JVM for a 2-core box: serial GC, small code cache, no JIT tier 4 at start-up.
JVM_FLAGS = ("-XX:+UseSerialGC", "-XX:MaxMetaspaceSize=128m", "-Djava.awt.headless=true")
READY_TIMEOUT_S = 90.0
STOP_TIMEOUT_S = 30.0


@dataclass(frozen=True, slots=True)
class ZoneSpec:
    """Where a local zone listens. The controller listens on ``port + 1``; a second
    client listener for fault tests on ``port + 2``, advertised as ``port + 3`` (where a
    ``corridor.dev.chaos.proxy.FaultProxy`` forwards to ``port + 2`` while a test runs)."""

    name: str
    port: int

    @property
    def controller_port(self) -> int:
        return self.port + 1

    @property
    def proxied_listener_port(self) -> int:
        return self.port + 2

    @property
    def proxy_port(self) -> int:
        return self.port + 3

    @property
    def bootstrap(self) -> str:
        return f"127.0.0.1:{self.port}"


@dataclass(frozen=True, slots=True)
class ZoneStatus:
    name: str
    bootstrap: str
    pid: int | None
    running: bool


def default_specs(names: Iterable[str] | None = None) -> list[ZoneSpec]:
    """The default local zones, or those named, with ports from ``CORRIDOR_PORT_<ZONE>``."""
    chosen = list(names) if names else list(DEFAULT_PORTS)
    specs = []
    for name in chosen:
        if name not in DEFAULT_PORTS and f"CORRIDOR_PORT_{name.upper()}" not in os.environ:
            raise ZoneError(name, f"unknown zone; known: {', '.join(DEFAULT_PORTS)}")
        port = int(os.environ.get(f"CORRIDOR_PORT_{name.upper()}", DEFAULT_PORTS.get(name, 0)))
        specs.append(ZoneSpec(name, port))
    return specs


class Launcher:
    """Starts, checks and stops local zones as Java processes.

    ``libs`` is the folder of Kafka jars (``make install`` fills it); ``state``
    holds the zones' data. ``probe`` answers whether a zone's broker serves
    metadata to the admin (it is injected so that this module needs no Kafka
    client and can be tested on its own).
    """

    def __init__(
        self,
        state: Path,
        libs: Path,
        probe: Callable[[ZoneSpec, Credentials], bool],
        java: str | None = None,
        tls: bool = False,
    ) -> None:
        self.state = state
        self.libs = libs
        self.probe = probe
        # Serve SASL_SSL (certificates in <state>/tls/) instead of SASL_PLAINTEXT.
        self.tls = tls
        self.java = java or os.environ.get("CORRIDOR_JAVA") or shutil.which("java")

    # -- queries ---------------------------------------------------------------

    def zone_dir(self, spec: ZoneSpec) -> Path:
        return self.state / spec.name

    def pid_of(self, spec: ZoneSpec) -> int | None:
        """The pid of our running broker for this zone, or None."""
        pid_file = self.zone_dir(spec) / "pid"
        try:
            pid = int(pid_file.read_text().strip())
        except (FileNotFoundError, ValueError):
            return None
        return pid if _is_our_broker(pid, self.zone_dir(spec)) else None

    def status(self, specs: Iterable[ZoneSpec]) -> list[ZoneStatus]:
        return [
            ZoneStatus(s.name, s.bootstrap, pid := self.pid_of(s), pid is not None)
            for s in specs
        ]

    def credentials(self) -> Credentials:
        return load_or_create_credentials(self.state / "credentials.json")

    # -- up ----------------------------------------------------------------------

    def up(self, specs: list[ZoneSpec], say: Callable[[str], None]) -> list[str]:
        """Start every zone not already running; wait until each serves metadata.

        Returns the names of the zones it started (empty when all were running).
        Raises ZoneError with a one-line cause on any failure.
        """
        self.check_prerequisites()
        creds = self.credentials()
        started: list[tuple[ZoneSpec, subprocess.Popen[bytes]]] = []
        for spec in specs:
            pid = self.pid_of(spec)
            if pid is not None:
                say(f"zone {spec.name}: already running (pid {pid}) on {spec.bootstrap}")
                continue
            _check_port_free(spec)
            self._format_if_needed(spec, creds)
            started.append((spec, self._start(spec)))
            say(f"zone {spec.name}: starting on {spec.bootstrap}")
        for spec, proc in started:
            self._wait_ready(spec, proc, creds)
            say(f"zone {spec.name}: ready on {spec.bootstrap} (pid {proc.pid})")
        return [spec.name for spec, _ in started]

    def check_prerequisites(self) -> None:
        """ZoneError when java (17+) or the Kafka jars are missing."""
        if not self.java:
            raise ZoneError("*", "java not found on PATH: install Java 17+ "
                                 "(apt-get install openjdk-17-jre-headless)")
        version = java_major_version(self.java)
        if version is not None and version < 17:
            raise ZoneError("*", f"{self.java} is Java {version}; Kafka 4 needs Java 17+")
        if not any(self.libs.glob("kafka_2.13-*.jar")):
            raise ZoneError("*", f"Kafka jars missing in {self.libs}: run `make install`")

    def _format_if_needed(self, spec: ZoneSpec, creds: Credentials) -> None:
        zdir = self.zone_dir(spec)
        data = zdir / "data"
        zdir.mkdir(parents=True, exist_ok=True)
        # It holds the admin's password (the broker's own SCRAM login): 0600.
        _write_private(
            zdir / "server.properties",
            server_properties(spec.name, spec.port, spec.controller_port, data, creds.admin,
                              ensure_zone_tls(self.state / "tls", spec.name) if self.tls else None,
                              proxied=(spec.proxied_listener_port, spec.proxy_port)),
        )
        (zdir / "log4j2.properties").write_text(log4j2_properties(zdir / "broker.log"))
        if (data / "meta.properties").exists():
            return
        cluster_id = _cluster_id()
        scram = f"SCRAM-SHA-512=[name={creds.admin.username},password={creds.admin.secret}]"
        cmd = [
            self._java(), *HEAP, "-cp", f"{self.libs}/*",
            f"-Dlog4j2.configurationFile={zdir / 'log4j2.properties'}",
            "kafka.tools.StorageTool", "format", "--standalone",
            "--cluster-id", cluster_id, "--config", str(zdir / "server.properties"),
            "--add-scram", scram,
        ]
        result = subprocess.run(cmd, capture_output=True, text=True, timeout=120, check=False)
        if result.returncode != 0:
            tail = (result.stderr or result.stdout).strip().splitlines()[-1:] or ["no output"]
            raise ZoneError(spec.name, f"formatting the KRaft log failed: {tail[0]}")

    def _java(self) -> str:
        if not self.java:  # checked before any zone starts; here for the type
            raise ZoneError("*", "no java found (set CORRIDOR_JAVA or put java on PATH)")
        return self.java

    def _start(self, spec: ZoneSpec) -> subprocess.Popen[bytes]:
        zdir = self.zone_dir(spec)
        cmd = [
            self._java(), *HEAP, *JVM_FLAGS, "-cp", f"{self.libs}/*",
            f"-Dlog4j2.configurationFile={zdir / 'log4j2.properties'}",
            f"-Dcorridor.zone={spec.name}",
            "kafka.Kafka", str(zdir / "server.properties"),
        ]
        with open(zdir / "console.log", "ab") as console:
            proc = subprocess.Popen(
                cmd, stdout=console, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True, cwd=zdir,
            )
        (zdir / "pid").write_text(f"{proc.pid}\n")
        return proc

    def _wait_ready(
        self, spec: ZoneSpec, proc: subprocess.Popen[bytes], creds: Credentials
    ) -> None:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise ZoneError(spec.name, f"broker exited with code {proc.returncode}: "
                                           f"{self.last_log_line(spec)}")
            if self.probe(spec, creds):
                return
            time.sleep(0.25)  # a refused connection returns at once; don't spin
        raise ZoneError(spec.name, f"broker did not answer within {READY_TIMEOUT_S:.0f}s: "
                                   f"{self.last_log_line(spec)}")

    def last_log_lines(self, spec: ZoneSpec, count: int = 20) -> list[str]:
        lines: list[str] = []
        for name in ("console.log", "broker.log"):
            path = self.zone_dir(spec) / name
            if path.exists():
                lines += path.read_text(errors="replace").splitlines()[-count:]
        return lines[-count:]

    def last_log_line(self, spec: ZoneSpec) -> str:
        """The most telling recent log line: the last ERROR, else the last line."""
        lines = self.last_log_lines(spec, 200)
        errors = [ln for ln in lines if " ERROR " in ln or "Exception" in ln]
        chosen = (errors or lines or ["(no log output)"])[-1]
        return chosen.strip()[:300]

    # -- down --------------------------------------------------------------------

    def down(self, specs: list[ZoneSpec], say: Callable[[str], None]) -> list[str]:
        """Stop the brokers we started: SIGTERM, then SIGKILL after a timeout."""
        stopped = []
        pids = {}
        for spec in specs:
            pid = self.pid_of(spec)
            if pid is None:
                say(f"zone {spec.name}: not running")
                (self.zone_dir(spec) / "pid").unlink(missing_ok=True)
                continue
            os.killpg(pid, signal.SIGTERM) if is_group_leader(pid) else os.kill(
                pid, signal.SIGTERM
            )
            pids[spec.name] = (spec, pid)
        deadline = time.monotonic() + STOP_TIMEOUT_S
        for name, (spec, pid) in pids.items():
            how = "stopped"
            if not wait_gone(pid, deadline):
                os.kill(pid, signal.SIGKILL)
                wait_gone(pid, time.monotonic() + 10)
                how = "killed after timeout"
            (self.zone_dir(spec) / "pid").unlink(missing_ok=True)
            say(f"zone {name}: {how} (pid {pid})")
            stopped.append(name)
        return stopped

    def kill(self, spec: ZoneSpec) -> int | None:
        """SIGKILL one zone's broker (fault tests). Returns its pid, or None."""
        pid = self.pid_of(spec)
        if pid is not None:
            os.kill(pid, signal.SIGKILL)
            wait_gone(pid, time.monotonic() + 10)
        return pid

    def reset(self, specs: list[ZoneSpec], say: Callable[[str], None]) -> None:
        """Stop the zones and delete their data (and the local credentials)."""
        self.down(specs, say)
        for spec in specs:
            shutil.rmtree(self.zone_dir(spec), ignore_errors=True)
            say(f"zone {spec.name}: data deleted")
        remaining = [p for p in self.state.glob("*") if p.is_dir()]
        if not remaining:
            (self.state / "credentials.json").unlink(missing_ok=True)


def new_admin_password() -> str:
    return secrets.token_urlsafe(18)


def _write_private(path: Path, text: str) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(text)


def _cluster_id() -> str:
    """16 random bytes, base64url without padding (22 chars), as Kafka's Uuid prints them.

    Like Kafka's Uuid.randomUuid, never one that starts with '-': the storage tool's
    argument parser would take it for an option ("--cluster-id: expected one argument").
    """
    import base64

    while True:
        text = base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("=")
        if not text.startswith("-"):
            return text


PORT_WAIT_S = 5.0


def _check_port_free(spec: ZoneSpec) -> None:
    """ZoneError when a port stays taken. A broker killed a moment ago can leave its
    port briefly unbindable (closing connections), so a taken port is retried for a
    few seconds before it counts as another process's."""
    deadline = time.monotonic() + PORT_WAIT_S
    for port in (spec.port, spec.controller_port, spec.proxied_listener_port):
        while not port_free(port):
            if time.monotonic() > deadline:
                raise ZoneError(
                    spec.name,
                    f"port {port} is already in use by another process; stop it or set "
                    f"CORRIDOR_PORT_{spec.name.upper()} to another port",
                )
            time.sleep(0.2)


def port_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def java_major_version(java: str) -> int | None:
    try:
        out = subprocess.run([java, "-version"], capture_output=True, text=True, timeout=30,
                             check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ZoneError("*", f"cannot run {java}: {exc}") from None
    for token in out.stderr.split():
        token = token.strip('"')
        head = token.split(".")[0]
        if head.isdigit() and "." in token:
            major = int(head)
            return int(token.split(".")[1]) if major == 1 else major
    return None


def _is_our_broker(pid: int, zone_dir: Path) -> bool:
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (FileNotFoundError, ProcessLookupError, PermissionError):
        return False
    stat = Path(f"/proc/{pid}/stat").read_text()
    if stat.split(")")[-1].split()[0] == "Z":
        return False
    return str(zone_dir / "server.properties").encode() in cmdline


def is_group_leader(pid: int) -> bool:
    try:
        return os.getpgid(pid) == pid
    except ProcessLookupError:
        return False


def wait_gone(pid: int, deadline: float) -> bool:
    """Wait (polling /proc, no fixed sleep budget) until pid is gone or reaped."""
    while time.monotonic() < deadline:
        try:
            done, _ = os.waitpid(pid, os.WNOHANG)
            if done == pid:
                return True
        except ChildProcessError:
            pass
        if not Path(f"/proc/{pid}").exists():
            return True
        stat = Path(f"/proc/{pid}/stat").read_text() if Path(f"/proc/{pid}/stat").exists() else ""
        if stat and stat.split(")")[-1].split()[0] == "Z":
            return True
        time.sleep(0.05)
    return False
