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
