"""Reads the values of an origin zone's audit topic, for `corridor report`.

Owns: :func:`read_events`. Does not own decoding or checking the events
(``corridor.core.report``, ``corridor.core.audit``). The record values in topic order
(partitions interleave; each partition in offset order, which is each chain's log
order: a chain is written by one owner at a time). Read at read_committed, so events of
aborted transactions are not seen; a replay committed twice is (the report counts it
once).
"""

from __future__ import annotations

from corridor.kafka.clients import Endpoint
from corridor.kafka.io import read_to_end
from corridor.zones.credentials import Principal


def read_events(endpoint: Endpoint, principal: Principal, topic: str) -> list[bytes]:
    """Every committed value of *topic* up to its end when the read starts (a null value
    becomes empty bytes: it is no event, and the report counts it undecodable). Raises
    KafkaUnavailable when the topic does not exist or its end is not reached in time."""
    return [rec.value or b"" for rec in read_to_end(endpoint, principal, topic)]
