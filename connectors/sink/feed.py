"""Reading a corridor topic from the offsets a sink stored (I/O: the destination cluster).

``CorridorConsumer`` (the SDK) reads a topic from its beginning or end, or from a consumer
group's offsets; a sink keeps its offsets in its own target, committed with its rows, so
it must start exactly there. The feed therefore reads with the Kafka client that can start
at given offsets (``corridor.kafka.source.Source``, read_committed, manually assigned: no
group membership, no offsets committed to Kafka) and decodes each message with
``CorridorConsumer.decode``: the SDK's decoding, schemas and decryption, unchanged.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import structlog

from connectors.errors import ConnectError
from corridor.core.errors import CorridorError
from corridor.core.model import RawMessage
from corridor.kafka.clients import Endpoint, Principal
from corridor.kafka.io import Record, watermarks
from corridor.kafka.source import BEGINNING, Source
from corridor.sdk import CorridorConsumer, CorridorRecord

log = structlog.get_logger("connectors.sink")


@dataclass
class Fetched:
    """What one poll brought: the decoded records in partition order, and per partition
    the offset after the last message read (what to store once they are written)."""

    records: list[CorridorRecord] = field(default_factory=list)
    next_offsets: dict[int, int] = field(default_factory=dict)
    messages: int = 0


class CorridorFeed:
    """One corridor topic, all partitions, from ``starts`` (partition -> next offset; a
    partition without one from its beginning). ``kek_provider``: the destination zone's,
    to decrypt; None keeps ciphertext."""

    def __init__(self, endpoint: Endpoint, principal: Principal, topic: str,
                 starts: Mapping[int, int], kek_provider: Any = None,
                 group: str | None = None) -> None:
        self.topic = topic
        decoder = CorridorConsumer(endpoint, topic, kek_provider=kek_provider,
                                   from_beginning=False, principal=principal)
        decoder.close()  # only decode() is used (no reading): stop its consumer at once
        self.decoder = decoder
        group = group or f"analytics-{endpoint.zone}-connect-{uuid.uuid4().hex[:8]}"
        self.source = Source(endpoint, principal, group, max_wait_ms=500, headers=True,
                             notify=_notify)
        partitions = sorted(watermarks(endpoint, principal, topic))
        self.source.incremental_assign([(topic, p, starts.get(p, BEGINNING)) for p in partitions])
        log.info("feed_started", topic=topic, partitions=len(partitions),
                 resumed={p: o for p, o in sorted(starts.items())})

    def poll(self, max_messages: int, timeout_s: float) -> Fetched:
        """Up to ``max_messages`` messages, waiting up to ``timeout_s`` for the first.
        Raises ConnectError for a message the SDK cannot decode or decrypt (never skipped:
        a skipped record would be missing from the table for good)."""
        out = Fetched()
        polled = self.source.consume(max_messages, timeout_s)
        for (_topic, partition), messages in polled.groups.items():
            for message in messages:
                out.records.extend(self._decode(message))
                out.next_offsets[partition] = message.lineage.offset + 1
                out.messages += 1
        return out

    def _decode(self, message: RawMessage) -> list[CorridorRecord]:
        where = message.lineage
        record = Record(where.topic, where.partition, where.offset, message.key, message.value,
                        tuple((k, v) for k, v in message.headers or () if v is not None),
                        message.timestamp_ms)
        try:
            return self.decoder.decode(record)
        except CorridorError as exc:
            raise ConnectError(f"{where.topic}/{where.partition}/{where.offset}",
                               f"cannot decode: {exc}") from None

    def close(self) -> None:
        self.source.close()


def _notify(event: str, fields: dict[str, Any]) -> None:
    log.warning(event, **fields)
