"""A source topic deleted and recreated under a corridor: its offsets start again, so its
records would reuse lineages that already crossed. The processor stores the source's topic
id with every position and refuses the new topic with a specific error, before reading any
of it, even when the new topic has grown past the stored position (where comparing offsets
alone sees nothing wrong)."""

from __future__ import annotations

import pytest

from corridor.commands.provision import provision_topics
from corridor.core import topics
from corridor.kafka import admin as kadmin
from corridor.kafka.io import watermarks
from corridor.processor.resolve import zone_endpoint

from .chaos_env import corridor
from .processor_env import DATASET, Processor, committed, produce, verify, wait_until

pytestmark = pytest.mark.integration


def _delivered(env, admin) -> int:
    dest = zone_endpoint(env.config, env.dest)
    topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    return sum(high for _, high in watermarks(dest, admin, topic).values())


def _run_to_end(env, tmp_path, name: str) -> Processor:
    proc = Processor(env, tmp_path, name, "--until-caught-up", "--idle-ms", "2000")
    proc.wait(300)
    proc.close()
    return proc


def test_recreated_source_is_refused_before_any_record_is_read(zones, tmp_path):
    admin = zones.credentials.admin
    origin_admin = zones.admin("hk")
    with corridor(zones, tmp_path) as env:
        source = topics.outbound(env.origin, DATASET)
        produce(env, admin, 2_000, seed=51)
        first = _run_to_end(env, tmp_path, "first")
        assert first.proc.returncode == 0, first.log()[-3000:]
        assert verify(env, admin).ok
        old_id = kadmin.topic_ids(origin_admin, [source])[source]
        delivered, stored = _delivered(env, admin), committed(env, admin)

        kadmin.delete_topics(origin_admin, [source])
        wait_until(lambda: source not in kadmin.topic_ids(origin_admin, [source]), 60,
                   "the source topic to be gone")
        provision_topics(str(env.path), 3)
        new_id = kadmin.topic_ids(origin_admin, [source])[source]
        assert new_id != old_id
        produce(env, admin, 3_000, seed=52)  # past the stored positions

        second = _run_to_end(env, tmp_path, "second")
        log = second.log()
        assert second.proc.returncode != 0, log[-3000:]
        assert '"event": "source_recreated"' in log, log[-3000:]
        assert f"source topic {source} was deleted and recreated" in log
        assert old_id in log and new_id in log
        # Nothing of the new topic crossed, and the stored positions did not move.
        assert _delivered(env, admin) == delivered
        assert committed(env, admin) == stored
