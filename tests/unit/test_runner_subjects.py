"""The runner's subject hooks, through its seams (no broker): the ledger entries go with
step 2's side output, are counted once it is acknowledged and before the destination commit;
a replayed batch finds its subjects counted; a stale consent view pauses the corridor."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from corridor.core import topics
from corridor.core.config import Config, FieldClass
from corridor.core.consent import Consent, PurposeConsent
from corridor.core.model import OutMessage
from corridor.core.plan import CorridorPlan
from corridor.core.policy.subjects import ledger_classes
from corridor.core.subjects import LedgerEntry
from corridor.kafka.io import Record
from corridor.kafka.sink import BatchAborted
from corridor.processor.metrics import RunObserver
from corridor.processor.runner import CorridorRunner
from corridor.processor.subjects import SubjectGate
from tests.unit.subject_fixtures import (
    CEILING,
    KEY,
    NOW_MS,
    PURPOSE,
    Feed,
    email,
    plan_of,
    shipments,
    subjects_config,
)
from tests.unit.test_runner_recovery import (
    FakeSide,
    FakeSink,
    FakeSource,
    Log,
    World,
)
from tests.unit.test_runner_recovery import runner as runner_over_fakes

PEOPLE = 8
YEAR = 2025


class Side(FakeSide):
    """The origin: side records acknowledged at once; ledger records land on the feed."""

    def __init__(self, world: World, ledger: Feed, events: list[Any]) -> None:
        super().__init__(world)
        self.ledger, self.events = ledger, events

    def write(self, messages: list[OutMessage]) -> None:
        super().write(messages)
        mine = [m for m in messages if m.topic == topics.subject_ledger("hk")]
        self.ledger.records += [Record(m.topic, 0, len(self.ledger.records) + i, m.key, m.value)
                                for i, m in enumerate(mine)]
        self.events.append(("side", len(mine)))


class Gate(SubjectGate):
    events: list[Any]

    def acknowledged(self, results: Any) -> None:
        super().acknowledged(results)
        self.events.append(("counted", self.ledger.count("hk", YEAR, FieldClass.PERSONAL)))


def build(config: Config, plan: CorridorPlan, world: World, source: FakeSource, log: Log,
          consent: Feed | None = None) -> tuple[CorridorRunner, Gate, list[Any]]:
    events: list[Any] = []
    ledger = Feed()
    wall = lambda: NOW_MS + int(world.clock.now * 1000)  # noqa: E731
    ledger.clock = world.clock
    if consent is not None:
        consent.clock = world.clock
    gate = Gate(plan, KEY, ledger_classes(config, plan), ledger_feed=lambda: ledger,
                consent_feed=(lambda: consent) if consent is not None else None, log=log,
                observer=RunObserver(plan.name, plan.destination), wall_ms=wall,
                clock=world.clock)
    gate.events = events

    def make_sink(transactional_id: str) -> FakeSink:
        sink = FakeSink(world, transactional_id)
        write = sink.write

        def logged(messages: list[OutMessage]) -> None:
            events.append(("commit",))
            world.calls.append(("commit", world.clock.now))
            write(messages)
        sink.write = logged  # type: ignore[method-assign]
        return sink

    r = runner_over_fakes(plan, world, source, log, make_sink=make_sink,
                          side=Side(world, ledger, events), wall_ms=wall, subjects=gate)
    return r, gate, events


def world_of(plan: CorridorPlan, people: list[int]) -> World:
    world = World(plan.datasets["trade.shipment"].source_topic, [])
    world.log = shipments(plan, people)
    return world


def delivered_people(world: World, plan: CorridorPlan, people: list[int]) -> list[int]:
    topic = plan.datasets["trade.shipment"].destination_topic
    by_offset = dict(enumerate(people))
    return sorted(by_offset[int(dict(m.headers or [])["corridor-lineage"].decode().rsplit("/")[-1])]
                  for out in world.committed for m in out if m.topic == topic)


@pytest.fixture()
def config(tmp_path: Path) -> Config:
    return subjects_config(tmp_path, purposes=False)


def test_entries_go_with_step_2_and_are_counted_before_the_commit(config: Config) -> None:
    plan = plan_of(config)
    people = [i % PEOPLE for i in range(3 * PEOPLE)]
    world = world_of(plan, people)
    r, gate, events = build(config, plan, world, FakeSource(world), Log())
    r.run(world.stop)

    assert events[:3] == [("side", CEILING), ("counted", CEILING), ("commit",)]
    crossed = delivered_people(world, plan, people)
    assert len(set(crossed)) == CEILING and len(crossed) == 3 * CEILING
    assert {LedgerEntry.from_record_key(m.key).subject for m in r.side.written
            if m.topic == topics.subject_ledger("hk")} == {
        e.subject for e in gate.ledger.entries()}
    withheld = [m for m in r.side.written if m.topic == plan.withheld_topic]
    assert len(withheld) == 3 * (PEOPLE - CEILING)
    assert "subjects_ceiling_reached" in r.log.names()  # type: ignore[attr-defined]


def test_a_replayed_batch_finds_its_subjects_counted_and_counts_no_one_twice(
        config: Config) -> None:
    plan = plan_of(config)
    people = [i % PEOPLE for i in range(3 * PEOPLE)]
    world = world_of(plan, people)
    world.commit_errors = [BatchAborted("commit: Broker: transaction aborted")]
    r, gate, events = build(config, plan, world, FakeSource(world), Log())
    r.run(world.stop)

    assert [e for e in events if e[0] == "counted"][:2] == [("counted", CEILING)] * 2
    # The replay's subjects were counted with the first try's side output: no new entry.
    keys = [m.key for m in r.side.written if m.topic == topics.subject_ledger("hk")]
    assert len(keys) == len(set(keys)) == CEILING
    crossed = delivered_people(world, plan, people)
    assert len(set(crossed)) == CEILING and len(crossed) == 3 * CEILING  # once each
    assert gate.ledger.count("hk", YEAR, FieldClass.PERSONAL) == CEILING


class LateSource(FakeSource):
    """Serves the first records at once and the rest after ``later`` polls."""

    def __init__(self, world: World, rest: list[Any], later: int) -> None:
        super().__init__(world, polls=60, step_s=2.0)
        self.rest, self.later = rest, later

    def consume(self, max_records: int, timeout_s: float) -> Any:
        self.later -= 1
        if self.later == 0:
            self.world.log += self.rest
        return super().consume(max_records, timeout_s)


def test_a_stale_consent_view_pauses_the_corridor_until_it_is_fresh(tmp_path: Path) -> None:
    config = subjects_config(tmp_path)
    plan = plan_of(config)
    people = [0, 1, 2, 0, 1, 2]
    world = world_of(plan, people)
    first, rest = world.log[:3], world.log[3:]
    world.log = first
    granted = Consent({PURPOSE: PurposeConsent(1)}).to_json()
    consent = Feed([Record(topics.consent("hk"), 0, p, email(p).encode(), granted, (), 1)
                    for p in range(3)])
    log = Log()
    r, _gate, events = build(config, plan, world, LateSource(world, rest, later=25), log,
                             consent)
    # After the first batch the consent topic stops answering for 60 s (bound: 30 s).
    start = world.clock.now
    consent.blocked = (start + 4, start + 64)
    r.run(world.stop)

    stale = [f for e, f in log.events if e == "consent_view_stale"]
    assert len(stale) == 1 and stale[0]["bound_ms"] == 30_000
    # Rebuilt at the first turn of the loop (before any record: no wait), then one pause.
    assert [n for n in log.names() if n.startswith("consent_view")] == [
        "consent_view_fresh", "consent_view_stale", "consent_view_fresh"]
    # The first batch at once; the late one (arrived at ~50 s, stale since ~32 s) held until
    # the view was fresh again (64 s).
    commits = [c[1] for c in world.calls if c[0] == "commit"]
    assert len(commits) == 2 and commits[0] < start + 4 and commits[1] >= start + 64
    assert sorted(delivered_people(world, plan, people)) == sorted(people)
