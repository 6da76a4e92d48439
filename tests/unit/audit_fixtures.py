"""Audit chains built as the processor writes them, for the tests of `corridor audit verify`:
the unit tests check them as values, the integration test produces them to real topics.
Does not own the summaries (each test says what its batches held) nor the signing key."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corridor.core import audit

TS = 1_700_000_000_000  # event i of a chain is stamped TS + i


def chains(corridor: str, source: str, key: Ed25519PrivateKey, n: int,
           summary: Callable[[int], audit.BatchSummary], partitions: Sequence[int] = (0,),
           ) -> tuple[list[audit.AuditEvent], list[audit.Checkpoint]]:
    """A chain of *n* events (event i of ``summary(i)``) per partition of *source*, the
    chains interleaved as a processor commits them (every chain's event i before any event
    i + 1), and a checkpoint of each chain, signed with *key*, after every second event."""
    states = [audit.ChainState.start(corridor, source, p) for p in partitions]
    events, checkpoints = [], []
    for i in range(n):
        for p, state in enumerate(states):
            event, states[p] = audit.next_event(state, summary(i), TS + i)
            events.append(event)
            if i % 2 == 1:
                checkpoints.append(audit.sign_checkpoint(key, states[p], TS + i))
    return events, checkpoints
