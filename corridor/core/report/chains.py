"""From the audit topic's record values to what :func:`~.model.build_report` takes.

Owns: :func:`split_log` (values -> decoded events, each chain's log, the undecodable
count) and :func:`chain_statuses` (each chain walked with
:func:`~corridor.core.audit.verify_chain`). Does not own: reading the topic
(``corridor.kafka``), checkpoints (``corridor audit verify`` checks them). Pure.

A chain whose first event in the log has seq 0 is walked from the genesis; one whose
start is gone (the audit topic's retention) is walked from its first event, and the
status says from which seq (``first_seq``), so a missing beginning shows in the report.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field

from corridor.core.audit import (
    AuditDecodeError,
    AuditEvent,
    ChainId,
    ChainReport,
    decode_event,
    notice_kind,
    verify_chain,
)


@dataclass
class SplitLog:
    """The audit log, decoded: ``events`` in log order, ``chains`` each chain's events in
    log order, ``undecodable`` how many values are no event."""

    events: list[AuditEvent] = field(default_factory=list)
    chains: dict[ChainId, list[AuditEvent]] = field(default_factory=dict)
    undecodable: int = 0
    notices: Counter[str] = field(default_factory=Counter)


def split_log(values: Iterable[bytes | None]) -> SplitLog:
    """Decode each value strictly (a value that is not exactly an event's canonical
    encoding is counted as undecodable; a null value too)."""
    out = SplitLog()
    for value in values:
        kind = notice_kind(value)
        if kind is not None:
            out.notices[kind] += 1  # an operator's notice (release, erase): no chain event
            continue
        try:
            event = decode_event(value if value is not None else b"")
        except AuditDecodeError:
            out.undecodable += 1
            continue
        out.events.append(event)
        out.chains.setdefault(event.chain, []).append(event)
    return out


def chain_statuses(chains: Mapping[ChainId, list[AuditEvent]]) -> dict[ChainId, ChainReport]:
    """Each chain walked over its whole log (see the module docstring for the start)."""
    return {chain: verify_chain(log, from_genesis=bool(log) and log[0].seq == 0)
            for chain, log in chains.items()}
