"""A zombie processor: SIGSTOPped while it owns the partitions (mid-stream, so with a
transaction open), its partitions reassigned to a second instance, then SIGCONTed.

The guarantee asserted is Kafka's real one: the new owner's ``init_transactions`` fences
the zombie's transactional ids and aborts its open transaction, so nothing the zombie
writes after the takeover can become committed. Concretely:

- verify: every source offset exactly once (a committed zombie write would duplicate);
- read_uncommitted vs read_committed on the corridor topic: every record present only
  in the uncommitted view (aborted: the zombie's open transaction, or writes it tried
  after SIGCONT) has its lineage committed exactly once by the owner;
- the zombie never builds a new producer after SIGCONT (``producer_replaced``): it waits
  out its grace, loses the partitions to the group, and writes nothing more;
- no withheld or quarantined record is on the destination's disk (read_uncommitted).
"""

from __future__ import annotations

import json
import os
import signal
import time
from collections import Counter

import pytest

from corridor.core import topics
from corridor.kafka.io import read_to_end
from corridor.processor.resolve import zone_endpoint

from .chaos_env import (
    assert_exactly_once,
    corridor,
    nothing_kept_home_crossed,
    record_figures,
    variants,
)
from .processor_env import DATASET, Processor, committed, produce, verify, wait_until

pytestmark = pytest.mark.integration


def _events(proc: Processor, since: float = 0.0) -> list[dict]:
    out = []
    for line in proc.log().splitlines():
        if line.startswith("{"):
            event = json.loads(line)
            stamp = event.get("timestamp", "")
            if not since or _epoch(stamp) >= since:
                out.append(event)
    return out


def _epoch(stamp: str) -> float:
    from datetime import datetime

    return datetime.fromisoformat(stamp.replace("Z", "+00:00")).timestamp() if stamp else 0.0


def _owned(proc: Processor) -> set[str]:
    owned: set[str] = set()
    for event in _events(proc):
        parts = {p.split("@")[0] for p in event.get("partitions", [])}
        if event.get("event") == "partitions_assigned":
            owned |= parts
        elif event.get("event") == "partitions_revoked":
            owned -= parts
    return owned


@pytest.mark.parametrize("total", variants(20_000, 200_000))
def test_fenced_zombie_commits_nothing_after_takeover(zones, tmp_path, total):
    admin = zones.credentials.admin
    with corridor(zones, tmp_path) as env:
        produce(env, admin, total, seed=41, bad_ratio=0.02)
        zombie = Processor(env, tmp_path, "zombie")
        heir = None
        try:
            wait_until(lambda: committed(env, admin) >= total // 10, 180, "zombie mid-stream")
            all_parts = _owned(zombie)
            os.kill(zombie.proc.pid, signal.SIGSTOP)
            at_stop = committed(env, admin)
            # More records after the stop: the heir has work even if the zombie had already
            # delivered everything before it (it is fast), so "the heir commits" is real.
            produce(env, admin, total, seed=42, bad_ratio=0.02)
            total *= 2
            heir = Processor(env, tmp_path, "heir")
            wait_until(lambda: _owned(heir) >= all_parts, 120, "the heir to own every partition")
            wait_until(lambda: committed(env, admin) > at_stop, 120, "the heir to commit")
            resumed = time.time()
            os.kill(zombie.proc.pid, signal.SIGCONT)
            # It learns it lost its partitions (it may then rejoin the group as a live member
            # and legitimately get some back: that is not a zombie any more).
            wait_until(lambda: any(e.get("event") == "partitions_revoked"
                                   for e in _events(zombie, since=resumed)),
                       120, "the zombie to lose its partitions")
            wait_until(lambda: committed(env, admin) == total, 300, "the heir to finish")
            after = _events(zombie, since=resumed)
            assert heir.stop() == 0
            zombie.stop()
        finally:
            os.kill(zombie.proc.pid, signal.SIGCONT) if zombie.proc.poll() is None else None
            zombie.close()
            if heir is not None:
                heir.close()
        assert not [e for e in after if e.get("event") == "producer_replaced"], after
        figures = assert_exactly_once(verify(env, admin), total)
        aborted = _aborted_records(env, admin)
        figures |= nothing_kept_home_crossed(env, admin)
    fenced = [e for e in after if e.get("event") == "producer_fenced"]
    record_figures(f"zombie_{total}", scenario="zombie (SIGSTOP, takeover, SIGCONT)",
                   records=total, aborted_records=aborted, zombie_fenced_writes=len(fenced),
                   zombie_events_after_resume=sorted({e.get("event", "") for e in after}),
                   **figures)


def _aborted_records(env, admin) -> int:
    """Records on disk that never became visible, each of whose lineage is committed once."""
    dest = zone_endpoint(env.config, env.dest)
    topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    committed_view = {(r.partition, r.offset): r.header("corridor-lineage")
                      for r in read_to_end(dest, admin, topic)}
    lineages = Counter(committed_view.values())
    assert all(n == 1 for n in lineages.values()), "a lineage was committed twice"
    aborted = 0
    for r in read_to_end(dest, admin, topic, uncommitted=True):
        if (r.partition, r.offset) not in committed_view:
            aborted += 1
            assert lineages[r.header("corridor-lineage")] == 1, r
    return aborted
