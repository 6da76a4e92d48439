"""Reading the audit trail back: the events of ``<zone>.audit`` and the signed checkpoints of
``<zone>.audit.checkpoints`` (origin) or ``_corridor.checkpoints.<origin>`` (the
destination's copy), for ``core.audit.verify_with_checkpoints``.

- ``read_events(endpoint, principal, topic)``: every record value, in topic order (the
  audit topics have one partition), read committed, up to the end seen at the start;
  the bytes as they are, so a verifier sees exactly what is stored (a byte-identical
  replay, a record written before the chain existed, garbage).
- ``read_checkpoints(endpoint, principal, topic)``: the decoded checkpoints, in topic
  order; a record that is not a checkpoint raises ``AuditDecodeError`` (a checkpoint
  topic holds nothing else).
- ``by_chain(values)``: the events split per chain (corridor, topic, partition), each in
  log order, ready for ``verify_chain``; values that are not a chained event (records of
  the unchained format written before, or unreadable bytes) under ``None``.

Does not own: what the bytes mean and the verification (``core.audit``); which topics a
zone's audit lives in (``core.topics``). Raises ``KafkaUnavailable`` when the topic is
missing or its end is not reached in time.
"""

from __future__ import annotations

import json
from collections.abc import Iterable

from corridor.core.audit import ChainId, Checkpoint, decode_checkpoint
from corridor.kafka.clients import Endpoint
from corridor.kafka.io import Record, read_to_end
from corridor.zones.credentials import Principal

TIMEOUT_S = 120.0


def read_events(endpoint: Endpoint, principal: Principal, topic: str,
                timeout_s: float = TIMEOUT_S) -> list[bytes]:
    """Every record value of the audit topic ``topic``, in topic order (null values left
    out: no event is null)."""
    return [r.value for r in _in_order(endpoint, principal, topic, timeout_s)
            if r.value is not None]


def read_checkpoints(endpoint: Endpoint, principal: Principal, topic: str,
                     timeout_s: float = TIMEOUT_S) -> list[Checkpoint]:
    """Every checkpoint of the checkpoint topic ``topic``, in topic order."""
    return [decode_checkpoint(v) for v in read_events(endpoint, principal, topic, timeout_s)]


def by_chain(values: Iterable[bytes]) -> dict[ChainId | None, list[bytes]]:
    """``values`` grouped by the chain their JSON names, each group in the given order;
    what names no chain (not a JSON object with ``v``, corridor, topic and partition)
    under None. Grouping trusts the named chain; ``verify_chain`` checks the rest."""
    out: dict[ChainId | None, list[bytes]] = {}
    for value in values:
        out.setdefault(_chain_of(value), []).append(value)
    return out


def _chain_of(value: bytes) -> ChainId | None:
    try:
        doc = json.loads(value)
    except ValueError:
        return None
    if not isinstance(doc, dict) or "v" not in doc:
        return None
    corridor, topic, partition = doc.get("corridor"), doc.get("topic"), doc.get("partition")
    if isinstance(corridor, str) and isinstance(topic, str) and isinstance(partition, int):
        return ChainId(corridor, topic, partition)
    return None


def _in_order(endpoint: Endpoint, principal: Principal, topic: str,
              timeout_s: float) -> list[Record]:
    # One partition in practice; with more, partition by partition (each in offset order).
    records = list(read_to_end(endpoint, principal, topic, timeout_s=timeout_s))
    return sorted(records, key=lambda r: (r.partition, r.offset))
