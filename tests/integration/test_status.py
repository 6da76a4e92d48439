"""`corridor status` on real brokers: a corridor whose processor is SIGSTOPped while records
wait is reported stalled (exit 1); once it has caught up, status exits 0."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys

import pytest

from .chaos_env import corridor
from .corridor_env import REPO
from .processor_env import Processor, committed, produce, source_end, wait_until

pytestmark = pytest.mark.integration


def _status(env, *extra: str) -> tuple[int, dict]:  # type: ignore[type-arg]
    done = subprocess.run([sys.executable, "-m", "corridor.cli", "status", "-c", str(env.path),
                           "--corridor", env.name, "-o", "json", *extra],
                          capture_output=True, text=True, cwd=REPO, timeout=120)
    assert done.stdout.strip(), done.stderr
    return done.returncode, json.loads(done.stdout)


@pytest.fixture
def env(zones, tmp_path):
    with corridor(zones, tmp_path) as env:
        yield env


def test_status_reports_a_stalled_corridor_and_a_caught_up_one(zones, env, tmp_path):
    admin = zones.credentials.admin
    produce(env, admin, 2000, seed=1)
    proc = Processor(env, tmp_path, "status")
    try:
        wait_until(lambda: committed(env, admin) == source_end(env, admin), 120,
                   "the first records to commit")
        code, doc = _status(env, "--stall-after", "2")
        [status] = doc["corridors"]
        assert code == 0 and status["lag"] == 0 and not status["stalled"]
        assert status["outcomes"]["delivered"] + status["outcomes"]["withheld"] + \
            status["outcomes"]["quarantined"] == 2000
        assert status["group"]["members"], status["group"]
        assert status["policy"] == env.corridor.policy_id

        os.kill(proc.proc.pid, signal.SIGSTOP)
        try:
            produce(env, admin, 500, seed=2)

            def stalled() -> bool:
                code, doc = _status(env, "--stall-after", "3")
                return code == 1 and doc["corridors"][0]["stalled"] and \
                    doc["corridors"][0]["lag"] == 500
            wait_until(stalled, 60, "status to report the stopped corridor stalled", every_s=1)
        finally:
            os.kill(proc.proc.pid, signal.SIGCONT)
        wait_until(lambda: committed(env, admin) == source_end(env, admin), 120,
                   "the corridor to catch up after SIGCONT")
        code, doc = _status(env, "--stall-after", "3")
        assert code == 0 and doc["corridors"][0]["lag"] == 0 and doc["stalled"] == []
    finally:
        proc.stop()
        proc.close()
