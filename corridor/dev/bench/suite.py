"""`make bench`: the systems, one after another on the same seeded records (see the issue).

For each system: start it, measure throughput from the first record consumed to
the last record committed, then, with the same process still running, latency
at half that rate (``corridor.dev.bench.latency``), then stop it. CPU seconds are
the process's own (/proc), from its first output to the last, per million
records; peak RSS is VmHWM at the end (per process: the 2-instance run reports
the larger of the two).

Throughput clocks: the corridor and hand-written children report
``time.monotonic()`` of their first read and last commit; MirrorMaker 2 cannot,
so its window runs from the first record visible in the target to the last
(polled every 50 ms), which leaves out its first fetch: a few ms in its favour.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from confluent_kafka import Consumer, KafkaException, TopicPartition

from corridor.core.codec.arrow_batches import arrow_rows
from corridor.core.schema import load_schema
from corridor.dev.bench import latency, mirror
from corridor.dev.bench.procstat import cpu_seconds, peak_rss_mib
from corridor.dev.bench.workload import DATASET, PARTITIONS, BenchEnv, arrow_values, records
from corridor.dev.sample import SCHEMAS
from corridor.kafka.clients import Endpoint, client_config
from corridor.zones.credentials import Principal

REPO = Path(__file__).resolve().parents[3]
SYSTEMS = ("mirrormaker2", "handwritten", "corridor-avro", "corridor-arrow", "corridor-avro-2x",
           "corridor-avro-metrics")
DEFAULT_SYSTEMS = SYSTEMS[:5]  # corridor-avro-metrics: on request (the metrics' cost)
Tick = Callable[[str, int, int], None]  # (system, done, total)


@dataclass
class Child:
    """A measured subprocess reporting JSON progress lines (corridor.dev.bench.child)."""

    proc: subprocess.Popen[bytes]
    last: dict[str, Any] = field(default_factory=dict)

    def start_reader(self) -> None:
        def read() -> None:
            assert self.proc.stdout is not None
            for line in self.proc.stdout:
                try:
                    self.last = json.loads(line)
                except ValueError:
                    continue
        threading.Thread(target=read, daemon=True).start()


def _spawn(args: list[str], log: Path) -> Child:
    env = {**os.environ, "CORRIDOR_HOME": str(REPO), "CORRIDOR_LOG_JSON": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "corridor.dev.bench.child", *args],
                            stdout=subprocess.PIPE, stderr=open(log, "ab"),  # noqa: SIM115
                            cwd=REPO, env=env)
    child = Child(proc)
    child.start_reader()
    return child


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(60)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(30)


class EndOffsets:
    """Sum of a topic's high watermarks (MM2's target: no transactions, one offset a record)."""

    def __init__(self, endpoint: Endpoint, admin: Principal, topic: str) -> None:
        self.topic = topic
        self.consumer = Consumer(client_config(endpoint, admin, {
            "group.id": "bench-watch", "log_level": 0}))

    def total(self) -> int:
        try:
            return sum(self.consumer.get_watermark_offsets(TopicPartition(self.topic, p),
                                                           timeout=2, cached=False)[1]
                       for p in range(PARTITIONS))
        except KafkaException:
            return 0  # the target topic does not exist yet

    def close(self) -> None:
        self.consumer.close()


@dataclass
class Window:
    """What one throughput phase measured."""

    records: int
    seconds: float
    cpu_s: float


def watch_children(children: list[Child], n: int, name: str, tick: Tick,
                   timeout_s: float) -> Window:
    """Until the children's committed counts add up to n; their own first/last clocks."""
    deadline = time.monotonic() + timeout_s
    cpu_first: float | None = None
    while True:
        states = [c.last for c in children]
        done = sum(s.get("acked", 0) for s in states)
        tick(name, sum(s.get("consumed", 0) for s in states), n)
        if cpu_first is None and any(s.get("consumed") for s in states):
            cpu_first = sum(cpu_seconds(c.proc.pid) for c in children)
        if done >= n:
            break
        for c in children:
            if c.proc.poll() is not None:
                raise RuntimeError(f"{name}: process exited with {c.proc.returncode}")
        if time.monotonic() > deadline:
            raise TimeoutError(f"{name}: {done} of {n} records after {timeout_s:.0f} s")
        time.sleep(0.05)
    cpu = sum(cpu_seconds(c.proc.pid) for c in children) - (cpu_first or 0.0)
    firsts = [s["first"] for s in states if s.get("first")]
    span = max(s["last"] for s in states) - min(firsts)
    return Window(n, span, cpu)


def watch_assigned(children: list[Child], timeout_s: float) -> None:
    """Until every child reports (its runner is built and its consumer subscribed)."""
    deadline = time.monotonic() + timeout_s
    while not all(c.last for c in children):
        if time.monotonic() > deadline:
            raise TimeoutError("corridor processes did not start")
        time.sleep(0.1)
    time.sleep(2.0)  # the group's first assignment; the warm-up of the paced run covers the rest


def watch_offsets(proc: subprocess.Popen[bytes], ends: EndOffsets, n: int, name: str,
                  tick: Tick, timeout_s: float) -> Window:
    """Until the target holds n records: first visible record to the last."""
    deadline = time.monotonic() + timeout_s
    first = 0.0
    cpu_first = 0.0
    while True:
        total = ends.total()
        now = time.monotonic()
        tick(name, total, n)
        if total and not first:
            first, cpu_first = now, cpu_seconds(proc.pid)
        if total >= n:
            return Window(n, now - first, cpu_seconds(proc.pid) - cpu_first)
        if proc.poll() is not None:
            raise RuntimeError(f"{name}: process exited with {proc.returncode}")
        if now > deadline:
            raise TimeoutError(f"{name}: {total} of {n} records after {timeout_s:.0f} s")
        time.sleep(0.05)


@dataclass
class Bench:
    """One `make bench` run over a provisioned BenchEnv holding ``n`` records."""

    env: BenchEnv
    admin: Principal
    n: int
    value_bytes: float  # mean Avro value size: MB/s counts the same payload for every system
    tick: Tick
    latency_s: float = 10.0
    warmup_s: float = 3.0
    timeout_s: float = 900.0
    mm2_tasks: int = 2
    logs: Path = field(default_factory=lambda: Path("."))
    paced_values: list[bytes] = field(default_factory=list)

    def _result(self, window: Window, lat: dict[str, float], rss: float) -> dict[str, Any]:
        rate = window.records / window.seconds
        return {"records_per_s": round(rate), "mb_per_s": round(rate * self.value_bytes / 1e6, 2),
                "p50_ms": round(lat["p50_ms"], 1), "p99_ms": round(lat["p99_ms"], 1),
                "cpu_s_per_million": round(window.cpu_s / window.records * 1e6, 1),
                "peak_rss_mib": round(rss, 1), "seconds": round(window.seconds, 2),
                "latency_samples": lat["latency_samples"], "paced_rate": round(lat["paced_rate"])}

    def _latency(self, name: str, source: str, dest: str, rate: float, arrow: bool,
                 by_timestamp: bool = False) -> dict[str, float]:
        values, rows = self.paced_values, 1
        if arrow:
            wanted = max(1, int(rate * 0.05))  # a park sending one Arrow batch every 50 ms
            schema = load_schema(SCHEMAS / "trade" / "shipment.avsc")
            values = arrow_values(self.paced_values[:wanted], schema)[:1]
            rows = arrow_rows(values[0]) or 1
        total = int(rate * self.latency_s)
        return latency.measure(self.env.origin, self.env.destination, self.admin, source, dest,
                               values, rows, rate, self.latency_s, self.warmup_s, PARTITIONS,
                               by_timestamp, lambda k: self.tick(f"{name} latency", k, total))

    def mirrormaker2(self) -> dict[str, Any]:
        env = self.env
        proc = mirror.start(self.logs, env.origin, env.destination, self.admin,
                            [env.avro_topic, env.mirror_latency_topic], env.tag, self.mm2_tasks)
        ends = EndOffsets(env.destination, self.admin, env.mirror_topic)
        try:
            window = watch_offsets(proc, ends, self.n, "mirrormaker2", self.tick, self.timeout_s)
            rss = peak_rss_mib(proc.pid)
            lat = self._latency("mirrormaker2", env.mirror_latency_topic,
                                env.mirror_latency_target, self.n / window.seconds / 2, False,
                                by_timestamp=True)
            return self._result(window, lat, rss)
        finally:
            ends.close()
            _stop(proc)

    def handwritten(self) -> dict[str, Any]:
        env = self.env
        child = _spawn(["handwritten", str(env.config.path), env.corridors["corridor-avro"],
                        env.handwritten_topic, env.handwritten_side,
                        env.handwritten_latency_topic], self.logs / "handwritten.log")
        try:
            window = watch_children([child], self.n, "handwritten", self.tick, self.timeout_s)
            rss = peak_rss_mib(child.proc.pid)
            lat = self._latency("handwritten", env.handwritten_latency_topic,
                                env.handwritten_topic, self.n / window.seconds / 2, False)
            return self._result(window, lat, rss)
        finally:
            _stop(child.proc)

    def corridor(self, system: str, instances: int = 1) -> dict[str, Any]:
        """Throughput with ``instances`` processes; then latency with as many fresh ones on
        the system's latency corridor (same policy, an empty source of its own)."""
        env, arrow = self.env, system == "corridor-arrow"
        window, rss = self._corridor_window(system, env.corridors[system], instances)
        name = env.latency_corridors[system]
        children = self._start(system, name, instances, "latency")
        try:
            watch_assigned(children, self.timeout_s)
            lat = self._latency(system, env.source_topic(name), env.destination_topic(name),
                                self.n / window.seconds / 2, arrow)
        finally:
            for c in children:
                _stop(c.proc)
        return self._result(window, lat, rss)

    def _start(self, system: str, name: str, instances: int, phase: str) -> list[Child]:
        extra = ["metrics"] if system.endswith("-metrics") else []
        return [_spawn(["corridor", str(self.env.config.path), name, f"i{i}", *extra],
                       self.logs / f"{system}-{phase}-{i}.log") for i in range(instances)]

    def _corridor_window(self, system: str, name: str, instances: int) -> tuple[Window, float]:
        children = self._start(system, name, instances, "throughput")
        try:
            window = watch_children(children, self.n, system, self.tick, self.timeout_s)
            return window, max(peak_rss_mib(c.proc.pid) for c in children)
        finally:
            for c in children:
                _stop(c.proc)

    def run(self, only: tuple[str, ...] = DEFAULT_SYSTEMS) -> dict[str, dict[str, Any]]:
        results: dict[str, dict[str, Any]] = {}
        for system in only:
            if system == "mirrormaker2":
                results[system] = self.mirrormaker2()
            elif system == "handwritten":
                results[system] = self.handwritten()
            elif system == "corridor-avro-2x":
                results[system] = self.corridor(system, 2)
            else:
                results[system] = self.corridor(system)
        return results


def sample_values(n: int = 20_000, seed: int = 4242) -> list[bytes]:
    """Records for the paced runs (another seed: the throughput data is not touched)."""
    return next(records(n, seed))


__all__ = ["DATASET", "SYSTEMS", "Bench", "sample_values"]
