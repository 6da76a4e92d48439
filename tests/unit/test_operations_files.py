"""The operator's files agree with the metrics a corridor exposes: promtool checks the
exposition and the alert rules (with their unit tests), and every query of the Grafana
dashboard names a metric the exposition has."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
from prometheus_client import generate_latest

from corridor.processor.metrics import CorridorMetrics, metric_names, reason_kind

REPO = Path(__file__).resolve().parents[2]
PROMETHEUS = REPO / "infra" / "prometheus"
DASHBOARD = REPO / "infra" / "grafana" / "corridor-dashboard.json"


def _promtool() -> str:
    found = shutil.which("promtool")
    if found is None:  # `make install` installs Debian's prometheus, which ships promtool
        pytest.fail("promtool not found: run `make install` (installs Debian's prometheus)")
    return found


def _metrics() -> CorridorMetrics:
    m = CorridorMetrics(clock=lambda: 1_700_000_100.0)
    m.corridor("hk-eu", "hk-eu@abc", "hk", "eu", encrypts=True)
    m.committed("hk-eu", "hk.outbound.trade.shipment", 0, 5,
                ["withhold: consent == false", "class important not admitted by corridor hk-eu"],
                ["decode: bad magic 0000", "validate: declared_value >= 0"], 2000, 1800,
                [1_700_000_000_000 + i for i in range(5)])
    m.lag_of("hk-eu", {("hk.outbound.trade.shipment", 0): 12})
    m.key_epoch("hk-eu", 3)
    m.registry_reachable("hk-eu", "hk", True)
    m.aborted("hk-eu")
    m.fenced_producer("hk-eu")
    return m


def test_exposition_passes_promtool_check_metrics() -> None:
    body = generate_latest(_metrics().registry)
    done = subprocess.run([_promtool(), "check", "metrics"], input=body, capture_output=True,
                          timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    text = body.decode()
    assert 'corridor_records_total{corridor="hk-eu",outcome="quarantined",partition="0",' in text
    assert 'corridor_replication_latency_seconds_count{corridor="hk-eu",' in text


def test_counters_and_latency_count_add_up() -> None:
    m = _metrics()
    values = {(s.name, tuple(sorted(s.labels.items()))): s.value
              for family in m.registry.collect() for s in family.samples}
    delivered = sum(v for (n, labels), v in values.items()
                    if n == "corridor_records_total" and ("outcome", "delivered") in labels)
    latency = sum(v for (n, _), v in values.items()
                  if n == "corridor_replication_latency_seconds_count")
    assert delivered == 5 and latency == 5


def test_reason_labels_are_bounded() -> None:
    assert reason_kind("decode: bad magic 0000") == "decode"
    assert reason_kind("withhold: consent == false") == "withhold"
    assert reason_kind("class important not admitted by corridor hk-eu") == "class"
    assert len(reason_kind("x" * 500 + ": y")) <= 32


def test_alert_rules_pass_promtool_and_their_unit_tests() -> None:
    promtool = _promtool()
    for args in (["check", "rules", "corridor-rules.yml"],
                 ["test", "rules", "corridor-rules.test.yml"]):
        done = subprocess.run([promtool, *args], cwd=PROMETHEUS, capture_output=True,
                              text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_rules_name_only_metrics_the_exposition_has() -> None:
    names = metric_names(_metrics())
    used = set(re.findall(r"\bcorridor_[a-z_]+\b",
                          (PROMETHEUS / "corridor-rules.yml").read_text()))
    assert used and used <= names, used - names


def test_every_dashboard_query_names_a_metric_the_exposition_has() -> None:
    names = metric_names(_metrics())
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p["targets"]]
    exprs.append(dashboard["templating"]["list"][1]["query"]["query"])
    assert len(exprs) >= 10
    for expr in exprs:
        metrics = set(re.findall(r"\bcorridor_[a-z_]+\b", expr))
        assert metrics, expr
        assert metrics <= names, (expr, metrics - names)


def test_health_endpoints_answer_200_or_503_with_the_reason() -> None:
    import urllib.error
    import urllib.request

    from corridor.processor.metrics import Health, serve

    now = [100.0]
    health = Health(loop_bound_s=30, clock=lambda: now[0])
    server = serve(_metrics(), {"hk-eu": health}, 0, "127.0.0.1")
    port = server.server_address[1]

    def get(path: str) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=5) as r:
                return r.status, r.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    try:
        assert get("/healthz")[0] == 503  # never turned
        health.turned()
        assert get("/healthz") == (200, "hk-eu: ok: loop turned 0.0s ago\n")
        now[0] += 31
        status, text = get("/healthz")
        assert status == 503 and "has not turned for 31.0s" in text
        assert get("/readyz") == (503, "hk-eu: failing: no partitions assigned\n")
        health.partitions, health.kms_up = 3, False
        assert get("/readyz") == (503, "hk-eu: failing: KMS unreachable\n")
        health.kms_up = True
        assert get("/readyz")[0] == 200
        status, body = get("/metrics")
        assert status == 200 and "corridor_records_total" in body
        assert get("/nope")[0] == 404
    finally:
        server.shutdown()
        server.server_close()
