"""CORRIDOR_ZONES=external: every command reaches the clusters through CORRIDOR_BOOTSTRAP and
CORRIDOR_CREDENTIALS only. The corridor file's own bootstraps point at a trap (a listening
socket that counts connections): one connection there means some command resolved its
endpoints from the file instead of the environment (the bug the one resolver fixed)."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest

from corridor.core import topics
from corridor.core.config import load_config
from corridor.keys.local import LocalKekProvider

from .corridor_env import REPO, drop_topics, make_corridor
from .processor_env import DATASET, Processor, wait_until

pytestmark = pytest.mark.integration
COUNT = 300


class Trap:
    """A TCP listener on loopback that accepts and counts every connection."""

    def __init__(self) -> None:
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.connections = 0
        self._thread = threading.Thread(target=self._accept, daemon=True)
        self._thread.start()

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            self.connections += 1
            conn.close()

    def close(self) -> None:
        self.sock.shutdown(socket.SHUT_RDWR)
        self.sock.close()


def _cli(*args: str, timeout: float = 180) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "corridor.cli", *args], capture_output=True,
                          text=True, cwd=REPO, timeout=timeout)


def test_provision_run_verify_tail_use_only_the_environments_clusters(zones, tmp_path,
                                                                       monkeypatch):
    env = make_corridor(zones, tmp_path)
    trap = Trap()
    real = {env.origin: zones.endpoint("hk").bootstrap, env.dest: zones.endpoint("eu").bootstrap}
    text = env.path.read_text()
    for address in real.values():
        text = text.replace(address, f"127.0.0.1:{trap.port}")
    env.path.write_text(text)
    assert all(zone.bootstrap == f"127.0.0.1:{trap.port}"
               for zone in load_config(env.path).zones.values())
    monkeypatch.setenv("CORRIDOR_ZONES", "external")
    monkeypatch.setenv("CORRIDOR_BOOTSTRAP", ",".join(f"{z}={a}" for z, a in real.items()))
    monkeypatch.setenv("CORRIDOR_CREDENTIALS", str(zones.credentials.path))
    LocalKekProvider(env.keys).init(env.dest)
    config = str(env.path)
    try:
        done = _cli("provision", "--config", config, "--partitions", "3")
        assert done.returncode == 0, done.stdout + done.stderr
        done = _cli("generate", "--dataset", DATASET, "--zone", env.origin, "--count", str(COUNT),
                    "--config", config)
        assert done.returncode == 0, done.stdout + done.stderr
        proc = Processor(env, tmp_path, "external")
        try:
            def verified() -> bool:
                done = _cli("verify", "--corridor", env.name, "--config", config, "-o", "json")
                if done.returncode != 0:
                    return False
                report = json.loads(done.stdout)
                return bool(report["ok"] and report["source"] == COUNT
                            and report["pending"] == 0)
            wait_until(verified, 180, f"corridor verify to account for {COUNT} records",
                       every_s=2.0)
        finally:
            assert proc.stop() == 0, proc.log()[-3000:]
            proc.close()
        topic = topics.corridor_topic(env.origin, env.dest, DATASET)
        done = _cli("tail", topic, "--zone", env.dest, "--max", "3", "--idle", "30",
                    "--config", config)
        assert done.returncode == 0, done.stdout + done.stderr
        lines = [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]
        assert len(lines) == 3 and all(line["lineage"] for line in lines)
        assert trap.connections == 0, "a command used the corridor file's bootstrap"
    finally:
        trap.close()
        monkeypatch.delenv("CORRIDOR_ZONES")
        drop_topics(zones, env)


def test_a_zone_missing_from_corridor_bootstrap_is_an_error_not_the_files_address(
        zones, tmp_path, monkeypatch):
    env = make_corridor(zones, tmp_path)
    monkeypatch.setenv("CORRIDOR_ZONES", "external")
    monkeypatch.setenv("CORRIDOR_BOOTSTRAP", f"{env.origin}={zones.endpoint('hk').bootstrap}")
    monkeypatch.setenv("CORRIDOR_CREDENTIALS", str(zones.credentials.path))
    done = _cli("verify", "--corridor", env.name, "--config", str(env.path), timeout=60)
    assert done.returncode != 0
    assert env.dest in done.stderr + done.stdout and "CORRIDOR_BOOTSTRAP" in done.stderr + done.stdout
