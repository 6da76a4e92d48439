"""Frozen values shared by the pure core and the I/O edge."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum


@dataclass(frozen=True, slots=True, order=True)
class Lineage:
    """Where a record came from in its origin cluster."""

    topic: str
    partition: int
    offset: int

    def __str__(self) -> str:
        return f"{self.topic}/{self.partition}/{self.offset}"

    @classmethod
    def parse(cls, text: str) -> Lineage:
        topic, partition, offset = text.rsplit("/", 2)
        return cls(topic, int(partition), int(offset))


class Outcome(str, Enum):
    """What happened to one source record. Every record has exactly one."""

    DELIVERED = "delivered"
    WITHHELD = "withheld"
    QUARANTINED = "quarantined"


@dataclass(frozen=True, slots=True)
class RawMessage:
    """One message as read from the origin: bytes plus where it came from."""

    lineage: Lineage
    value: bytes | None
    key: bytes | None = None
    timestamp_ms: int | None = None
