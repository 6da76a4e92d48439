"""Consent withdrawals: the queue that holds each one for the bound, the follower that finds
them on start and as they arrive, and which corridors a withdrawal concerns."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from corridor.commands.consent import concerned, watched_corridors
from corridor.core import topics
from corridor.core.consent import Consent, ConsentView, PurposeConsent, WithdrawalQueue
from corridor.core.subjects import subject_id
from corridor.kafka.io import Record
from corridor.processor.withdrawals import WithdrawalFollower
from tests.unit.subject_fixtures import KEY, PURPOSE, Feed, email, subjects_config
from tests.unit.test_consent import DAY, T0, record, value

BOUND = 30_000


def consent_record(person: int, offset: int, *, withdrawn: bool,
                   purposes: tuple[str, ...] = (PURPOSE,)) -> Record:
    state = PurposeConsent(1, 2 if withdrawn else None)
    data = Consent({p: state for p in purposes}).to_json()
    return Record(topics.consent("hk"), 0, offset, email(person).encode(), data, (), 1)


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> int:
        return self.now


def follower(feed: Feed, clock: Clock, events: list[tuple[str, dict[str, Any]]],
             purposes: tuple[str, ...] = (PURPOSE,)) -> WithdrawalFollower:
    return WithdrawalFollower("hk", KEY, purposes, BOUND, lambda: feed,
                              lambda e, f: events.append((e, f)), wall_ms=clock)


def test_a_withdrawal_is_due_only_after_the_bound_and_only_if_still_withdrawn() -> None:
    view = ConsentView()
    view.apply(record("s", value(a=(T0, T0 + DAY), b=(T0, T0 + DAY)), 0))
    view.apply(record("t", value(a=(T0, T0 + DAY)), 0, partition=1))
    queue = WithdrawalQueue(BOUND)
    queue.seen("s", {"a"}, T0)
    queue.seen("s", {"b"}, T0 + 10_000)  # more purposes later: the first time holds
    queue.seen("t", {"a"}, T0 + 5_000)
    assert queue.next_due_ms() == T0 + BOUND and len(queue) == 2
    assert queue.due(T0 + BOUND - 1, view) == []
    due = queue.due(T0 + BOUND, view)
    assert [(w.subject, w.purposes, w.seen_ms) for w in due] == [("s", {"a", "b"}, T0)]
    # t gives "a" again before its bound passed: nothing is due for t
    view.apply(record("t", value(a=(T0 + 2 * DAY, T0 + DAY)), 1, partition=1))
    assert queue.due(T0 + 60_000, view) == [] and len(queue) == 0
    assert queue.next_due_ms() is None


def test_withdrawals_lists_each_subject_with_what_it_withdrew() -> None:
    view = ConsentView()
    view.apply(record("s", value(a=(T0, T0 + DAY), b=(T0, None)), 0))
    view.apply(record("t", value(a=(T0, None)), 1))
    view.apply(record("u", None, 2))
    assert list(view.withdrawals(["a", "b"])) == [("s", frozenset({"a"}))]
    assert list(view.withdrawals(["b"])) == [] and list(view.withdrawn(["a"])) == ["s"]


def test_the_follower_queues_the_topics_withdrawals_on_start_and_new_ones_as_they_come() -> None:
    feed = Feed([consent_record(0, 0, withdrawn=False), consent_record(0, 1, withdrawn=True),
                 consent_record(1, 2, withdrawn=False),
                 Record(topics.consent("hk"), 0, 3, b"", b"{}", (), 1)])
    clock, events = Clock(), []
    f = follower(feed, clock, events)

    assert f.start(threading.Event())
    assert f.ignored == 1 and len(f.queue) == 1 and f.poll() == []
    clock.now += BOUND
    assert [w.subject for w in f.poll()] == [subject_id(email(0), KEY)]
    # person 1 withdraws while the follower runs: logged, due a bound later
    feed.records.append(consent_record(1, 4, withdrawn=True))
    assert f.poll() == []
    seen = [fields for e, fields in events if e == "consent_withdrawal_seen"]
    assert seen == [{"zone": "hk", "subject": subject_id(email(1), KEY),
                     "purposes": [PURPOSE], "due_in_ms": BOUND}]
    clock.now += BOUND
    due = f.poll()
    assert [(w.subject, w.purposes) for w in due] == [(subject_id(email(1), KEY),
                                                        frozenset({PURPOSE}))]
    # a failed act comes back after the delay asked
    f.retry_later(due[0], 10_000)
    assert f.poll() == []
    clock.now += 10_000
    assert len(f.poll()) == 1


def test_a_withdrawal_of_a_purpose_nobody_watches_is_not_queued() -> None:

    feed = Feed([consent_record(0, 0, withdrawn=False, purposes=("marketing",)),
                 consent_record(0, 1, withdrawn=True, purposes=("marketing",))])
    f = follower(feed, Clock(), [])
    assert f.start(threading.Event()) and len(f.queue) == 0


def test_a_withdrawal_concerns_the_corridors_whose_purposes_it_withdrew(tmp_path: Path) -> None:
    config = subjects_config(tmp_path)
    watched = watched_corridors(config, None)
    assert [c.name for c in watched] == ["hk-eu"]
    assert concerned(watched, "hk", frozenset({PURPOSE})) == ["hk-eu"]
    assert concerned(watched, "hk", frozenset({"marketing"})) == []
    assert concerned(watched, "hk", frozenset({PURPOSE}), erasable=True) == []  # none erasable
    assert watched_corridors(subjects_config(tmp_path, purposes=False), None) == []
