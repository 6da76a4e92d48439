"""End-to-end latency at a paced load: produce at a fixed rate, read committed at the other end.

A paced producer writes records into the source at ``rate`` records/s; a
read_committed consumer on the destination topic (assigned at its end before
the first record is produced) takes, for each record it reads, the time it
became readable minus the time its source record was produced (librdkafka's
CreateTime, from the delivery report). The source record is found by the
``corridor-lineage`` header (corridor, hand-written loop), the Arrow batch's
``_lineage_offset`` column, or, for MirrorMaker 2, the record timestamp it
copies from the source. Records produced during the first ``warmup_s`` are not
counted.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from confluent_kafka import OFFSET_END, Consumer, Producer, TopicPartition

from corridor.core.codec.arrow_batches import read_arrow
from corridor.core.wire import LINEAGE, LINEAGE_OFFSET
from corridor.kafka.clients import Endpoint, client_config
from corridor.zones.credentials import Principal

TICK_S = 0.01


@dataclass
class Samples:
    """Produce times by source (partition, offset), and the latencies measured so far (ms)."""

    produced: dict[tuple[int, int], int] = field(default_factory=dict)
    latencies: list[float] = field(default_factory=list)
    not_before_ms: int = 0


def _percentile(values: list[float], q: float) -> float:
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def paced_produce(endpoint: Endpoint, admin: Principal, topic: str, values: list[bytes],
                  rows_per_value: int, rate: float, seconds: float, partitions: int,
                  samples: Samples, stop: threading.Event) -> int:
    """Produce ``values`` (cycled) so that ``rate`` records/s arrive; returns records produced.

    An Arrow value holds ``rows_per_value`` records and is sent when its rows are due.
    """
    producer = Producer(client_config(endpoint, admin, {
        "linger.ms": 5, "acks": "all", "compression.type": "lz4", "log_level": 3}))

    def delivered(err: object, msg: object) -> None:
        if err is None:
            samples.produced[(msg.partition(), msg.offset())] = msg.timestamp()[1]  # type: ignore[attr-defined]

    start, sent, i = time.monotonic(), 0, 0
    while not stop.is_set():
        elapsed = time.monotonic() - start
        if elapsed >= seconds:
            break
        due = int(elapsed * rate)
        while sent + rows_per_value <= due:
            producer.produce(topic, values[i % len(values)], partition=i % partitions,
                             on_delivery=delivered)
            sent += rows_per_value
            i += 1
        producer.poll(0)
        time.sleep(TICK_S)
    producer.flush(30)
    return sent


def _lineages(msg: object) -> list[tuple[int, int]]:
    """(source partition, offset) of each record a destination message carries."""
    headers = dict(msg.headers() or [])  # type: ignore[attr-defined]
    lineage = headers.get(LINEAGE)
    if lineage is None:
        return []
    _topic, partition, offset = lineage.decode().rsplit("/", 2)
    batch = read_arrow(msg.value())  # type: ignore[attr-defined]
    if batch is None:
        return [(int(partition), int(offset.split("#", 1)[0]))]
    column = batch.column(batch.schema.get_field_index(LINEAGE_OFFSET)).to_pylist()
    return [(int(partition), o) for o in column]


def follow(endpoint: Endpoint, admin: Principal, topic: str, partitions: int,
           by_timestamp: bool, samples: Samples, stop: threading.Event,
           ready: threading.Event) -> None:
    """Read ``topic`` at read_committed from its end until ``stop``; record latencies."""
    consumer = Consumer(client_config(endpoint, admin, {
        "group.id": f"bench-latency-{topic}", "enable.auto.commit": False,
        "isolation.level": "read_committed", "fetch.wait.max.ms": 5, "log_level": 3}))
    consumer.assign([TopicPartition(topic, p, OFFSET_END) for p in range(partitions)])
    consumer.consume(1, 1.0)  # resolve the end offsets before anything is produced
    ready.set()
    pending: list[tuple[tuple[int, int], int]] = []  # lineages whose delivery report is late
    while not stop.is_set():
        for msg in consumer.consume(1000, 0.05):
            if msg.error() is not None:
                continue
            now = int(time.time() * 1000)
            if by_timestamp:
                ts = msg.timestamp()[1]
                if ts >= samples.not_before_ms:
                    samples.latencies.append(now - ts)
                continue
            pending.extend((src, now) for src in _lineages(msg))
        pending = _resolve(pending, samples)
    consumer.close()


def _resolve(pending: list[tuple[tuple[int, int], int]], samples: Samples
             ) -> list[tuple[tuple[int, int], int]]:
    left = []
    for src, seen in pending:
        ts = samples.produced.get(src)
        if ts is None:
            left.append((src, seen))
        elif ts >= samples.not_before_ms:
            samples.latencies.append(seen - ts)
    return left[-100_000:]


def measure(source: Endpoint, dest: Endpoint, admin: Principal, source_topic: str,
            dest_topic: str, values: list[bytes], rows_per_value: int, rate: float,
            seconds: float, warmup_s: float, partitions: int, by_timestamp: bool,
            tick: Callable[[int], None] = lambda _: None) -> dict[str, float]:
    """Latency p50/p99 (ms) of records produced at ``rate`` records/s for ``seconds``."""
    samples = Samples(not_before_ms=int((time.time() + warmup_s) * 1000))
    stop, ready = threading.Event(), threading.Event()
    reader = threading.Thread(target=follow, args=(dest, admin, dest_topic, partitions,
                                                   by_timestamp, samples, stop, ready),
                              daemon=True)
    reader.start()
    ready.wait(30)
    samples.not_before_ms = int((time.time() + warmup_s) * 1000)
    writer = threading.Thread(target=paced_produce, args=(
        source, admin, source_topic, values, rows_per_value, rate, seconds + warmup_s,
        partitions, samples, stop), daemon=True)
    writer.start()
    while writer.is_alive():
        tick(len(samples.latencies))
        writer.join(0.2)
    deadline = time.monotonic() + 10  # let the last records arrive
    expected = rate * seconds * 0.99
    while time.monotonic() < deadline and len(samples.latencies) < expected:
        tick(len(samples.latencies))
        time.sleep(0.2)
    stop.set()
    reader.join(10)
    lat = samples.latencies
    return {"p50_ms": _percentile(lat, 0.50), "p99_ms": _percentile(lat, 0.99),
            "latency_samples": len(lat), "paced_rate": rate}
