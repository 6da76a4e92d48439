"""One origin zone's consent topic followed for withdrawals (``corridor consent follow``).

A :class:`WithdrawalFollower` keeps a consent view of ``<zone>.consent`` as the processors do
(``corridor.core.consent``: latest record per subject, the raw key turned into the subject
id) and a :class:`~corridor.core.consent.WithdrawalQueue`:

- :meth:`WithdrawalFollower.start` reads the topic to the end offsets seen at start; every
  subject whose latest record withdraws one of the watched purposes is queued (a restart
  finds the withdrawals it had not acted on, and the ones it had: acting is idempotent);
- :meth:`WithdrawalFollower.poll` applies what arrived since (without waiting) and queues
  each purpose a record newly withdrew; it returns the withdrawals now due: seen at least
  the bound ago and still withdrawn.

Due a bound after it was seen: a processor decides no batch with a view older than its
corridor's ``consent_staleness_seconds``, so by then none of the subject's records crosses
any more on any instance, and no new per-subject key is drawn for them.

Owns: reading and folding the topic, the queue. Does not own: what is done with a due
withdrawal (``corridor.commands.consent``), the decisions (``corridor.core.consent``).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Any, TypeVar

from corridor.core.consent import ConsentView, Withdrawal, WithdrawalQueue
from corridor.core.crypto import SecretBytes
from corridor.kafka.io import Record
from corridor.processor import retry
from corridor.processor.subjects import Feed, consent_record

Notify = Callable[[str, dict[str, Any]], None]
T = TypeVar("T")


class WithdrawalFollower:
    """The withdrawals of *purposes* on one origin's consent topic (module docstring).
    ``feed`` makes the topic's reader; ``wall_ms`` is the clock of the queue."""

    def __init__(self, zone: str, key: SecretBytes, purposes: Collection[str], bound_ms: int,
                 feed: Callable[[], Feed], notify: Notify, *,
                 wall_ms: Callable[[], int] = lambda: int(time.time() * 1000),
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.zone, self.key, self.purposes = zone, key, frozenset(purposes)
        self.view, self.queue = ConsentView(), WithdrawalQueue(bound_ms)
        self._make, self._notify, self.wall_ms, self.clock = feed, notify, wall_ms, clock
        self._feed: Feed | None = None
        self._stop = threading.Event()
        self.ignored = 0  # records without a usable key

    def start(self, stop: threading.Event) -> bool:
        """The view rebuilt to the end offsets seen now, its withdrawals queued. False:
        *stop* was set first."""
        self._stop = stop
        self._feed = self._retrying(self._make, "open consent")
        ends = self._retrying(self._feed.end_offsets, "end offsets")
        while not self._feed.reached(ends):
            if stop.is_set():
                return False
            self._apply(self._retrying(lambda: self._poll(0.2), "read"), queue=False)
        now = self.wall_ms()
        self.view.caught_up(now)
        for subject, purposes in self.view.withdrawals(self.purposes):
            self.queue.seen(subject, purposes, now)
        return True

    def poll(self) -> list[Withdrawal]:
        """What arrived applied (no wait); the withdrawals now due."""
        self._apply(self._retrying(lambda: self._poll(0.0), "read"), queue=True)
        return self.queue.due(self.wall_ms(), self.view)

    def retry_later(self, withdrawal: Withdrawal, delay_ms: int) -> None:
        """Act on *withdrawal* again in *delay_ms* (acting failed)."""
        self.queue.seen(withdrawal.subject, withdrawal.purposes,
                        self.wall_ms() + delay_ms - self.queue.bound_ms)

    def close(self) -> None:
        if self._feed is not None:
            self._feed.close()

    def _poll(self, timeout_s: float) -> list[Record]:
        assert self._feed is not None
        return self._feed.poll(timeout_s, 5000)

    def _apply(self, records: list[Record], queue: bool) -> None:
        now = self.wall_ms()
        for record in records:
            consent = consent_record(record, self.key)
            if consent is None:
                self.ignored += 1
                continue
            withdrew = self.view.apply(consent) & self.purposes
            if queue and withdrew:
                self.queue.seen(consent.subject, withdrew, now)
                self._notify("consent_withdrawal_seen", {
                    "zone": self.zone, "subject": consent.subject,
                    "purposes": sorted(withdrew), "due_in_ms": self.queue.bound_ms})

    def _retrying(self, fn: Callable[[], T], step: str) -> T:
        return retry.retrying(fn, event="origin_unavailable", step=f"consent follow: {step}",
                              notify=self._notify, stop=self._stop, clock=self.clock)
