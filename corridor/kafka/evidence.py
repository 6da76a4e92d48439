"""Reads the audit evidence of a zone: a whole topic at read_committed, in topic order.

Owns: reading one evidence topic (audit events, signed checkpoints, a destination's copy
of them) to the end offsets seen when the read starts, with its log start (what retention
or a delete-records has removed from the front). Does not own: decoding or checking what
was read (``corridor.core.audit``, ``corridor audit verify``); the reading itself is
``corridor.kafka.io.read_to_end`` (manual assignment, no group state, no commit).

A topic the principal may not see is refused here with the broker's error code
(``TOPIC_AUTHORIZATION_FAILED``), not reported as "does not exist".
"""

from __future__ import annotations

from dataclasses import dataclass

from confluent_kafka import KafkaError, KafkaException

from corridor.core.errors import KafkaUnavailable
from corridor.kafka.clients import Endpoint, admin_client, unavailable
from corridor.kafka.io import METADATA_TIMEOUT_S, Record, read_to_end, watermarks
from corridor.zones.credentials import Principal


@dataclass(frozen=True, slots=True)
class TopicLog:
    """One topic as read: its records in topic order (partition, then offset), and the
    lowest log start offset of its partitions (0 when nothing was removed from the front)."""

    zone: str
    topic: str
    log_start: int
    records: tuple[Record, ...]


def read_log(endpoint: Endpoint, principal: Principal, topic: str,
             timeout_s: float = 60.0) -> TopicLog:
    """Every committed record of *topic* up to its end offsets at the start of the read.

    Raises KafkaUnavailable (with the Kafka error's code) when the topic does not exist,
    *principal* may not describe it, or the end is not reached within *timeout_s*."""
    _check_visible(endpoint, principal, topic)
    marks = watermarks(endpoint, principal, topic)
    records = sorted(read_to_end(endpoint, principal, topic, timeout_s),
                     key=lambda r: (r.partition, r.offset))
    start = min((low for low, _high in marks.values()), default=0)
    return TopicLog(endpoint.zone, topic, start, tuple(records))


def _check_visible(endpoint: Endpoint, principal: Principal, topic: str) -> None:
    admin = admin_client(endpoint, principal)
    try:
        meta = admin.list_topics(topic, timeout=METADATA_TIMEOUT_S).topics.get(topic)
    except KafkaException as exc:
        raise unavailable(f"{endpoint.zone}: metadata of {topic}", exc) from None
    if meta is None:
        raise KafkaUnavailable(f"{endpoint.zone}: topic {topic} does not exist",
                               code="UNKNOWN_TOPIC_OR_PART")
    if meta.error is not None:
        missing = meta.error.code() == KafkaError.UNKNOWN_TOPIC_OR_PART
        hint = " (run `corridor provision`)" if missing else ""
        raise KafkaUnavailable(f"{endpoint.zone}: topic {topic}: {meta.error.str()}{hint}",
                               code=meta.error.name())
