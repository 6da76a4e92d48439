"""MirrorMaker 2 (Apache Kafka's connect-mirror) copying one topic hk -> eu, for the bench.

Run as a dedicated MirrorMaker (``org.apache.kafka.connect.mirror.MirrorMaker``)
from the jars ``infra/fetch-mirror.sh`` puts in ``.kafka/mirror-libs``, with no
transforms: the source connector only (heartbeats, checkpoints, offset syncs,
topic-config and ACL sync off), replication factor 1 for everything it creates,
internal topics and group named after the run so runs never share state. The
target topic is ``hk.<source topic>`` (MM2's default replication policy).
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from corridor.kafka.clients import Endpoint, client_config
from corridor.kafka.log4j import log4j2_properties
from corridor.zones.credentials import Principal

REPO = Path(__file__).resolve().parents[3]
LIBS = REPO / ".kafka" / "mirror-libs"
MAIN = "org.apache.kafka.connect.mirror.MirrorMaker"


def properties(source: Endpoint, target: Endpoint, admin: Principal, names: list[str], tag: str,
               tasks: int) -> str:
    """The MM2 properties file: clusters ``hk`` and ``eu``, topics ``names`` copied hk -> eu."""
    jaas = ("org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{admin.username}" password="{admin.secret}";')
    lines = ["clusters = hk, eu"]
    for alias, endpoint in (("hk", source), ("eu", target)):
        conf = client_config(endpoint, admin)  # the resolved protocol (SASL_SSL with CORRIDOR_TLS)
        lines += [f"{alias}.bootstrap.servers = {endpoint.bootstrap}",
                  f"{alias}.security.protocol = {conf['security.protocol']}",
                  f"{alias}.sasl.mechanism = {endpoint.sasl_mechanism}",
                  f"{alias}.sasl.jaas.config = {jaas}"]
        if conf.get("ssl.ca.location"):
            lines += [f"{alias}.ssl.truststore.type = PEM",
                      f"{alias}.ssl.truststore.location = {conf['ssl.ca.location']}"]
    lines += [
        "hk->eu.enabled = true",
        f"hk->eu.topics = {', '.join(n.replace('.', '[.]') for n in names)}",
        "eu->hk.enabled = false",
        f"tasks.max = {tasks}",
        "emit.heartbeats.enabled = false",
        "emit.checkpoints.enabled = false",
        "sync.group.offsets.enabled = false",
        "sync.topic.configs.enabled = false",
        "sync.topic.acls.enabled = false",
        "refresh.topics.interval.seconds = 5",
        "replication.factor = 1",
        "offset-syncs.topic.replication.factor = 1",
        "heartbeats.topic.replication.factor = 1",
        "checkpoints.topic.replication.factor = 1",
        f"offset.storage.topic = mm2-offsets.{tag}",
        f"config.storage.topic = mm2-configs.{tag}",
        f"status.storage.topic = mm2-status.{tag}",
        "offset.storage.replication.factor = 1",
        "config.storage.replication.factor = 1",
        "status.storage.replication.factor = 1",
        f"eu.group.id = mm2-{tag}",
        "offset.flush.interval.ms = 5000",
    ]
    return "\n".join(lines) + "\n"


def start(folder: Path, source: Endpoint, target: Endpoint, admin: Principal, names: list[str],
          tag: str, tasks: int) -> subprocess.Popen[bytes]:
    """Start MM2; its log goes to ``folder/mm2.log``."""
    if not LIBS.is_dir():
        raise FileNotFoundError(f"{LIBS} is missing: run infra/fetch-mirror.sh (make bench does)")
    props, log4j = folder / "mm2.properties", folder / "mm2-log4j2.properties"
    props.write_text(properties(source, target, admin, names, tag, tasks))
    log4j.write_text(log4j2_properties(folder / "mm2.log"))
    heap = os.environ.get("BENCH_MM2_HEAP", "1g")
    cmd = ["java", "-Xms256m", f"-Xmx{heap}", f"-Dlog4j2.configurationFile={log4j}",
           "-cp", f"{LIBS}/*", MAIN, str(props)]
    out = open(folder / "mm2.out", "ab")  # noqa: SIM115 - the child process owns it
    return subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, cwd=folder)
