"""The audit chains of the partitions one runner owns, and its transfer instrument's validity.

One chain per corridor and source partition (``core.audit``). The order that makes every
committed batch appear exactly once, and an aborted one never:

- A chunk's events are *drafted* from the chain's head before its transaction
  (``draft``), and committed inside it, in the partition's stored-offset record
  (``core.offsets``); the head moves only once the transaction committed (``committed``).
  An aborted or fenced chunk leaves the head where it was: its retry (cut into the same
  or other offsets) drafts again at the same seq, and the aborted draft was never visible.
- The events of committed chunks wait in ``unsent`` and go to the origin's
  ``<zone>.audit`` with the next side output, which is acknowledged before the next
  transaction commits (``take``): events up to N-1 are on the origin before batch N
  commits, and event N is in N's offset record. On a clean stop they are written at once.
- Whoever owns the partition next (or this runner after its producer was fenced) reads the
  stored record back (``restore``), writes its events again (byte-identical: a replay
  ``core.audit.verify_chain`` accepts, even after later seqs) and continues from the last.
- Records deleted at the origin before they crossed (a gap) become a ``gap`` event drafted
  in front of the partition's next chunk, so it joins the chain the same way.
- Checkpoints: when ``every_events`` events or ``every_s`` seconds have passed since the
  chain's last checkpoint, the draft's head is signed with the origin zone's key; the
  checkpoint's destination copy (``_corridor.checkpoints.<origin>``) is written in the
  chunk's transaction, so it is there exactly once, and the origin's copy goes with the
  events. A clean stop signs every head not yet signed (``closing``), in a transaction
  that also writes the stored-offset record again with that checkpoint, so whoever
  continues the chain knows the head is signed and the destination gets one copy per
  (chain, seq).

Does not own: the chain's rules and bytes (``core.audit``), the records (``core.outbox``),
when anything is written (``processor.runner``), the signing key file (``keys.signing``).
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from corridor.core.audit import (
    AuditEvent,
    BatchSummary,
    ChainState,
    Checkpoint,
    decode_checkpoint,
    decode_event,
    encode_checkpoint,
    encode_event,
    next_event,
    sign_checkpoint,
)
from corridor.core.config import AuditSettings, InstrumentState, instrument_state
from corridor.core.model import OutMessage
from corridor.core.offsets import StoredOffset
from corridor.core.outbox import Outbox, batch_summary, gap_summary
from corridor.core.pipeline import BatchResult
from corridor.core.plan import CorridorPlan, DatasetPlan

Partition = tuple[str, int]
Log = Any  # a structlog bound logger


@dataclass(frozen=True)
class Draft:
    """The audit of one prepared chunk: its events in chain order (a gap's first, when the
    chunk follows one) with their canonical bytes, the head after them, and the checkpoint
    of that head when one is due."""

    events: tuple[AuditEvent, ...]
    encoded: tuple[bytes, ...]
    after: ChainState
    checkpoint: Checkpoint | None
    next_offset: int


@dataclass
class _Chain:
    state: ChainState
    next_offset: int  # the first source offset the next event covers
    signed_seq: int  # the seq of the chain's last checkpoint (-1: none yet)
    signed_at: float  # when (the runner's clock)
    encoded: tuple[bytes, ...] = ()  # the events committed last (in the stored record)
    gap: tuple[BatchSummary, int] | None = None  # a gap waiting for its chunk, and its ts_ms


class AuditTrail:
    """The chains of the partitions one runner owns (see the module docstring).

    ``signer``: the origin zone's Ed25519 key (None: no checkpoints are signed);
    ``clock``: monotonic seconds (checkpoint interval)."""

    def __init__(self, plan: CorridorPlan, outbox: Outbox, signer: Ed25519PrivateKey | None,
                 settings: AuditSettings | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.plan, self.outbox, self.signer, self.clock = plan, outbox, signer, clock
        self.settings = settings or AuditSettings()
        self.chains: dict[Partition, _Chain] = {}
        self.unsent: dict[tuple[str, bytes | None], OutMessage] = {}

    def restore(self, tp: Partition, stored: StoredOffset | None) -> None:
        """Continue ``tp``'s chain from the events committed with its stored position (none:
        a new chain), and queue them and their checkpoint for the origin again. A pending
        gap is kept when it still starts at the stored position."""
        topic, partition = tp
        state = ChainState.start(self.plan.name, topic, partition)
        for encoded in stored.audit if stored is not None else ():
            event = decode_event(encoded)  # AuditDecodeError: the chain cannot go on
            self._queue(self.outbox.audit_record(event, encoded))
            state = ChainState.after(event)
        signed = -1
        if stored is not None and stored.checkpoint is not None:
            cp = decode_checkpoint(stored.checkpoint)
            self._queue(self.outbox.checkpoint_records(cp, stored.checkpoint)[0])
            signed = cp.seq
        start = stored.next if stored is not None else 0
        old = self.chains.get(tp)
        gap = old.gap if old is not None and old.gap is not None \
            and old.gap[0].first_offset == start else None
        audit = stored.audit if stored is not None else ()
        self.chains[tp] = _Chain(state, start, signed, self.clock(), audit, gap)

    def gap(self, tp: Partition, first: int, last: int, ts_ms: int) -> None:
        """Source offsets ``first`` to ``last`` of ``tp`` were deleted before they crossed:
        the gap event goes in front of the partition's next chunk."""
        chain = self.chains[tp]
        chain.gap = (gap_summary(self.plan, first, last), ts_ms)

    def draft(self, tp: Partition, dp: DatasetPlan, result: BatchResult, first: int, last: int,
              ts_ms: int) -> Draft:
        """The events of a chunk of ``tp`` whose records are source offsets ``first`` to
        ``last``; the event covers from the chain's next offset (offsets without a record,
        such as transaction markers, belong to the batch after them)."""
        chain = self.chains[tp]
        state, events = chain.state, []
        start = min(chain.next_offset, first)
        if chain.gap is not None:
            summary, gap_ts = chain.gap
            event, state = next_event(state, summary, gap_ts)
            events.append(event)
            start = min(summary.last_offset + 1, first)
        event, state = next_event(state, batch_summary(self.plan, dp, result, start, last), ts_ms)
        events.append(event)
        checkpoint = None
        if self.signer is not None and (
                state.seq - chain.signed_seq >= self.settings.checkpoint_events
                or self.clock() - chain.signed_at >= self.settings.checkpoint_seconds):
            checkpoint = sign_checkpoint(self.signer, state, ts_ms)
        return Draft(tuple(events), tuple(encode_event(e) for e in events), state, checkpoint,
                     last + 1)

    def committed(self, tp: Partition, draft: Draft) -> None:
        """The chunk of ``draft`` committed: its head is the chain's, its events wait for the
        origin."""
        chain = self.chains[tp]
        chain.state, chain.next_offset, chain.gap = draft.after, draft.next_offset, None
        chain.encoded = draft.encoded
        for event, encoded in zip(draft.events, draft.encoded, strict=True):
            self._queue(self.outbox.audit_record(event, encoded))
        if draft.checkpoint is not None:
            self.signed(tp, draft.checkpoint)

    def signed(self, tp: Partition, cp: Checkpoint) -> None:
        """``cp``'s destination copy committed: queue the origin's and restart the count."""
        chain = self.chains[tp]
        self._queue(self.outbox.checkpoint_records(cp, encode_checkpoint(cp))[0])
        chain.signed_seq, chain.signed_at = cp.seq, self.clock()

    def closing(self, ts_ms: int, topic_ids: Mapping[str, str]
                ) -> list[tuple[Partition, Checkpoint, list[OutMessage]]]:
        """On a clean stop: a checkpoint of every head not signed yet, with the records of
        its transaction (its destination copy and the stored-offset record again, now
        naming it; ``topic_ids``: source topic ids by name). Commit them, then ``signed``."""
        if self.signer is None:
            return []
        out = []
        for (topic, partition), chain in sorted(self.chains.items()):
            if chain.state.seq <= chain.signed_seq or not chain.encoded:
                continue
            cp = sign_checkpoint(self.signer, chain.state, ts_ms)
            encoded = encode_checkpoint(cp)
            last = chain.next_offset - 1
            first = decode_event(chain.encoded[0]).summary.first_offset
            stored = self.outbox.offset(topic, partition, first, last, topic_ids.get(topic),
                                        chain.encoded, encoded)
            out.append(((topic, partition), cp,
                        [self.outbox.checkpoint_records(cp, encoded)[1], stored]))
        return out

    def drop(self, tp: Partition) -> None:
        """``tp`` is not ours any more (what it queued is still written: a replay at most)."""
        self.chains.pop(tp, None)

    def take(self) -> list[OutMessage]:
        """The queued records for the origin, in the order they were queued; the queue is
        empty afterwards (write them before the next commit)."""
        out = list(self.unsent.values())
        self.unsent.clear()
        return out

    def _queue(self, message: OutMessage) -> None:
        # Keyed by chain and seq: an event restored and also still queued is written once.
        self.unsent[(message.topic, message.key)] = message


class InstrumentWatch:
    """Logs the corridor's transfer instrument turning ``expiring`` (warning) and ``expired``
    (error), once per change; the pipeline withholds on its own once it has expired."""

    def __init__(self, plan: CorridorPlan, log: Log) -> None:
        self.instrument, self.log = plan.instrument, log
        self.expiry_ms = plan.instrument_expiry_ms
        self.state: InstrumentState | None = None

    def check(self, now_ms: int) -> None:
        if self.instrument is None or self.expiry_ms is None:
            return
        today = dt.datetime.fromtimestamp(now_ms / 1000, dt.UTC).date()
        state = "expired" if now_ms >= self.expiry_ms else instrument_state(self.instrument,
                                                                            today)
        if state == self.state:
            return
        self.state = state
        fields = {"instrument": self.instrument.id, "expires": self.instrument.expires.isoformat(),
                  "seconds_left": max(0, (self.expiry_ms - now_ms) // 1000)}
        if state == "expiring":
            self.log.warning("instrument_expiring", **fields,
                             action="renew it: after it expires every record is withheld")
        elif state == "expired":
            self.log.error("instrument_expired", **fields,
                           action="every record is withheld until a renewed instrument is "
                                  "configured")
