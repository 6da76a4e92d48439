"""The runner's recovery paths (step 4) and the rebalance retries, without a broker.

Fakes of the origin consumer, the destination producers, the side output, the stored
offsets and the clusters' topology are injected through ``CorridorRunner``'s keyword
arguments; the clock is injected, so the fence grace passes without sleeping.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from confluent_kafka import KafkaError, KafkaException

from corridor.core.errors import CorridorError, KafkaUnavailable
from corridor.core.model import Lineage, OutMessage, RawMessage
from corridor.core.offsets import StoredOffset, decode_stored
from corridor.core.plan import CorridorPlan
from corridor.dev.sample import encode, generate_rows
from corridor.kafka.clients import Endpoint, unavailable
from corridor.kafka.sink import BatchAborted, SinkFenced
from corridor.kafka.source import BEGINNING, Partition, Polled
from corridor.processor import retry
from corridor.processor.runner import FENCE_GRACE_S, CorridorRunner
from corridor.zones.credentials import Principal, Secret
from tests.unit.plan_fixtures import load, plan_for

CORRIDOR, DATASET = "hk-eu", "trade.shipment"
RECORDS = 6


class Clock:
    """Monotonic seconds that move only when told."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Stop:
    """A threading.Event whose wait() moves the clock instead of sleeping."""

    def __init__(self, clock: Clock) -> None:
        self.clock, self.flag, self.waits = clock, False, []

    def is_set(self) -> bool:
        return self.flag

    def set(self) -> None:
        self.flag = True

    def wait(self, timeout: float | None = None) -> bool:
        self.waits.append(timeout)
        self.clock.now += timeout or 0.0
        return self.flag


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def bind(self, **_fields: Any) -> Log:
        return self

    def __getattr__(self, level: str) -> Callable[..., None]:
        return lambda event, **fields: self.events.append((event, fields))

    def names(self) -> list[str]:
        return [e for e, _ in self.events]


class World:
    """Everything the fakes share: one source partition's records, what was called in
    which order, and the scripted failures of the destination transactions."""

    def __init__(self, topic: str, values: list[bytes]) -> None:
        self.topic, self.tp = topic, (topic, 0)
        self.log = [RawMessage(Lineage(topic, 0, i), v, f"k{i}".encode()) for i, v in enumerate(values)]
        self.calls: list[tuple[Any, ...]] = []
        self.commit_errors: list[CorridorError] = []  # raised by the next writes, in order
        self.on_failed_write: Callable[[], None] = lambda: None
        self.committed: list[list[OutMessage]] = []
        self.stored: dict[Partition, StoredOffset] = {}
        self.read_errors: list[KafkaUnavailable] = []  # raised by the next stored-offset reads
        self.clock = Clock()
        self.stop = Stop(self.clock)


class FakeSource:
    """The origin consumer: assigns the one partition inside the first consume, as the
    group would, and serves the partition's records from the position it was told."""

    def __init__(self, world: World, polls: int = 12, step_s: float = 2.0) -> None:
        self.world, self.polls, self.step_s = world, polls, step_s
        self.position: dict[Partition, int] = {}
        self.paused: set[Partition] = set()
        self.on_assign: Callable[[list[Partition]], None] | None = None

    def subscribe(self, topics: Any, on_assign: Any, on_revoke: Any) -> None:
        self.on_assign = on_assign

    def consume(self, max_records: int, timeout_s: float) -> Polled:
        self.polls -= 1
        if self.polls <= 0:
            self.world.stop.set()
        self.world.clock.now += self.step_s  # the poll's wait
        if self.on_assign is not None:
            assign, self.on_assign = self.on_assign, None
            assign([self.world.tp])
        groups: dict[Partition, list[RawMessage]] = {}
        for tp, at in self.position.items():
            if tp not in self.paused and at < len(self.world.log):
                groups[tp] = self.world.log[at:at + max_records]
                self.position[tp] = at + len(groups[tp])
        return Polled(groups, not groups)

    def incremental_assign(self, starts: list[tuple[str, int, int]]) -> None:
        self.world.calls.append(("assign", starts))
        for t, p, offset in starts:
            self.position[(t, p)] = 0 if offset == BEGINNING else offset

    def incremental_unassign(self, partitions: list[Partition]) -> None:
        for tp in partitions:
            self.position.pop(tp, None)

    def seek(self, topic: str, partition: int, offset: int) -> None:
        self.world.calls.append(("seek", topic, partition, offset))
        self.position[(topic, partition)] = 0 if offset == BEGINNING else offset

    def pause(self, partitions: list[Partition]) -> None:
        self.world.calls.append(("pause", list(partitions), self.world.clock.now))
        self.paused.update(partitions)

    def resume(self, partitions: list[Partition]) -> None:
        self.world.calls.append(("resume", list(partitions)))
        self.paused.difference_update(partitions)

    def watermarks(self, topic: str, partition: int, timeout_s: float) -> tuple[int, int]:
        return 0, len(self.world.log)

    def lag(self, tracked: dict[Partition, int]) -> int:
        return sum(self.lags(tracked).values()) if tracked else -1

    def lags(self, tracked: dict[Partition, int]) -> dict[Partition, int]:
        return {tp: len(self.world.log) - at for tp, at in tracked.items()}

    def close(self) -> None:
        self.world.calls.append(("close source",))


class FakeSink:
    def __init__(self, world: World, transactional_id: str) -> None:
        self.world, self.transactional_id = world, transactional_id

    def write(self, messages: list[OutMessage]) -> None:
        if self.world.commit_errors:
            self.world.on_failed_write()
            raise self.world.commit_errors.pop(0)
        self.world.committed.append(list(messages))

    def close(self) -> None:
        self.world.calls.append(("close sink", self.transactional_id))


class FakeSide:
    def __init__(self, world: World) -> None:
        self.world = world
        self.written: list[OutMessage] = []

    def write(self, messages: list[OutMessage]) -> None:
        self.written += messages

    def close(self) -> None:
        pass


class FakeReader:
    def __init__(self, world: World) -> None:
        self.world = world

    def partitions(self) -> int:
        return 3

    def read_stored(self, sources: list[Partition], partitions: int) -> dict[Partition, StoredOffset]:
        self.world.calls.append(("read", list(sources)))
        if self.world.read_errors:
            raise self.world.read_errors.pop(0)
        return {tp: self.world.stored[tp] for tp in sources if tp in self.world.stored}

    def read(self, sources: list[Partition], partitions: int) -> dict[Partition, int]:
        return {tp: s.next for tp, s in self.read_stored(sources, partitions).items()}


class FakeTopology:
    def source_ids(self, names: set[str]) -> dict[str, str]:
        return {n: "source-topic-id" for n in names}

    def source_partitions(self, names: set[str]) -> dict[str, int]:
        return {n: 1 for n in names}

    def destination_partitions(self, names: set[str]) -> dict[str, int]:
        return {n: 1 for n in names}


@pytest.fixture(scope="module")
def plan(tmp_path_factory: pytest.TempPathFactory) -> CorridorPlan:
    return plan_for(load(tmp_path_factory.mktemp("cfg")), CORRIDOR)


def values(plan: CorridorPlan) -> list[bytes]:
    schema = plan.datasets[DATASET].schema
    return [encode(r, schema) for r in generate_rows(DATASET, RECORDS, seed=5, withheld_share=0.3)]


def runner(plan: CorridorPlan, world: World, source: FakeSource, log: Log,
           **seams: Any) -> CorridorRunner:
    """A runner of *plan* over the fakes of *world* (each new sink noted in its calls);
    *seams* sets or replaces keyword arguments of CorridorRunner (the audit and subjects
    tests pass theirs)."""
    def make_sink(transactional_id: str) -> FakeSink:
        world.calls.append(("new sink", transactional_id, world.clock.now))
        return FakeSink(world, transactional_id)

    endpoints = {"hk": Endpoint("hk", "127.0.0.1:1"), "eu": Endpoint("eu", "127.0.0.1:2")}
    fakes: dict[str, Any] = {
        "source": source, "make_sink": make_sink, "side": FakeSide(world),
        "reader": FakeReader(world), "topology": FakeTopology(), "clock": world.clock,
        "wall_ms": lambda: 1_700_000_000_000}
    return CorridorRunner(None, plan, endpoints, Principal("corridor-hk-eu", Secret("unused")),
                          log, **(fakes | seams))


def run(r: CorridorRunner, world: World) -> None:
    r.run(world.stop)


def next_offsets(world: World) -> list[int]:
    """The stored position each committed transaction carried."""
    return [decode_stored(m.value or b"").next for out in world.committed for m in out
            if m.topic.startswith("_corridor.offsets.")]


# -- (a) an aborted transaction is processed again, and counted once ----------------------

def test_an_aborted_batch_is_read_again_from_its_first_offset_and_counted_once(plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    world.stored[world.tp] = StoredOffset(2, "source-topic-id")  # the batch is offsets 2..5
    world.commit_errors = [BatchAborted("commit: Broker: transaction aborted")]
    source, log = FakeSource(world), Log()
    r = runner(plan, world, source, log)
    run(r, world)

    assert ("assign", [(world.topic, 0, 2)]) in world.calls
    assert [c for c in world.calls if c[0] == "seek"] == [("seek", world.topic, 0, 2)]
    assert len(world.committed) == 1 and next_offsets(world) == [RECORDS]
    assert r.stats.aborted == 1 and r.stats.batches == 1
    assert r.stats.consumed == RECORDS - 2  # once, not twice
    assert r.stats.delivered + r.stats.withheld + r.stats.quarantined == RECORDS - 2
    assert r.positions[world.tp] == RECORDS
    assert "batch_aborted" in log.names()
    # The side output of both attempts has the same keys: the replay rewrites them.
    keys = [m.key for m in r.side.written if m.topic != plan.audit_topic]
    assert len(keys) == 2 * len(set(keys))


# -- (b) a fenced producer: pause, wait out the grace, new producer, stored offset ------

def test_a_fenced_producer_is_replaced_after_the_grace_and_the_stored_offset_is_trusted(
        plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    world.commit_errors = [SinkFenced("commit: Broker: producer fenced")]

    def another_owner_committed_two() -> None:  # so the stored offset differs from ours
        world.stored[world.tp] = StoredOffset(2, "source-topic-id")

    world.on_failed_write = another_owner_committed_two
    log = Log()
    r = runner(plan, world, FakeSource(world, polls=20, step_s=2.0), log)
    run(r, world)

    calls = world.calls
    first_sink, second_sink = [c for c in calls if c[0] == "new sink"]
    assert first_sink[1] == second_sink[1]  # the same transactional id: it fences the zombie
    (pause,) = [c for c in calls if c[0] == "pause"]
    assert pause[1] == [world.tp] and "producer_fenced" in log.names()
    assert ("close sink", first_sink[1]) in calls[:calls.index(pause)]
    # The new producer only once the grace has passed, then: stored offset, resume, seek.
    assert second_sink[2] - pause[2] >= FENCE_GRACE_S
    after = calls[calls.index(second_sink):]
    assert after[1:4] == [("read", [world.tp]), ("resume", [world.tp]), ("seek", world.topic, 0, 2)]
    assert "producer_replaced" in log.names()
    # Records 2..5 crossed once, through the new producer; 0 and 1 were the other owner's.
    assert next_offsets(world) == [RECORDS]
    assert r.stats.consumed == RECORDS - 2 and r.positions[world.tp] == RECORDS


# -- (c) retried by the error's code, not its words ---------------------------------------

def test_a_transport_error_is_retried_until_it_passes() -> None:
    clock = Clock()
    stop, notified = Stop(clock), []
    attempts = iter([KafkaUnavailable("authorization server: connection reset", code="_TRANSPORT"),
                     KafkaUnavailable("Local: Broker transport failure", code="_TRANSPORT"), None])

    def call() -> int:
        error = next(attempts)
        if error is not None:
            raise error
        return 42

    result = retry.retrying(call, event="origin_unavailable", step="describe sources",
                            notify=lambda e, f: notified.append((e, f)), stop=stop, clock=clock)
    assert result == 42
    assert stop.waits == [0.5, 1.0]  # backed off, without sleeping
    assert [f["step"] for _, f in notified] == ["describe sources"] * 2


@pytest.mark.parametrize("code", sorted(retry.NOT_RETRIABLE))
def test_a_refusal_is_raised_at_once_whatever_its_words(code: str) -> None:
    clock = Clock()
    stop, calls = Stop(clock), []

    def call() -> None:
        calls.append(1)
        raise KafkaUnavailable("Broker: not allowed", code=code)  # no "authorization" in it

    with pytest.raises(KafkaUnavailable) as raised:
        retry.retrying(call, event="e", step="s", notify=lambda e, f: None, stop=stop, clock=clock)
    assert raised.value.code == code and calls == [1] and stop.waits == []


def test_a_retriable_error_is_given_up_after_the_deadline() -> None:
    clock = Clock()
    stop = Stop(clock)

    def call() -> None:
        raise KafkaUnavailable("Local: Timed out", code="_TIMED_OUT")

    with pytest.raises(KafkaUnavailable):
        retry.retrying(call, event="e", step="s", notify=lambda e, f: None, stop=stop,
                       clock=clock, retry_for_s=30.0)
    assert 30.0 <= sum(stop.waits) <= 30.0 + retry.CEILING_S


def test_the_rebalance_path_retries_a_transport_error_and_fails_on_a_refusal(
        plan: CorridorPlan) -> None:
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    world.read_errors = [KafkaUnavailable("eu: reading offsets: Local: Broker transport failure",
                                          code="_TRANSPORT")]
    r = runner(plan, world, FakeSource(world, polls=3), Log())
    run(r, world)
    assert [c for c in world.calls if c[0] == "read"] == [("read", [world.tp])] * 2
    assert world.stop.waits == [0.5] and r.positions == {world.tp: RECORDS}

    world = World(plan.datasets[DATASET].source_topic, values(plan))
    world.read_errors = [KafkaUnavailable("eu: reading offsets: Broker: not allowed",
                                          code="TOPIC_AUTHORIZATION_FAILED")]
    r = runner(plan, world, FakeSource(world, polls=3), Log())
    with pytest.raises(KafkaUnavailable, match="not allowed"):
        run(r, world)
    assert [c for c in world.calls if c[0] == "read"] == [("read", [world.tp])]
    assert world.stop.waits == [] and world.committed == []


def test_kafka_errors_become_kafka_unavailable_with_their_code() -> None:
    error = unavailable("describing topic t", KafkaException(KafkaError(KafkaError.TOPIC_AUTHORIZATION_FAILED)))
    assert error.code == "TOPIC_AUTHORIZATION_FAILED" and not retry.retriable(error)
    assert str(error) == "describing topic t: Broker: Topic authorization failed"
    assert retry.retriable(unavailable("x", KafkaException(KafkaError(KafkaError._TRANSPORT))))


def test_outbox_is_what_the_runner_commits(plan: CorridorPlan) -> None:
    """One transaction: the delivered records, then the stored position after the batch."""
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    r = runner(plan, world, FakeSource(world, polls=2), Log())
    run(r, world)
    (out,) = world.committed
    assert out[-1].key == f"{CORRIDOR}|{world.topic}|0".encode()
    stored = json.loads(out[-1].value or b"")
    assert stored.pop("audit")[0].startswith('{"corridor":"hk-eu"')  # the batch's event
    assert stored == {"next": RECORDS, "batch": f"0-{RECORDS - 1}", "topic_id": "source-topic-id"}
    assert out[0].topic == "_corridor.schemas"  # the egress schema before its first record
    assert {m.topic for m in out[1:-1]} == {plan.datasets[DATASET].destination_topic}


def test_a_partition_paused_before_a_revocation_is_resumed_before_it_is_assigned_again(
        plan: CorridorPlan) -> None:
    """librdkafka keeps a pause across revoke and re-assignment; a resume issued after the
    assignment could overtake its start offset (librdkafka #2190)."""
    world = World(plan.datasets[DATASET].source_topic, values(plan))
    r = runner(plan, world, FakeSource(world), Log())
    r.assignment.fence(world.tp, world.clock())
    r.assignment.revoked([world.tp])
    world.calls.clear()
    r.assignment.assigned([world.tp])
    names = [c[0] for c in world.calls]
    assert names.index("resume") < names.index("assign")
    assert not r.assignment.paused and not r.assignment.fenced
