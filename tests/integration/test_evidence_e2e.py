"""The evidence end to end, as the independent body would check it: a real processor runs a
corridor on its own principal's rights; then, as the zone's auditor (who reads the audit
and checkpoint topics and nothing else), `corridor audit verify` passes and
`corridor report -o json` gives totals equal to what `corridor verify` (run by the
operator, who reads the data) counts for the same corridor; the HTML report names it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from corridor.commands.provision import provision_topics
from corridor.kafka.acl_sync import drop_principals, sync_acls
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint

from .corridor_env import REPO, drop_topics, make_corridor
from .processor_env import Processor, committed, produce
from .test_acl import _private_credentials

pytestmark = pytest.mark.integration

RECORDS = 3000


def _cli(creds: Path, *args: str) -> subprocess.CompletedProcess[str]:
    environ = {**os.environ, "CORRIDOR_CREDENTIALS": str(creds), "CORRIDOR_HOME": str(REPO)}
    return subprocess.run([sys.executable, "-m", "corridor.cli", *args], capture_output=True,
                          text=True, cwd=REPO, env=environ, timeout=300)


def test_the_auditor_verifies_the_chain_and_the_report_reconciles_with_verify(
        zones, tmp_path, monkeypatch):
    admin = zones.credentials.admin
    env = make_corridor(zones, tmp_path)
    provision_topics(str(env.path), 3)
    LocalKekProvider(env.keys).init(env.dest)
    creds = _private_credentials(tmp_path / "credentials.json", admin)
    endpoints = {z: zone_endpoint(env.config, z) for z in env.config.zones}
    sync_acls(env.config, endpoints, creds)  # corridor, parks, analytics, auditors
    try:
        produce(env, admin, RECORDS, seed=7, bad_ratio=0.02)
        monkeypatch.setenv("CORRIDOR_CREDENTIALS", str(creds.path))
        proc = Processor(env, tmp_path, "evidence", "--until-caught-up", "--idle-ms", "2000")
        try:
            assert proc.wait(300) == 0, proc.log()[-3000:]
            assert "running_as_admin" not in proc.log()
        finally:
            proc.close()
        assert committed(env, admin) == RECORDS

        config = ["-c", str(env.path)]
        checked = _cli(creds.path, "audit", "verify", "--zone", env.origin, "--as", "auditor",
                       "-o", "json", *config)
        assert checked.returncode == 0, checked.stdout + checked.stderr
        assert json.loads(checked.stdout)["ok"] is True

        until = str(int(time.time() * 1000) + 3_600_000)
        reported = _cli(creds.path, "report", "--from", "0", "--to", until, "--corridor",
                        env.name, "--as", "auditor", "-o", "json", *config)
        assert reported.returncode == 0, reported.stdout + reported.stderr
        report = json.loads(reported.stdout)
        assert report["reconciles"] and report["verified"]

        # The operator's count, from the data topics the auditor may not read.
        counted = _cli(creds.path, "verify", "--corridor", env.name, "-o", "json", *config)
        assert counted.returncode == 0, counted.stdout + counted.stderr
        verified = json.loads(counted.stdout)
        totals = report["totals"]
        for key in ("source", "delivered", "withheld", "quarantined", "withheld_by_reason",
                    "quarantined_by_reason"):
            assert totals[key] == verified[key], (key, totals[key], verified[key])
        assert verified["source"] == RECORDS and verified["quarantined"] > 0

        page = tmp_path / "report.html"
        html = _cli(creds.path, "report", "--from", "0", "--to", until, "--corridor", env.name,
                    "--as", "auditor", "-o", "html", "--out", str(page), *config)
        assert html.returncode == 0, html.stderr
        assert f'data-corridor="{env.name}"' in page.read_text()
    finally:
        drop_principals(env.config, endpoints, creds)
        drop_topics(zones, env)
