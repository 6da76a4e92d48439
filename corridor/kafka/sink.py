"""Writing to the clusters: a transactional sink on the destination, side output on the origin.

librdkafka does not implement KIP-890, so the commit does what its transactional API needs:
a retriable error or a timeout on ``commit_transaction`` is retried (the
commit may already have landed: aborting then could not be trusted); only an
error that says ``txn_requires_abort`` aborts; a fatal error (fenced, or the
producer's state is lost) is raised so the caller builds a new producer,
re-reads its offsets and replays.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from confluent_kafka import KafkaError, KafkaException, Producer

from corridor.core.errors import CorridorError

# The record to produce is a value of the core; re-exported for existing importers.
from corridor.core.model import OutMessage as OutMessage
from corridor.kafka.clients import Endpoint, client_config
from corridor.zones.credentials import Principal

COMMIT_WAIT_S = 5.0
PARTITION_UA = -1  # librdkafka: let the partitioner choose


class BatchAborted(CorridorError):
    """The transaction was aborted; nothing of the batch is visible. Replay it."""


class SinkFenced(CorridorError):
    """The producer is fenced or broken for good; build a new one and replay."""


Notify = Callable[[str, dict[str, Any]], None]


class Backoff:
    """Exponential backoff with a ceiling; ``wait`` sleeps (this is the I/O edge)."""

    def __init__(self, first_s: float = 0.2, ceiling_s: float = 5.0) -> None:
        self.first_s, self.ceiling_s, self.next_s = first_s, ceiling_s, first_s

    def wait(self) -> None:
        time.sleep(self.next_s)
        self.next_s = min(self.ceiling_s, self.next_s * 2)

    def reset(self) -> None:
        self.next_s = self.first_s


def _produce_all(producer: Producer, messages: Iterable[OutMessage], on_delivery: Any = None) -> None:
    # Positional arguments (topic, value, key, partition, on_delivery, callback, timestamp,
    # headers): the hot path builds no kwargs dict per record.
    produce = producer.produce
    for m in messages:
        partition = PARTITION_UA if m.partition is None else m.partition
        while True:
            try:
                # (the stubs' list of str | bytes | None values is invariant: ours holds bytes | None)
                produce(m.topic, m.value, m.key, partition, on_delivery, None, m.timestamp or 0,
                        m.headers)  # type: ignore[arg-type]
                break
            except BufferError:
                producer.poll(0.1)  # queue full: let deliveries drain, then retry
    producer.poll(0)


class TransactionalSink:
    """One transactional producer on the destination cluster.

    ``transactional_id`` is derived from the source partition, so whoever
    owns that partition next fences this producer on ``init_transactions``.
    """

    def __init__(self, endpoint: Endpoint, principal: Principal, transactional_id: str,
                 notify: Notify, settings: dict[str, Any] | None = None) -> None:
        self.transactional_id = transactional_id
        self.notify = notify
        conf = client_config(endpoint, principal, {
            "transactional.id": transactional_id,
            "enable.idempotence": True,
            "acks": "all",
            # Long enough to ride out a destination outage of a minute or two
            # inside one transaction; below the broker's transaction.max.timeout.ms.
            "transaction.timeout.ms": 180000,
            "message.timeout.ms": 170000,
            "linger.ms": 20,
            "batch.size": 1_000_000,
            "compression.type": "lz4",
            "message.max.bytes": 8 * 1024 * 1024,
            # Java's default partitioner (murmur2 of the key) for records not sent to their
            # source's partition number: corridor topics co-partition with Java clients'.
            "partitioner": "murmur2_random",
            "log_level": 3,
            **(settings or {}),
        })
        self.producer = Producer(conf)
        self._init()

    def _init(self) -> None:
        backoff = Backoff()
        while True:
            try:
                self.producer.init_transactions(30)
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal():
                    raise SinkFenced(f"init_transactions: {err.str()}") from None
                self.notify("destination_unavailable", {"step": "init", "error": err.str()})
                backoff.wait()

    def write(self, messages: Sequence[OutMessage]) -> None:
        """Write ``messages`` in one transaction and commit it.

        Raises BatchAborted (replay the batch) or SinkFenced (new sink, replay).
        """
        try:
            self.producer.begin_transaction()
            _produce_all(self.producer, messages)
        except KafkaException as exc:
            self._on_error(exc.args[0], "produce")
        self._commit()

    def _commit(self) -> None:
        backoff = Backoff()
        waited = False
        while True:
            try:
                # Short timeout, then retry: an outage is reported (once) within seconds
                # instead of hiding inside one long blocking call.
                self.producer.commit_transaction(COMMIT_WAIT_S)
                if waited:
                    self.notify("destination_available", {"step": "commit"})
                return
            except KafkaException as exc:
                err: KafkaError = exc.args[0]
                if err.fatal() or err.txn_requires_abort():
                    self._on_error(err, "commit")
                if not waited:
                    self.notify("destination_unavailable", {"step": "commit", "error": err.str()})
                    waited = True
                backoff.wait()  # retriable or timed out: the commit may have landed; retry it

    def _on_error(self, err: KafkaError, step: str) -> None:
        if err.fatal():
            raise SinkFenced(f"{step}: {err.str()}")
        if err.txn_requires_abort():
            self._abort()
            raise BatchAborted(f"{step}: {err.str()}")
        raise BatchAborted(f"{step}: {err.str()}") if self._abort() else SinkFenced(err.str())

    def _abort(self) -> bool:
        backoff = Backoff()
        for _ in range(20):
            try:
                self.producer.abort_transaction(30)
                return True
            except KafkaException as exc:
                if exc.args[0].fatal():
                    raise SinkFenced(f"abort: {exc.args[0].str()}") from None
                backoff.wait()
        return False

    def close(self) -> None:
        """Let go of the producer. A fenced or fatally failed one raises on flush: its
        open transaction is aborted by its successor anyway, so that is not an error here
        (and must not escape a rebalance callback)."""
        try:
            self.producer.flush(5)
        except KafkaException as exc:
            if not exc.args[0].fatal():
                raise


class SideOutput:
    """Withheld, quarantine and audit records on the origin: idempotent, never dropped.

    ``write`` returns only when every record is acknowledged. While the origin is
    away, librdkafka retries (``message.timeout.ms=0``: it never drops a message
    on its own). When the origin *refuses* records (a broker error such as a
    full log dir, a message over the topic's ``max.message.bytes``, a deleted
    topic), the refused ones are produced again with backoff, each refusal
    reported once as ``origin_rejected`` with the broker's error, until the
    origin takes them: the batch waits, nothing is skipped. The records are
    keyed by lineage on compacted topics, so a record written twice is one key.
    """

    def __init__(self, endpoint: Endpoint, principal: Principal, notify: Notify) -> None:
        self.notify = notify
        self.endpoint, self.principal = endpoint, principal
        self.producer = self._producer()

    def _producer(self) -> Producer:
        return Producer(client_config(self.endpoint, self.principal, {
            "enable.idempotence": True,
            "acks": "all",
            "message.timeout.ms": 0,
            "linger.ms": 10,
            "compression.type": "lz4",
            "message.max.bytes": 8 * 1024 * 1024,
            "log_level": 3,
        }))

    def write(self, messages: Sequence[OutMessage]) -> None:
        pending = list(messages)
        backoff = Backoff(0.5, 10.0)
        rejected = False
        while pending:
            refused = self._write_once(pending)
            if not refused:
                break
            error = refused[0][1]
            self.notify("origin_rejected", {
                "step": "side-output", "error": error.str(), "code": error.name(),
                "topic": refused[0][0].topic, "records": len(refused),
                "action": "the batch waits and retries; nothing crosses or is skipped"})
            rejected = True
            if error.fatal():  # the idempotent producer cannot go on: a new one can
                self.producer.flush(5)
                self.producer = self._producer()
            pending = [m for m, _ in refused]
            backoff.wait()
        if rejected:
            self.notify("origin_accepted", {"step": "side-output"})

    def _write_once(self, messages: Sequence[OutMessage]) -> list[tuple[OutMessage, KafkaError]]:
        """Produce and flush; the messages the origin refused, with the error."""
        refused: list[tuple[OutMessage, KafkaError]] = []
        for m in messages:
            def on_delivery(err: KafkaError | None, _msg: Any, m: OutMessage = m) -> None:
                if err is not None:
                    refused.append((m, err))

            _produce_one(self.producer, m, on_delivery, refused)
        self.producer.poll(0)
        waited = False
        while self.producer.flush(5) > 0:
            if not waited:
                self.notify("origin_unavailable", {"step": "side-output"})
                waited = True
        if waited:
            self.notify("origin_available", {"step": "side-output"})
        return refused

    def close(self) -> None:
        self.producer.flush(30)


def _produce_one(producer: Producer, m: OutMessage, on_delivery: Any,
                 refused: list[tuple[OutMessage, KafkaError]]) -> None:
    kwargs: dict[str, Any] = {"key": m.key, "headers": m.headers, "on_delivery": on_delivery}
    if m.partition is not None:
        kwargs["partition"] = m.partition
    while True:
        try:
            producer.produce(m.topic, m.value, **kwargs)
            return
        except BufferError:
            producer.poll(0.1)  # queue full: let deliveries drain, then retry
        except KafkaException as exc:  # refused before sending (e.g. over message.max.bytes)
            refused.append((m, exc.args[0]))
            return
