"""Retrying a Kafka call of the rebalance path while its failure may pass.

A reset connection or a restarting broker passes; a refusal does not. Which is
which is decided by the Kafka error's code that ``KafkaUnavailable`` carries
(``NOT_RETRIABLE``), never by the words of its message: a refusal fails at
once, whatever its spelling. The clock and the wait are injected, so the loop
is testable without sleeping. Does not own: the Kafka calls themselves
(``corridor.kafka``), what a caller does once it gives up.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from corridor.core.errors import KafkaUnavailable

T = TypeVar("T")
Notify = Callable[[str, dict[str, Any]], None]
# How long a Kafka read in the rebalance path is retried before the processor gives up.
RETRY_FOR_S = 600.0
FIRST_PAUSE_S, CEILING_S = 0.5, 5.0
# Authorization and authentication failures (KafkaError.name()): the cluster refuses this
# principal, and asking again changes nothing until an operator does.
NOT_RETRIABLE = frozenset({
    "TOPIC_AUTHORIZATION_FAILED",
    "GROUP_AUTHORIZATION_FAILED",
    "CLUSTER_AUTHORIZATION_FAILED",
    "TRANSACTIONAL_ID_AUTHORIZATION_FAILED",
    "DELEGATION_TOKEN_AUTHORIZATION_FAILED",
    "SASL_AUTHENTICATION_FAILED",
    "_AUTHENTICATION",
})


class Stop(Protocol):
    """What ``retrying`` needs of a ``threading.Event``."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


def retriable(exc: KafkaUnavailable) -> bool:
    """Whether asking again may succeed: the error's code is not a refusal."""
    return exc.code not in NOT_RETRIABLE


def retrying(fn: Callable[[], T], *, event: str, step: str, notify: Notify, stop: Stop,
             clock: Callable[[], float] = time.monotonic, retry_for_s: float = RETRY_FOR_S) -> T:
    """``fn()``, retried with backoff (0.5 s doubling to 5 s, waited on ``stop``) while it
    raises a retriable ``KafkaUnavailable``; each failure is reported to ``notify`` as
    ``event`` at ``step``. Raises the error at once when ``stop`` is set, when it is not
    retriable, or once ``retry_for_s`` (by ``clock``) have passed."""
    deadline, pause = clock() + retry_for_s, FIRST_PAUSE_S
    while True:
        try:
            return fn()
        except KafkaUnavailable as exc:
            if stop.is_set() or clock() > deadline or not retriable(exc):
                raise
            notify(event, {"step": step, "error": str(exc), "retry_in_s": pause})
            stop.wait(pause)
            pause = min(pause * 2, CEILING_S)
