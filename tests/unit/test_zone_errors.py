"""Bad input to the zone launcher: one line saying why, a non-zero exit, no traceback."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
CORRIDOR = [sys.executable, "-m", "corridor.cli"]


def run(args: list[str], env: dict[str, str], cwd: Path) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **env}
    return subprocess.run(args, capture_output=True, text=True, env=full_env, cwd=cwd, timeout=120)


def assert_one_line_error(result: subprocess.CompletedProcess[str], *needles: str) -> None:
    assert result.returncode != 0
    assert "Traceback" not in result.stderr
    lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1, result.stderr
    for needle in needles:
        assert needle in lines[0]


def test_missing_java(tmp_path: Path) -> None:
    result = run([*CORRIDOR, "zones", "up", "--zone", "hk"],
                 {"CORRIDOR_HOME": str(tmp_path), "CORRIDOR_JAVA": "", "PATH": "/nonexistent"},
                 tmp_path)
    assert_one_line_error(result, "java not found")


def test_missing_jars(tmp_path: Path) -> None:
    result = run([*CORRIDOR, "zones", "up", "--zone", "hk"], {"CORRIDOR_HOME": str(tmp_path)},
                 tmp_path)
    assert_one_line_error(result, "Kafka jars missing", "make install")


def test_port_already_taken(tmp_path: Path) -> None:
    libs = ROOT / ".kafka"
    if not (libs / "libs").is_dir():
        pytest.fail("Kafka jars are not installed: run `make install` first")
    (tmp_path / ".kafka").symlink_to(libs)
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        result = run([*CORRIDOR, "zones", "up", "--zone", "hk"],
                     {"CORRIDOR_HOME": str(tmp_path), "CORRIDOR_PORT_HK": str(port)}, tmp_path)
    assert_one_line_error(result, f"port {port} is already in use", "CORRIDOR_PORT_HK")


def test_failed_jar_download(tmp_path: Path) -> None:
    # Offline, with an empty local repository: Maven cannot resolve anything.
    copy = tmp_path / "repo"
    (copy / "infra" / "kafka").mkdir(parents=True)
    for rel in ("infra/fetch-kafka.sh", "infra/fetch-jars.sh", "infra/kafka/pom.xml"):
        (copy / rel).write_text((ROOT / rel).read_text())
    result = run(["bash", str(copy / "infra/fetch-kafka.sh")],
                 {"MAVEN_EXTRA_ARGS": f"-o -Dmaven.repo.local={tmp_path / 'm2'}"}, copy)
    assert_one_line_error(result, "could not fetch the Kafka jars", ".kafka/libs-mvn.log")
    assert not (copy / ".kafka" / "libs").exists()


def test_no_default_zone_port_is_in_the_ephemeral_range() -> None:
    """An outgoing connection may take any port of Linux's default ephemeral range
    (32768-60999) as its local port; a zone listening there would fail to start at random."""
    from corridor.zones.launcher import DEFAULT_PORTS, ZoneSpec

    for name, port in DEFAULT_PORTS.items():
        spec = ZoneSpec(name, port)
        used = (spec.port, spec.controller_port, spec.proxied_listener_port, spec.proxy_port)
        assert all(1024 < p < 32768 for p in used), (name, used)
