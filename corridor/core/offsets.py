"""The stored-position record of ``_corridor.offsets.<corridor>``, as bytes. Pure.

One record per source partition: key ``<corridor>|<topic>|<partition>``, value
the next source offset to read (JSON), written inside the destination
transaction that carries the batch. Each key goes to a fixed partition of the
offsets topic (CRC-32 of the key), so reading one source partition's position
reads one offsets partition. Reading the topic is ``corridor.kafka.offsets``.

The record also carries the batch's audit events (``audit``: the canonical bytes of
``core.audit.encode_event``, as text, in chain order: the batch's, after a gap event
when the batch followed one) and the signed checkpoint of the chain's head when one was
due (``checkpoint``). They are committed with the batch and not before, so a batch
whose transaction aborted never has an event; the processor writes them to the origin's
audit topics with the next round's side output, and whoever owns the partition next
reads them back from here and writes them again (a byte-identical replay) before it
continues the chain (``corridor.processor.audit``).
"""

from __future__ import annotations

import json
import zlib
from collections.abc import Sequence
from dataclasses import dataclass


def offset_key(corridor: str, topic: str, partition: int) -> bytes:
    return f"{corridor}|{topic}|{partition}".encode()


def offset_partition(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


@dataclass(frozen=True, slots=True)
class StoredOffset:
    """A source partition's stored position, and the id of the source topic it belongs to
    (None in records written before ids were stored); ``audit`` and ``checkpoint``: the
    encoded audit events and checkpoint committed with it (empty in older records)."""

    next: int
    topic_id: str | None = None
    audit: tuple[bytes, ...] = ()
    checkpoint: bytes | None = None


def encode_offset(next_offset: int, batch_id: str, topic_id: str | None = None,
                  audit: Sequence[bytes] = (), checkpoint: bytes | None = None) -> bytes:
    value: dict[str, object] = {"next": next_offset, "batch": batch_id}
    if topic_id:
        # A topic deleted and recreated under the same name restarts its offsets: the id
        # tells the two apart (and the processor refuses to mix them).
        value["topic_id"] = topic_id
    if audit:
        # Canonical event bytes are UTF-8 JSON: as JSON strings they round-trip exactly.
        value["audit"] = [e.decode("utf-8") for e in audit]
    if checkpoint is not None:
        value["checkpoint"] = checkpoint.decode("utf-8")
    return json.dumps(value).encode()


def decode_stored(value: bytes) -> StoredOffset:
    data = json.loads(value)
    checkpoint = data.get("checkpoint")
    return StoredOffset(int(data["next"]), data.get("topic_id") or None,
                        tuple(str(e).encode("utf-8") for e in data.get("audit") or ()),
                        None if checkpoint is None else str(checkpoint).encode("utf-8"))
