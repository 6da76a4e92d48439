"""``_corridor.subject_keys`` on a destination cluster, and erasure announcements.

- ``read_subject_keys``: the topic folded into a ``SubjectKeyBook`` as it holds now
  (read_committed, to the high watermark seen at the start);
- ``write_records``: erasure markers (or any key records) produced and acknowledged;
- ``announce`` / ``ErasureListener``: ``corridor erase`` tells the running processors on
  ``_corridor.control`` which key ids it erased (after the markers are acknowledged);
- ``SubjectKeyFollower``: the SDK's view of the topic, kept current while it reads.

The record formats are ``corridor.core.crypto.subject_keys``'s; a record that does not
parse is skipped here (a value it encrypted fails with KeyNotFound where it is read).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterable

from confluent_kafka import KafkaException, TopicPartition

from corridor.core import topics
from corridor.core.crypto.subject_keys import ErasureAnnouncement, SubjectKeyBook
from corridor.core.errors import CryptoError, KafkaUnavailable
from corridor.kafka.clients import Endpoint
from corridor.kafka.io import Follower, PlainProducer, Record, read_to_end
from corridor.kafka.keys_topic import ControlListener
from corridor.zones.credentials import Principal


def fold(book: SubjectKeyBook, records: Iterable[Record]) -> int:
    """Apply *records* in order to *book*; returns how many were skipped (malformed)."""
    skipped = 0
    for rec in records:
        if rec.key is None:
            continue
        try:
            book.apply(rec.key, rec.value)
        except (CryptoError, UnicodeDecodeError):
            skipped += 1
    return skipped


def read_subject_keys(endpoint: Endpoint, principal: Principal,
                      timeout_s: float = 60.0) -> SubjectKeyBook:
    """The subject key topic of *endpoint*'s zone as it is now. KafkaUnavailable when the
    topic is missing or its end is not reached in time."""
    book = SubjectKeyBook()
    fold(book, read_to_end(endpoint, principal, topics.SUBJECT_KEYS, timeout_s=timeout_s))
    return book


def write_records(endpoint: Endpoint, principal: Principal,
                  records: Iterable[tuple[bytes, bytes]]) -> int:
    """Produce (key, value) records to the subject key topic; waits for every ack."""
    producer = PlainProducer(endpoint, principal)
    count = 0
    for key, value in records:
        producer.produce(topics.SUBJECT_KEYS, value, key)
        count += 1
    producer.flush(30)
    return count


def announce(endpoint: Endpoint, principal: Principal, news: ErasureAnnouncement) -> None:
    producer = PlainProducer(endpoint, principal)
    producer.produce(topics.CONTROL, news.to_json(), news.key)
    producer.flush(30)


class ErasureListener(ControlListener):
    """The erasures of one corridor announced on ``_corridor.control`` since its creation."""

    def erasures(self) -> list[ErasureAnnouncement]:
        """Announcements that arrived since the last call (does not block)."""
        try:
            msgs = self.consumer.consume(100, timeout=0)
        except KafkaException:
            return []  # the destination is unreachable; the next call tries again
        found = [ErasureAnnouncement.parse(m.value()) for m in msgs if m.error() is None]
        return [a for a in found if a is not None and a.corridor == self.corridor]


class SubjectKeyFollower:
    """Follows the subject key topic from its beginning into ``book``: ``catch_up`` reads to
    the end as it is now (a key published with a record is then known), ``poll`` takes what
    arrived (an erasure marker, so a running reader learns of an erasure)."""

    def __init__(self, endpoint: Endpoint, principal: Principal) -> None:
        self.endpoint = endpoint
        self.book = SubjectKeyBook()
        self._follower = Follower(endpoint, principal, topics.SUBJECT_KEYS)

    def poll(self, timeout_s: float = 0.0) -> int:
        """Apply what arrived within *timeout_s*; returns how many records."""
        records = self._follower.poll(timeout_s, max_records=10000)
        fold(self.book, records)
        return len(records)

    def catch_up(self, timeout_s: float = 30.0) -> None:
        """Apply every committed record up to the current end. KafkaUnavailable on timeout."""
        consumer = self._follower.consumer
        try:
            parts = consumer.assignment()
            targets = {tp.partition: consumer.get_watermark_offsets(
                tp, timeout=10, cached=False)[1] for tp in parts}
            deadline = time.monotonic() + timeout_s
            while True:
                done = consumer.position([TopicPartition(topics.SUBJECT_KEYS, p)
                                          for p in targets])
                if all(tp.offset >= targets[tp.partition] for tp in done
                       if targets[tp.partition] > 0):
                    return
                if time.monotonic() > deadline:
                    raise KafkaUnavailable(f"{self.endpoint.zone}: {topics.SUBJECT_KEYS} did "
                                           f"not reach its end within {timeout_s:.0f}s")
                self.poll(0.2)
        except KafkaException as exc:
            raise KafkaUnavailable(f"{self.endpoint.zone}: {topics.SUBJECT_KEYS}: {exc}"
                                   ) from None

    def close(self) -> None:
        with contextlib.suppress(RuntimeError):
            self._follower.close()
