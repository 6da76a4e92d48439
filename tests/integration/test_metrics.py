"""A real Prometheus scrapes a running corridor: its counters equal `corridor verify`'s
totals, the latency histogram counts every delivered record, and /readyz turns 503 while the
destination's KMS (OpenBao behind the fault proxy) is down and 200 after."""

from __future__ import annotations

import json
import shutil
import subprocess
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from corridor.dev.chaos.proxy import FaultProxy, free_port
from corridor.keys.vault import VaultTransit

from .bao_env import TOKEN, bao_server  # noqa: F401
from .corridor_env import drop_topics, make_corridor
from .processor_env import Processor, committed, produce, source_end, verify, wait_until

pytestmark = pytest.mark.integration


def _get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=5) as resp:
            return resp.status, resp.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()
    except OSError:
        return 0, ""


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[tuple[str, int]]:
    """A real Prometheus (Debian's package) scraping 127.0.0.1:<metrics port> every second."""
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.fail("prometheus not found: `make install` installs Debian's prometheus")
    metrics_port, web_port = free_port(), free_port()
    config = tmp_path / "prometheus.yml"
    config.write_text(f"""\
global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: corridor
    static_configs: [{{targets: ["127.0.0.1:{metrics_port}"]}}]
""")
    log = (tmp_path / "prometheus.log").open("wb")
    proc = subprocess.Popen([binary, f"--config.file={config}",
                             f"--storage.tsdb.path={tmp_path / 'tsdb'}",
                             f"--web.listen-address=127.0.0.1:{web_port}"],
                            stdout=log, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{web_port}"
    try:
        wait_until(lambda: _get(f"{url}/-/ready")[0] == 200, 60, "prometheus to be ready")
        yield url, metrics_port
    finally:
        proc.terminate()
        proc.wait(30)
        log.close()


def _query(url: str, promql: str) -> dict[str, float]:
    """Instant query; {label values joined by '|': value}."""
    status, body = _get(f"{url}/api/v1/query?query={urllib.request.quote(promql)}")
    assert status == 200, body
    out = {}
    for item in json.loads(body)["data"]["result"]:
        out["|".join(item["metric"].values())] = float(item["value"][1])
    return out


def test_prometheus_scrapes_totals_equal_to_verify_and_readyz_follows_the_kms(
        zones, tmp_path, bao_url, monkeypatch, prometheus):
    url, metrics_port = prometheus
    admin = zones.credentials.admin
    bao_port = int(bao_url.rsplit(":", 1)[1])
    with FaultProxy(bao_port) as kms:
        env = make_corridor(zones, tmp_path,
                            dest_keys=f'{{provider: vault, addr: "http://127.0.0.1:{kms.port}"}}')
        from corridor.commands.provision import provision_topics

        provision_topics(str(env.path), 3)
        VaultTransit(bao_url, TOKEN).create_key(env.dest)
        monkeypatch.setenv("VAULT_TOKEN", TOKEN)
        proc = None
        try:
            produce(env, admin, 3000, seed=5, bad_ratio=0.05)
            proc = Processor(env, tmp_path, "metrics", "--metrics-port", str(metrics_port),
                             "--rotate-every-records", "1000")
            base = f"http://127.0.0.1:{metrics_port}"
            wait_until(lambda: committed(env, admin) == source_end(env, admin), 120,
                       "the corridor to catch up")
            wait_until(lambda: _get(f"{base}/readyz")[0] == 200, 30, "/readyz 200")
            assert _get(f"{base}/healthz")[0] == 200
            report = verify(env, admin)
            assert report.ok

            def scraped() -> bool:
                got = _query(url, f'sum by (outcome) (corridor_records_total{{corridor="{env.name}"}})')
                return got == {"delivered": report.delivered, "withheld": report.withheld,
                               "quarantined": report.quarantined}
            wait_until(scraped, 60, "Prometheus to scrape totals equal to verify's")
            count = _query(url, f'sum(corridor_replication_latency_seconds_count'
                                f'{{corridor="{env.name}"}})')
            assert list(count.values()) == [report.delivered]
            epoch = _query(url, f'corridor_key_epoch{{corridor="{env.name}"}}')
            assert list(epoch.values())[0] >= 2  # rotated every 1000 records

            # The KMS goes away while a rotation is due: not ready, still alive.
            kms.refuse(True)
            kms.reset()
            produce(env, admin, 1500, seed=6)
            wait_until(lambda: _get(f"{base}/readyz")[0] == 503, 60, "/readyz 503 while KMS down")
            status, text = _get(f"{base}/readyz")
            assert "KMS" in text
            assert _get(f"{base}/healthz")[0] == 200
            wait_until(lambda: _query(url, f'corridor_kms_up{{corridor="{env.name}"}}')
                       and list(_query(url, f'corridor_kms_up{{corridor="{env.name}"}}')
                                .values())[0] == 0, 30, "corridor_kms_up 0 in Prometheus")
            kms.refuse(False)
            wait_until(lambda: _get(f"{base}/readyz")[0] == 200, 60, "/readyz 200 again")
            wait_until(lambda: committed(env, admin) == source_end(env, admin), 120,
                       "the corridor to finish after the outage")
            assert proc.stop() == 0
            assert verify(env, admin).ok
        finally:
            if proc is not None:
                proc.close()
            drop_topics(zones, env)
