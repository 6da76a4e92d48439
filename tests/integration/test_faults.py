"""Faults, each followed by verify with zero lost and zero duplicated: processor SIGKILLs at
random moments, origin and destination brokers SIGKILLed and restarted, a destination
outage, and an origin that refuses the quarantine writes (the honest stand-in for a full
disk). Short variants run in ``make test``; long ones (marked chaos) in ``make chaos``.

The zones are shared with other tests: a broker this file stops is always brought back
(``broker_back``), and the short variants keep outages brief.
"""

from __future__ import annotations

import random
import time

import pytest

from corridor.core import topics
from corridor.kafka.topic_config import set_topic_config

from .chaos_env import (
    assert_exactly_once,
    broker_back,
    corridor,
    needs_launcher,
    nothing_kept_home_crossed,
    record_figures,
    variants,
)
from .processor_env import Processor, committed, produce, verify, wait_until

pytestmark = pytest.mark.integration


def _finish(env, tmp_path, name: str, timeout_s: float = 600) -> Processor:
    final = Processor(env, tmp_path, name, "--until-caught-up", "--idle-ms", "3000")
    try:
        assert final.wait(timeout_s) == 0, final.log()[-3000:]
    finally:
        final.close()
    return final


# make test: issue 4's 5 kills over 100k; make chaos: issue 7's 20 over 500k.
@pytest.mark.parametrize("kills,total", variants((5, 100_000), (20, 500_000)))
def test_exactly_once_under_repeated_processor_sigkill(zones, tmp_path, kills, total):
    admin = zones.credentials.admin
    with corridor(zones, tmp_path) as env:
        produce(env, admin, total, seed=11, bad_ratio=0.01)
        rng = random.Random(2026 + kills)
        # One kill at a random moment in each of `kills` equal slices of the stream.
        span = total // (kills + 1)
        thresholds = sorted(rng.randint(i * span + 1, (i + 1) * span) for i in range(kills))
        done = 0
        for n, threshold in enumerate(thresholds):
            proc = Processor(env, tmp_path, f"crash{n}")
            try:
                wait_until(lambda p=proc, t=threshold: committed(env, admin) >= t
                           or p.proc.poll() is not None,
                           300, f"{threshold} records committed before kill {n + 1}")
                assert proc.proc.poll() is None, proc.log()[-2000:]
                proc.kill()
                done += 1
            finally:
                proc.close()
        _finish(env, tmp_path, "final")
        assert committed(env, admin) == total
        figures = assert_exactly_once(verify(env, admin), total)
        figures |= nothing_kept_home_crossed(env, admin)
    record_figures(f"processor_sigkill_{kills}", scenario="processor SIGKILL", kills=done,
                   records=total, **figures)


@needs_launcher
@pytest.mark.parametrize("zone,role", [("hk", "origin"), ("eu", "destination")])
def test_broker_sigkilled_and_restarted_mid_stream(zones, tmp_path, zone, role):
    """The origin SIGKILLed mid-batch, or the destination SIGKILLed while the processor's
    transactions are open, then restarted at once. The kill comes right after a fresh
    chunk of records arrives (the processor commits a transaction per batch, so while it
    works through the chunk one is almost always open), and more records arrive after
    the restart, so the processor has work on both sides of the fault however fast it is."""
    admin = zones.credentials.admin
    chunk = 15_000
    with corridor(zones, tmp_path) as env:
        produce(env, admin, chunk, seed=21, bad_ratio=0.01)
        proc = Processor(env, tmp_path, f"kill-{role}")
        alive = lambda: proc.proc.poll() is None  # noqa: E731
        try:
            with broker_back(zone) as (launcher, spec):
                wait_until(lambda: committed(env, admin) > 0 or not alive(), 180, "first commits")
                produce(env, admin, chunk, seed=22, bad_ratio=0.01)
                assert launcher.kill(spec[0]) is not None, f"{zone} was not running"
                killed_at = time.monotonic()
                launcher.up(spec, print)
                restart_s = time.monotonic() - killed_at
            produce(env, admin, chunk, seed=23, bad_ratio=0.01)
            wait_until(lambda: committed(env, admin) == 3 * chunk or not alive(), 300,
                       "every record committed after the restart")
            assert proc.stop() == 0, proc.log()[-3000:]
        finally:
            proc.close()
        log = proc.log()
        assert committed(env, admin) == 3 * chunk, log[-3000:]
        figures = assert_exactly_once(verify(env, admin), 3 * chunk)
        figures |= nothing_kept_home_crossed(env, admin)
    noticed = [e for e in ("origin_unavailable", "destination_unavailable", "batch_aborted",
                           "producer_fenced", "source_error") if e in log]
    record_figures(f"broker_kill_{role}", scenario=f"{role} broker SIGKILL + restart", kills=1,
                   records=3 * chunk, restart_s=round(restart_s, 1), processor_saw=noticed,
                   **figures)


@needs_launcher
@pytest.mark.parametrize("outage_s", variants(15, 60))
def test_destination_down_loses_and_duplicates_nothing(zones, tmp_path, outage_s):
    admin = zones.credentials.admin
    total = 40_000
    half = total // 2
    with corridor(zones, tmp_path) as env:
        produce(env, admin, half, seed=13)
        proc = Processor(env, tmp_path, "outage")
        try:
            with broker_back("eu") as (launcher, eu):
                wait_until(lambda: committed(env, admin) > 0, 120, "first commits")
                launcher.down(eu, print)
                # The second half arrives while the destination is away: the processor is
                # mid-stream with records it cannot deliver (however fast the first half went).
                produce(env, admin, half, seed=14)
                # The outage itself is the scenario: the destination stays away this long.
                time.sleep(outage_s)
                assert proc.proc.poll() is None, "the processor exited during the outage"
            wait_until(lambda: committed(env, admin) == total, 300, "every record committed")
            assert proc.stop() == 0, proc.log()[-3000:]
        finally:
            proc.close()
        assert "destination_unavailable" in proc.log()
        figures = assert_exactly_once(verify(env, admin), total)
    record_figures(f"destination_down_{outage_s}s", scenario=f"destination down {outage_s}s",
                   records=total, outage_s=outage_s, **figures)


def test_origin_refusing_quarantine_writes_pauses_and_resumes(zones, tmp_path):
    """A disk-full stand-in: the origin refuses every quarantine write (the topic's
    max.message.bytes set below any batch: a non-retriable broker error, as a failed log
    dir would give). The corridor reports it, holds the batch (nothing crosses past it,
    nothing is skipped), and resumes once the topic is fixed."""
    admin = zones.credentials.admin
    total = 30_000
    half = total // 2
    with corridor(zones, tmp_path) as env:
        produce(env, admin, half, seed=31, bad_ratio=0.05)
        quarantine = topics.quarantine(env.corridor)
        origin_admin = zones.admin("hk")
        proc = Processor(env, tmp_path, "diskfull")
        try:
            wait_until(lambda: committed(env, admin) == half, 120, "the first half committed")
            set_topic_config(origin_admin, quarantine, {"max.message.bytes": "64"})
            try:
                # The second half (with corrupt records) arrives while quarantine is refused.
                produce(env, admin, half, seed=32, bad_ratio=0.05)
                wait_until(lambda: "origin_rejected" in proc.log(), 120, "the refusal reported")
                stuck = committed(env, admin)
                # Held: nothing more commits while quarantine writes are refused.
                time.sleep(5)
                assert committed(env, admin) == stuck < total
                assert proc.proc.poll() is None, "the processor exited instead of waiting"
            finally:
                set_topic_config(origin_admin, quarantine, {"max.message.bytes": None})
            wait_until(lambda: committed(env, admin) == total, 300, "every record committed")
            assert proc.stop() == 0, proc.log()[-3000:]
        finally:
            proc.close()
        rejected = [ln for ln in proc.log().splitlines() if "origin_rejected" in ln]
        figures = assert_exactly_once(verify(env, admin), total)
    assert "MSG_SIZE_TOO_LARGE" in rejected[0] or "too large" in rejected[0].lower(), rejected[0]
    record_figures("quarantine_refused", scenario="origin refuses quarantine writes",
                   records=total, held_at=stuck, error=rejected[0][:300], **figures)
