"""Processes the bench measures, each reporting progress as JSON lines on stdout.

    python -m corridor.dev.bench.child corridor CONFIG CORRIDOR INSTANCE
    python -m corridor.dev.bench.child handwritten CONFIG CORRIDOR DEST_TOPIC SIDE_TOPIC [EXTRA_SOURCE]

Every 0.1 s a line ``{"consumed": n, "acked": m, "first": t0, "last": t1}``:
records read and processed, records whose outcome is committed (corridor: in a
committed transaction; hand-written: acknowledged, checked by a flush when idle),
and ``time.monotonic()`` of the first record read and of the last commit
(CLOCK_MONOTONIC, comparable across processes on one machine). Both run until
SIGTERM.

- ``corridor``: the real processor, ``runtime.start_runners`` (the code `corridor run` runs).
- ``handwritten``: what a user writes without corridor: a confluent-kafka
  consume loop, fastavro decoding, the policy per record in plain Python
  (``corridor.dev.reference.process_reference``), one ``produce()`` per
  record, no transactions, auto-committed offsets.
"""

from __future__ import annotations

import json
import signal
import sys
import threading
import time
from typing import Any

from confluent_kafka import Consumer, Producer

from corridor.core.config import load_config
from corridor.core.crypto import DataKeyRing
from corridor.core.model import Lineage, RawMessage
from corridor.core.plan import build_plan
from corridor.dev.reference import process_reference
from corridor.kafka.clients import client_config
from corridor.processor.resolve import credentials, endpoints_for, pseudonym_secret

# The same producer settings as corridor's transactional sink, so the comparison is
# about the processing, not about batching on the wire.
PRODUCER = {"linger.ms": 20, "batch.size": 1_000_000, "compression.type": "lz4",
            "acks": "all", "log_level": 3}


def _report(consumed: int, acked: int, first: float, last: float) -> None:
    line = {"consumed": consumed, "acked": acked, "first": first, "last": last}
    sys.stdout.write(json.dumps(line) + "\n")
    sys.stdout.flush()


def _stop_event() -> threading.Event:
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    return stop


def run_corridor(config_path: str, name: str, instance: str, metrics: str = "") -> None:
    """``metrics="metrics"``: with Prometheus metrics collected (no HTTP server: the cost
    measured is the processor's)."""
    from corridor import log
    from corridor.processor.metrics import CorridorMetrics
    from corridor.processor.wiring import start_runners

    log.configure("warning")
    config = load_config(config_path)
    stop = _stop_event()
    runners, threads, failures = start_runners(
        config, [name], instance, stop, log.get_logger("bench"),
        metrics=CorridorMetrics() if metrics == "metrics" else None)
    stats = runners[0].stats
    while any(t.is_alive() for t in threads):
        _report(stats.consumed, stats.consumed, stats.first_batch, stats.last_delivery)
        for t in threads:
            t.join(0.1)
    _report(stats.consumed, stats.consumed, stats.first_batch, stats.last_delivery)
    if failures:
        raise SystemExit(f"corridor failed: {failures[0][1]}")


def run_handwritten(config_path: str, name: str, dest_topic: str, side_topic: str,
                    *extra_sources: str) -> None:
    config = load_config(config_path)
    corridor = config.corridors[name]
    ring = DataKeyRing()
    ring.rotate(name)
    plan = build_plan(config, name, ring, pseudonym_secret(config, name))
    dp = next(iter(plan.datasets.values()))
    endpoints, admin = endpoints_for(config), credentials().admin
    origin, dest = endpoints[corridor.origin], endpoints[corridor.destination]
    consumer = Consumer(client_config(origin, admin, {
        "group.id": f"handwritten.{name}", "auto.offset.reset": "earliest",
        "enable.auto.commit": True, "log_level": 3}))
    consumer.subscribe([dp.source_topic, *extra_sources])
    acked_at = [0.0]

    def on_delivery(_err: Any, _msg: Any) -> None:
        acked_at[0] = time.monotonic()

    out = Producer(client_config(dest, admin, {**PRODUCER, "on_delivery": on_delivery}))
    side = Producer(client_config(origin, admin, {**PRODUCER, "on_delivery": on_delivery}))
    stop = _stop_event()
    consumed, first, last, reported = 0, 0.0, 0.0, 0.0
    while not stop.is_set():
        messages = consumer.consume(500, 0.1)
        raws = [RawMessage(Lineage(m.topic(), m.partition(), m.offset()), m.value(), m.key())
                for m in messages if m.error() is None]
        if raws:
            first = first or time.monotonic()
            result = process_reference(raws, plan, dp, int(time.time() * 1000),
                                       decoder="fastavro")
            _produce(out, dest_topic, [(d.value, d.key, d.headers) for d in result.delivered])
            _produce(side, side_topic, [(s.value, str(s.lineage).encode(), None)
                                        for s in (*result.withheld, *result.quarantined)])
            consumed += len(raws)
        elif consumed and consumed != reported:
            out.flush(60)  # idle: what was handed over is acknowledged now
            side.flush(60)
            last, reported = acked_at[0], consumed
        _report(consumed, reported, first, last)
    consumer.close()
    out.flush(30)
    side.flush(30)


def _produce(producer: Producer, topic: str, items: list[tuple[Any, Any, Any]]) -> None:
    for value, key, headers in items:
        while True:
            try:
                producer.produce(topic, value, key, headers=headers)
                break
            except BufferError:
                producer.poll(0.05)
        producer.poll(0)


def main(argv: list[str]) -> None:
    kind, *args = argv
    if kind == "corridor":
        run_corridor(*args)
    elif kind == "handwritten":
        run_handwritten(*args)
    else:
        raise SystemExit(f"unknown child {kind!r}")


if __name__ == "__main__":
    main(sys.argv[1:])
