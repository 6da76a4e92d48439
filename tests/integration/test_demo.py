"""`make demo`'s command on the suite's zones: every corridor of the shipped corridors.yaml
end to end, with sample data produced by each park's own principal; it exits 0 only when
`corridor verify` holds for every corridor."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid

import pytest

from corridor.core.config import load_config

from .corridor_env import REPO

pytestmark = pytest.mark.integration


def test_demo_runs_every_corridor_and_verify_holds(zones):
    text = (REPO / "corridors.yaml").read_text()
    config = load_config(REPO / "corridors.yaml")
    for name, zone in config.zones.items():  # the suite's ports (CORRIDOR_PORT_<ZONE>)
        text = text.replace(f"bootstrap: {zone.bootstrap}",
                            f"bootstrap: {zones.endpoint(name).bootstrap}")
        if zone.schema_registry is not None:  # each registry listens on its broker's port - 11
            port = int(zones.endpoint(name).bootstrap.rsplit(":", 1)[1]) - 11
            text = text.replace(zone.schema_registry.url,
                                f"http://127.0.0.1:{port}/apis/ccompat/v7")
    # Next to corridors.yaml, so its relative paths (schemas, the keys of `make demo`)
    # mean the same; the demo's corridors and topics are the ones `make demo` uses.
    path = REPO / f"corridors.{uuid.uuid4().hex[:8]}.test.yaml"
    path.write_text(text)
    env = {**os.environ, "CORRIDOR_HOME": str(REPO), "COLUMNS": "200"}
    try:
        result = subprocess.run([sys.executable, "-m", "corridor.cli", "demo", "--config",
                                 str(path), "--records", "1000"],
                                cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    finally:
        path.unlink()
    out = result.stdout + result.stderr
    assert result.returncode == 0, out[-4000:]
    assert "all corridors caught up" in out
    for name in config.corridors:
        assert name in out, name
    # verify's verdict per corridor, and the reasons a user reads.
    assert out.count("OK") >= len(config.corridors), out[-4000:]
    assert "violations" not in out
    assert "withheld" in out and "quarantined" in out
    assert "decrypted with" in out
    assert "Confluent-framed Avro: magic 00 + schema id" in out  # hk-asean: wire: confluent
    # It ends with an analytics query over the first corridor's streams, landed in DuckDB.
    first = next(iter(config.corridors))
    analytics = out.split(f"analytics: corridor {first} landed in DuckDB", 1)
    assert len(analytics) == 2, out[-4000:]
    assert "records per dataset and residency" in analytics[1]
    for dataset in config.corridors[first].datasets:
        assert dataset in analytics[1], analytics[1]
