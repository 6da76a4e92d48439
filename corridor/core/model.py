"""Frozen values shared by the pure core and the I/O edge."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from corridor.core.wire import lineage_text


@dataclass(frozen=True, slots=True, order=True)
class Lineage:
    """Where a record came from in its origin cluster.

    ``row`` is the record's row in an Arrow IPC source message (one message, many
    records): ``topic/partition/offset#row``; -1 for a message that is one record.
    """

    topic: str
    partition: int
    offset: int
    row: int = -1

    def __str__(self) -> str:
        return lineage_text(self.topic, self.partition, self.offset, self.row)

    @classmethod
    def parse(cls, text: str) -> Lineage:
        """Inverse of ``str``. Raises ValueError on anything else."""
        topic, partition, offset = text.rsplit("/", 2)
        offset, sep, row = offset.partition("#")
        if sep and (not row.isdigit()):
            raise ValueError(f"bad row in lineage {text!r}")
        return cls(topic, int(partition), int(offset), int(row) if sep else -1)


class Outcome(str, Enum):
    """What happened to one source record. Every record has exactly one."""

    DELIVERED = "delivered"
    WITHHELD = "withheld"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as read from the origin: bytes plus where it came from.

    ``headers`` are the park's, read only when the corridor lets some cross."""

    lineage: Lineage
    value: bytes | None
    key: bytes | None = None
    timestamp_ms: int | None = None
    headers: tuple[tuple[str, bytes | None], ...] | None = None


Headers = list[tuple[str, bytes | None]]  # a park header allowed to cross may be null


class OutMessage(NamedTuple):
    """One record to produce. A NamedTuple, not a frozen dataclass: the processor builds one
    per delivered record, and a frozen dataclass's __init__ cost ~9% of the avro hot loop
    (py-spy); a tuple is several times cheaper."""

    topic: str
    value: bytes | None
    key: bytes | None = None
    headers: Headers | None = None
    partition: int | None = None  # None: the producer's partitioner (murmur2 of the key)
    timestamp: int | None = None  # CreateTime in ms; None: now
