"""The stored-position record of ``_corridor.offsets.<corridor>``, as bytes. Pure.

One record per source partition: key ``<corridor>|<topic>|<partition>``, value
the next source offset to read (JSON), written inside the destination
transaction that carries the batch. Each key goes to a fixed partition of the
offsets topic (CRC-32 of the key), so reading one source partition's position
reads one offsets partition. Reading the topic is ``corridor.kafka.offsets``.
"""

from __future__ import annotations

import json
import zlib
from dataclasses import dataclass


def offset_key(corridor: str, topic: str, partition: int) -> bytes:
    return f"{corridor}|{topic}|{partition}".encode()


def offset_partition(key: bytes, partitions: int) -> int:
    return zlib.crc32(key) % partitions


@dataclass(frozen=True, slots=True)
class StoredOffset:
    """A source partition's stored position, and the id of the source topic it belongs to
    (None in records written before ids were stored)."""

    next: int
    topic_id: str | None = None


def encode_offset(next_offset: int, batch_id: str, topic_id: str | None = None) -> bytes:
    value: dict[str, object] = {"next": next_offset, "batch": batch_id}
    if topic_id:
        # A topic deleted and recreated under the same name restarts its offsets: the id
        # tells the two apart (and the processor refuses to mix them).
        value["topic_id"] = topic_id
    return json.dumps(value).encode()


def decode_stored(value: bytes) -> StoredOffset:
    data = json.loads(value)
    return StoredOffset(int(data["next"]), data.get("topic_id") or None)
