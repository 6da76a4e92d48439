"""Kafka's own Java console consumer (org.apache.kafka:kafka-tools, the brokers' version) reads
a corridor topic at read_committed and counts exactly the delivered records, each with its
residency headers: corridor topics are plain Kafka to any client, not only to ours."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest

from corridor.core import topics
from corridor.keys.local import LocalKekProvider

from .corridor_env import REPO, drop_topics, make_corridor
from .processor_env import DATASET, Processor, committed, produce, source_end, verify, wait_until

pytestmark = pytest.mark.integration
TAGS = ("corridor-origin", "corridor-destination", "corridor-jurisdiction",
        "corridor-classification", "corridor-legal-basis", "corridor-policy", "corridor-lineage")


def _java() -> str:
    java = os.environ.get("CORRIDOR_JAVA") or shutil.which("java")
    if java is None:
        pytest.fail("no java on PATH (the brokers need it too)")
    return java


def test_kafka_console_consumer_counts_the_delivered_records_with_their_tags(zones, tmp_path):
    from corridor.commands.provision import provision_topics

    env = make_corridor(zones, tmp_path)
    provision_topics(str(env.path), 3)
    LocalKekProvider(env.keys).init(env.dest)
    admin = zones.credentials.admin
    try:
        produce(env, admin, 2000, seed=9, bad_ratio=0.05)
        proc = Processor(env, tmp_path, "java")
        try:
            wait_until(lambda: committed(env, admin) == source_end(env, admin), 120,
                       "the corridor to catch up")
        finally:
            assert proc.stop() == 0, proc.log()[-2000:]
            proc.close()
        report = verify(env, admin)
        assert report.ok and report.delivered > 0

        client = tmp_path / "client.properties"
        client.write_text(
            "security.protocol=SASL_PLAINTEXT\nsasl.mechanism=SCRAM-SHA-512\n"
            "sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required "
            f'username="{admin.username}" password="{admin.secret}";\n')
        client.chmod(0o600)
        topic = topics.corridor_topic(env.origin, env.dest, DATASET)
        done = subprocess.run(
            [_java(), "-cp", str(REPO / ".kafka" / "libs" / "*"),
             "org.apache.kafka.tools.consumer.ConsoleConsumer",
             "--bootstrap-server", zones.endpoint("eu").bootstrap, "--topic", topic,
             "--from-beginning", "--isolation-level", "read_committed",
             "--consumer.config", str(client), "--timeout-ms", "15000",
             "--property", "print.headers=true", "--property", "print.value=false",
             "--property", "headers.separator=|"],
            capture_output=True, text=True, timeout=180)
        # The tool logs to stdout too (its timeout ending is logged as an ERROR): records are
        # the lines of headers.
        lines = [ln for ln in done.stdout.splitlines() if ln.startswith("corridor-")]
        assert f"Processed a total of {report.delivered} messages" in done.stderr, done.stderr
        assert len(lines) == report.delivered
        for line in lines:
            names = [h.split(":", 1)[0] for h in line.split("|")]
            assert all(tag in names for tag in TAGS), line
            assert "corridor-legal-basis:TEST-BASIS" in line
    finally:
        drop_topics(zones, env)
