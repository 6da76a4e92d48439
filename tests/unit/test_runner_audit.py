"""The processor's audit chain through the runner's seams (fakes of test_runner_recovery):
no event for an aborted try, the chain continued from the stored offset record after a
restart (its event written again, byte-identical), a gap event chained in front of the
next batch, signed checkpoints committed with the batch and on a clean stop."""

from __future__ import annotations

from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corridor.core import topics
from corridor.core.audit import (
    decode_checkpoint,
    decode_event,
    signer_id,
    verify_chain,
    verify_with_checkpoints,
)
from corridor.core.config import AuditSettings
from corridor.core.offsets import StoredOffset, decode_stored
from corridor.core.plan import CorridorPlan
from corridor.kafka.sink import BatchAborted
from corridor.processor.runner import CorridorRunner
from tests.unit.test_runner_recovery import (
    DATASET,
    RECORDS,
    FakeSource,
    Log,
    World,
    values,
)
from tests.unit.test_runner_recovery import plan as plan  # the module fixture
from tests.unit.test_runner_recovery import runner as runner_over_fakes

KEY = Ed25519PrivateKey.generate()


def runner(plan: CorridorPlan, world: World, source: FakeSource, *,
           every_events: int = 100, signer: Ed25519PrivateKey | None = KEY) -> CorridorRunner:
    return runner_over_fakes(plan, world, source, Log(), signer=signer,
                             audit=AuditSettings(checkpoint_events=every_events))


def stored_records(world: World) -> list[StoredOffset]:
    """The stored-offset records of the committed transactions, in commit order."""
    return [decode_stored(m.value or b"") for out in world.committed for m in out
            if m.topic.startswith(topics.OFFSETS)]


def written(r: CorridorRunner, topic: str) -> list[bytes]:
    return [m.value or b"" for m in r.side.written if m.topic == topic]


def test_an_aborted_try_has_no_event_and_the_committed_retry_continues_the_chain(
        plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    world.stored[world.tp] = StoredOffset(2, "source-topic-id")  # an older record: no audit
    world.commit_errors = [BatchAborted("commit: Broker: transaction aborted")]
    r = runner(plan, world, FakeSource(world))
    r.run(world.stop)

    stored, _at_close = stored_records(world)  # the batch's, then the clean stop's
    (event,) = [decode_event(e) for e in stored.audit]
    assert (event.seq, event.prev) == (0, "0" * 64)
    assert (event.summary.first_offset, event.summary.last_offset) == (2, RECORDS - 1)
    assert sum(event.summary.outcomes.values()) == RECORDS - 2  # the retry's, counted once
    assert event.summary.policy_hash == plan.corridor.policy_hash
    assert event.summary.protections["dropped"] == ("national_id",)
    assert event.summary.protections["encrypted"] == ("contact_email",)
    # Only the committed try's event reached the origin (at the clean stop), once.
    assert written(r, plan.audit_topic) == list(stored.audit)
    assert verify_chain(written(r, plan.audit_topic)).ok


def test_a_restart_writes_the_stored_event_again_byte_identical_and_continues_after_it(
        plan: CorridorPlan) -> None:
    rows = values(plan)
    first = World(plan.datasets[DATASET].source_topic, rows[:3])
    r1 = runner(plan, first, FakeSource(first, polls=2))
    r1.run(first.stop)
    stored = stored_records(first)[-1]  # what the next owner reads

    second = World(plan.datasets[DATASET].source_topic, rows)
    second.stored[second.tp] = stored
    r2 = runner(plan, second, FakeSource(second))
    r2.run(second.stop)

    log = written(r2, plan.audit_topic)
    assert log[0] == stored.audit[0]  # written again, byte for byte
    nxt = decode_event(log[1])
    assert (nxt.seq, nxt.prev) == (1, decode_event(stored.audit[0]).hash)
    assert (nxt.summary.first_offset, nxt.summary.last_offset) == (3, RECORDS - 1)
    # The first run's own write and the restart's re-write are one replay in the chain.
    report = verify_chain([*written(r1, plan.audit_topic), *log])
    assert report.ok and report.replays == (1,) and report.head_seq == 1


class GapSource(FakeSource):
    """A source whose first ``low`` records were deleted by retention."""

    def __init__(self, world: World, low: int, **kw: Any) -> None:
        super().__init__(world, **kw)
        self.low = low

    def watermarks(self, topic: str, partition: int, timeout_s: float) -> tuple[int, int]:
        return self.low, len(self.world.log)

    def incremental_assign(self, starts: list[tuple[str, int, int]]) -> None:
        super().incremental_assign(starts)
        for tp in self.position:
            self.position[tp] = max(self.position[tp], self.low)


def test_a_gap_becomes_an_event_of_the_chain_in_front_of_the_next_batch(
        plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    r = runner(plan, world, GapSource(world, low=2))
    r.run(world.stop)

    stored = stored_records(world)[0]
    gap, batch = (decode_event(e) for e in stored.audit)
    assert (gap.summary.kind, gap.seq, gap.summary.first_offset, gap.summary.last_offset) == (
        "gap", 0, 0, 1)
    assert (batch.summary.kind, batch.seq, batch.prev) == ("batch", 1, gap.hash)
    assert (batch.summary.first_offset, batch.summary.last_offset) == (2, RECORDS - 1)
    assert verify_chain(written(r, plan.audit_topic)).ok


def test_checkpoints_are_committed_with_their_batch_and_signed_again_on_a_clean_stop(
        plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    source = FakeSource(world)
    r = runner(plan, world, source, every_events=1)
    r.run(world.stop)
    batch, = [out for out in world.committed
              if any(m.topic.startswith(topics.OFFSETS) for m in out)]
    copy = [m.value for m in batch if m.topic == topics.checkpoint_copy(plan.origin)]
    assert len(copy) == 1 and decode_checkpoint(copy[0] or b"").seq == 0
    # The origin's copy went out with the events; the head was signed, so no extra one.
    origin = written(r, topics.audit_checkpoints(plan.origin))
    assert origin == copy
    keys = {signer_id(KEY.public_key()): KEY.public_key()}
    report = verify_with_checkpoints(written(r, plan.audit_topic),
                                     [decode_checkpoint(c) for c in origin], keys)
    assert report.ok and report.checkpoints == 1

    # Not due during the run (100 events): the clean stop signs the head, in a transaction
    # of its own for the destination's copy, and writes the origin's.
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    r = runner(plan, world, FakeSource(world), every_events=100)
    r.run(world.stop)
    *_, batch, last = world.committed
    assert [m.topic for m in last] == [topics.checkpoint_copy(plan.origin),
                                       topics.offsets_topic(plan.name)]
    (cp,) = [decode_checkpoint(c) for c in written(r, topics.audit_checkpoints(plan.origin))]
    assert cp.seq == 0 and verify_with_checkpoints(written(r, plan.audit_topic), [cp],
                                                   keys).ok
    # The stored record is the batch's again, now naming the checkpoint: a restart knows
    # the head is signed and does not sign it a second time.
    before, after = decode_stored(batch[-1].value or b""), decode_stored(last[-1].value or b"")
    assert after.checkpoint == last[0].value and after.audit == before.audit
    assert (after.next, after.topic_id) == (before.next, before.topic_id)
    world.stored[world.tp] = after
    world.committed.clear()
    r = runner(plan, world, FakeSource(world, polls=2), every_events=100)
    r.run(world.stop)
    assert world.committed == []  # nothing new, nothing to sign


def test_without_a_signing_key_the_chain_is_written_unsigned(plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    r = runner(plan, world, FakeSource(world), every_events=1, signer=None)
    r.run(world.stop)
    assert verify_chain(written(r, plan.audit_topic)).ok
    assert written(r, topics.audit_checkpoints(plan.origin)) == []


def test_the_instrument_turning_expiring_then_expired_is_logged_once_each_and_gauged(
        tmp_path: Any) -> None:
    from prometheus_client import generate_latest

    from corridor.processor.audit import InstrumentWatch
    from corridor.processor.metrics import CorridorMetrics, RunObserver
    from tests.unit.plan_fixtures import plan_for
    from tests.unit.test_pipeline import _with_instrument

    plan = plan_for(_with_instrument(tmp_path, "2023-11-14"), "hk-eu")
    end = plan.instrument_expiry_ms
    assert end is not None
    log = Log()
    watch = InstrumentWatch(plan, log)
    day = 86_400_000
    for now in (end - 60 * day, end - 31 * day, end - 29 * day, end - 1, end, end + day):
        watch.check(now)
    assert log.names() == ["instrument_expiring", "instrument_expired"]
    assert log.events[1][1]["instrument"] == "rmc"

    metrics = CorridorMetrics(clock=lambda: (end - 90_000) / 1000)
    RunObserver("hk-eu", "eu", metrics).instrument(plan.instrument, end)
    text = generate_latest(metrics.registry).decode()
    assert 'corridor_instrument_expiry_seconds{corridor="hk-eu",instrument="rmc"} 90.0' in text


def test_an_idle_corridor_writes_its_last_events_without_waiting_for_a_next_round(
        plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    source = FakeSource(world)
    source.polls = 3  # one round with every record, then idle polls; no clean stop yet
    r = runner(plan, world, source)
    r._close_audit = lambda: None  # type: ignore[method-assign]  # as if killed after idling
    r.run(world.stop)
    (stored,) = stored_records(world)
    assert written(r, plan.audit_topic) == list(stored.audit)  # on the origin while idle
