"""`corridor deploy render`: systemd units that systemd-analyze accepts, Kubernetes resources
that the Kubernetes schemas accept (kubernetes-validate, schemas bundled), and Strimzi /
ServiceMonitor resources pinned by golden files (their CRD schemas are not in a registry
reachable here), all carrying exactly what `corridor principals` and `provision` say."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import kubernetes_validate
import pytest
from click.testing import CliRunner
from ruamel.yaml import YAML

from corridor.cli import cli
from corridor.commands.deploy import dns_name
from corridor.core import acl
from corridor.core.config import load_config
from corridor.core.topics import topic_plan

REPO = Path(__file__).resolve().parents[2]
GOLDEN = Path(__file__).parent / "golden"
CORE_KINDS = {"Deployment", "Service", "ConfigMap", "PodDisruptionBudget"}


def _render(tmp_path: Path, target: str, *extra: str) -> Path:
    out = tmp_path / target
    result = CliRunner().invoke(cli, ["deploy", "render", "-c", str(REPO / "corridors.yaml"),
                                      "--target", target, "--out", str(out), *extra],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return out


def _docs(folder: Path) -> list[dict]:  # type: ignore[type-arg]
    yaml = YAML(typ="safe")
    return [d for f in sorted(folder.glob("*.yaml")) for d in yaml.load_all(f.read_text())]


def test_systemd_unit_passes_systemd_analyze_verify(tmp_path: Path) -> None:
    analyze = shutil.which("systemd-analyze")
    if analyze is None:
        pytest.fail("systemd-analyze not found (Debian's systemd package)")
    out = _render(tmp_path, "systemd", "--prefix", sys.prefix, "--etc", str(tmp_path / "etc"))
    names = sorted(p.name for p in out.iterdir())
    assert "corridor@.service" in names and "common.env" in names and "hk-eu.env" in names
    instance = out / "corridor@hk-eu.service"
    shutil.copy(out / "corridor@.service", instance)
    done = subprocess.run([analyze, "verify", str(instance)], capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0 and "corridor@" not in done.stderr, done.stderr
    ports = {p.read_text().split("CORRIDOR_METRICS_PORT=")[1].strip()
             for p in out.glob("*.env") if p.name != "common.env"}
    assert len(ports) == len(load_config(REPO / "corridors.yaml").corridors)  # one each


def test_systemd_verify_catches_a_broken_unit(tmp_path: Path) -> None:
    out = _render(tmp_path, "systemd", "--prefix", "/nonexistent")
    instance = out / "corridor@hk-eu.service"
    shutil.copy(out / "corridor@.service", instance)
    done = subprocess.run(["systemd-analyze", "verify", str(instance)], capture_output=True,
                          text=True, timeout=120)
    assert done.returncode != 0 and "not executable" in done.stderr


def test_kubernetes_core_resources_validate(tmp_path: Path) -> None:
    docs = _docs(_render(tmp_path, "kubernetes"))
    core = [d for d in docs if d["kind"] in CORE_KINDS]
    config = load_config(REPO / "corridors.yaml")
    assert sum(d["kind"] == "Deployment" for d in core) == len(config.corridors)
    version = kubernetes_validate.latest_version()
    for doc in core:
        kubernetes_validate.validate(doc, version, strict=True)
    deployment = next(d for d in core if d["kind"] == "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["livenessProbe"]["httpGet"]["path"] == "/healthz"
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    broken = dict(deployment, spec=dict(deployment["spec"], replicas="two"))
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, version, strict=True)


def test_no_secret_value_is_written(tmp_path: Path) -> None:
    out = _render(tmp_path, "kubernetes")
    text = "".join(p.read_text() for p in out.glob("*.yaml"))
    assert "secretKeyRef" in text or "secretName" in text
    assert "password" not in text.lower()


def test_strimzi_resources_carry_the_files_topics_and_acls(tmp_path: Path) -> None:
    config = load_config(REPO / "corridors.yaml")
    docs = _docs(_render(tmp_path, "kubernetes"))
    topics = {(d["metadata"]["labels"]["strimzi.io/cluster"], d["spec"]["topicName"])
              for d in docs if d["kind"] == "KafkaTopic"}
    assert topics == {(p.zone, p.name) for p in topic_plan(config)}
    users = {(d["metadata"]["labels"]["strimzi.io/cluster"], d["metadata"]["name"]): d
             for d in docs if d["kind"] == "KafkaUser"}
    for g in acl.grants(config):
        spec = users[(g.zone, dns_name(g.principal))]["spec"]["authorization"]["acls"]
        assert any(a["resource"].get("name") == g.name
                   and a["resource"]["patternType"] == ("prefix" if g.prefixed else "literal")
                   for a in spec), g


def test_strimzi_and_monitor_resources_match_their_golden_files(tmp_path: Path) -> None:
    out = _render(tmp_path, "kubernetes")
    for golden in sorted(GOLDEN.glob("*.yaml")):
        assert (out / golden.name).read_text() == golden.read_text(), (
            f"{golden.name} changed: review it, then copy the new rendering over "
            f"tests/unit/golden/{golden.name}")
