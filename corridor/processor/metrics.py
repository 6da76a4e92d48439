"""Prometheus metrics of a running corridor, and the /healthz and /readyz answers.

Names follow Prometheus conventions (``_total`` counters, base units: seconds, bytes) and
mean what MirrorMaker 2's do where they overlap (record count, record age, replication
latency, byte rate per topic-partition):

| metric | type | labels |
|---|---|---|
| corridor_records_total | counter | corridor, topic, partition, outcome, reason |
| corridor_bytes_total | counter | corridor, topic, direction (in: source values, out: produced) |
| corridor_replication_latency_seconds | histogram | corridor, topic: source timestamp -> commit |
| corridor_record_age_seconds | gauge | corridor, topic, partition: age of the last record committed |
| corridor_consumer_lag_records | gauge | corridor, topic, partition |
| corridor_transactions_total | counter | corridor, result (committed, aborted, fenced) |
| corridor_producer_fenced_total | counter | corridor |
| corridor_key_epoch | gauge | corridor: the current data key's epoch (0: encrypts nothing) |
| corridor_kms_up | gauge | corridor, zone: 1 while the destination's key provider answers |
| corridor_registry_up | gauge | corridor, zone: 1 while the zone's schema registry answers |
| corridor_last_commit_timestamp_seconds | gauge | corridor |
| corridor_seconds_since_last_commit | gauge | corridor (computed at scrape time) |
| corridor_info | gauge (1) | corridor, policy, origin, destination |
| corridor_instrument_expiry_seconds | gauge | corridor, instrument: seconds to its expiry |
| corridor_subjects | gauge | zone, year, class: distinct subjects in the origin's ledger |
| corridor_subjects_ceiling | gauge | zone, class: the zone's ``thresholds`` ceiling |
| corridor_subject_threshold_alerts_total | counter | zone, class, level (warning: 80%, reached) |
| corridor_consent_staleness_seconds | gauge | corridor: age of the consent view (-1: never caught up) |

The instrument gauge is computed at scrape time; it turns negative once the instrument has
expired (every record is then withheld as ``instrument_expired``). ``reason`` is bounded:
the reason's kind (``decode``, ``validate``, ``oversized``, ``withhold``, ``admit``,
``instrument_expired``, ...), never its free text; ``""`` for delivered records.
The counters add up to what ``corridor verify`` counts for the records this process
committed. The latency histogram is kept with numpy (one vectorised update per batch,
not one ``observe()`` per record: the per-record call cost 5% of the avro hot loop).
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
from prometheus_client import (
    CONTENT_TYPE_LATEST,
    CollectorRegistry,
    Gauge,
    disable_created_metrics,
    generate_latest,
)
from prometheus_client import Counter as PromCounter
from prometheus_client.core import HistogramMetricFamily
from prometheus_client.registry import Collector

# No *_created series: one more series per counter child, and no dashboard uses them.
disable_created_metrics()

# Seconds: a corridor commits every ~0.1-1 s; outages push latency into minutes.
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0,
                   120.0, 300.0, 600.0)
MAX_REASON = 32
# /healthz fails when the loop has not turned for this long. Above every wait inside one
# turn that does not report itself (a KMS outage does: it turns the loop while it waits).
LOOP_BOUND_S = 120.0


def reason_kind(reason: str) -> str:
    """The bounded label of a withheld or quarantine reason: the word before its colon (or
    the first word: ``class important not admitted ...`` -> ``class``)."""
    head = reason.split(":", 1)[0].strip() if ":" in reason else (reason.split() or [""])[0]
    head = head.rsplit(".", 1)[-1] if head.startswith("corridor.") else head
    return head[:MAX_REASON] or "unknown"


class _Latency(Collector):
    """A histogram per (corridor, topic) updated a batch at a time."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._bounds = np.array(LATENCY_BUCKETS)
        self._series: dict[tuple[str, str], tuple[np.ndarray, float, int]] = {}

    def observe_many(self, corridor: str, topic: str, seconds: np.ndarray) -> None:
        if seconds.size == 0:
            return
        counts = np.bincount(np.searchsorted(self._bounds, seconds, side="left"),
                             minlength=len(self._bounds) + 1)
        with self._lock:
            old = self._series.get((corridor, topic))
            if old is None:
                self._series[(corridor, topic)] = (counts, float(seconds.sum()), seconds.size)
            else:
                self._series[(corridor, topic)] = (old[0] + counts, old[1] + float(seconds.sum()),
                                                   old[2] + seconds.size)

    def collect(self) -> Iterator[HistogramMetricFamily]:
        family = HistogramMetricFamily(
            "corridor_replication_latency_seconds",
            "Source record timestamp to destination commit, per delivered record.",
            labels=["corridor", "topic"])
        with self._lock:
            items = list(self._series.items())
        for (corridor, topic), (counts, total, _n) in items:
            cumulative = np.cumsum(counts).tolist()
            buckets = [(repr(b), cumulative[i]) for i, b in enumerate(LATENCY_BUCKETS)]
            buckets.append(("+Inf", cumulative[-1]))
            family.add_metric([corridor, topic], buckets, total)
        yield family


@dataclass
class Health:
    """What /healthz and /readyz answer; the runner updates it, the HTTP thread reads it."""

    loop_bound_s: float
    clock: Callable[[], float] = time.monotonic
    last_turn: float = field(default=0.0)
    partitions: int = 0
    key_ready: bool = True
    kms_up: bool = True
    consent_fresh: bool = True

    def turned(self) -> None:
        self.last_turn = self.clock()

    def live(self) -> tuple[bool, str]:
        age = self.clock() - self.last_turn if self.last_turn else float("inf")
        if age <= self.loop_bound_s:
            return True, f"loop turned {age:.1f}s ago"
        return False, f"loop has not turned for {age:.1f}s (bound {self.loop_bound_s:.0f}s)"

    def ready(self) -> tuple[bool, str]:
        problems = []
        if self.partitions <= 0:
            problems.append("no partitions assigned")
        if not self.key_ready:
            problems.append("data key not published")
        if not self.kms_up:
            problems.append("KMS unreachable")
        if not self.consent_fresh:
            problems.append("consent view stale: corridor paused")
        return (not problems, "; ".join(problems) or f"{self.partitions} partitions assigned")


class CorridorMetrics:
    """The metrics of the corridors of one process, in their own registry."""

    def __init__(self, registry: CollectorRegistry | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.registry = registry or CollectorRegistry()
        self.clock = clock
        r = self.registry
        self.records = PromCounter("corridor_records", "Source records by outcome.",
                                   ["corridor", "topic", "partition", "outcome", "reason"],
                                   registry=r)
        self.bytes = PromCounter("corridor_bytes", "Bytes read from sources and produced.",
                                 ["corridor", "topic", "direction"], registry=r)
        self.age = Gauge("corridor_record_age_seconds",
                         "Age of the last record committed, per source partition.",
                         ["corridor", "topic", "partition"], registry=r)
        self.lag = Gauge("corridor_consumer_lag_records",
                         "Source records not yet committed, per owned partition.",
                         ["corridor", "topic", "partition"], registry=r)
        self.transactions = PromCounter("corridor_transactions", "Destination transactions.",
                                        ["corridor", "result"], registry=r)
        self.fenced = PromCounter("corridor_producer_fenced",
                                  "Times a partition's producer was fenced.", ["corridor"],
                                  registry=r)
        self.epoch = Gauge("corridor_key_epoch", "Epoch of the current data key.",
                           ["corridor"], registry=r)
        self.kms = Gauge("corridor_kms_up", "1 while the destination's key provider answers.",
                         ["corridor", "zone"], registry=r)
        self.registry_up = Gauge("corridor_registry_up",
                                 "1 while the zone's schema registry answers.",
                                 ["corridor", "zone"], registry=r)
        self.last_commit = Gauge("corridor_last_commit_timestamp_seconds",
                                 "Unix time of the last committed transaction.", ["corridor"],
                                 registry=r)
        self.since_commit = Gauge("corridor_seconds_since_last_commit",
                                  "Seconds since the last committed transaction.", ["corridor"],
                                  registry=r)
        self.info = Gauge("corridor_info", "The corridor this process runs (always 1).",
                          ["corridor", "policy", "origin", "destination"], registry=r)
        self.instrument_expiry = Gauge(
            "corridor_instrument_expiry_seconds",
            "Seconds until the corridor's transfer instrument expires (negative: expired, "
            "every record is withheld).", ["corridor", "instrument"], registry=r)
        self.subjects = Gauge("corridor_subjects",
                              "Distinct data subjects in the origin zone's ledger.",
                              ["zone", "year", "class"], registry=r)
        self.subject_ceiling = Gauge("corridor_subjects_ceiling",
                                     "The origin zone's yearly ceiling of distinct subjects.",
                                     ["zone", "class"], registry=r)
        self.subject_alerts = PromCounter("corridor_subject_threshold_alerts",
                                          "Ledger classes crossing 80% of a ceiling or reaching "
                                          "it.", ["zone", "class", "level"], registry=r)
        self.consent_staleness = Gauge("corridor_consent_staleness_seconds",
                                       "Age of the consent view (-1: never caught up).",
                                       ["corridor"], registry=r)
        self.latency = _Latency()
        r.register(self.latency)
        self._commits: dict[str, float] = {}

    def corridor(self, name: str, policy: str, origin: str, destination: str,
                 encrypts: bool) -> None:
        """Announce a corridor: its info series and the gauges that start known."""
        self.info.labels(name, policy, origin, destination).set(1)
        self.transactions.labels(name, "committed")
        self.transactions.labels(name, "aborted")
        self.transactions.labels(name, "fenced")
        self.fenced.labels(name)
        self.epoch.labels(name).set(0)
        if encrypts:
            self.kms.labels(name, destination).set(1)
        started = self.clock()
        self._commits[name] = started
        self.since_commit.labels(name).set_function(
            lambda: self.clock() - self._commits.get(name, started))

    def committed(self, corridor: str, topic: str, partition: int,
                  delivered: int, withheld: Iterable[str], quarantined: Iterable[str],
                  bytes_in: int, bytes_out: int, timestamps_ms: Sequence[int | None]) -> None:
        """One committed chunk of one source partition (call after the commit, never before)."""
        now = self.clock()
        part = str(partition)
        if delivered:
            self.records.labels(corridor, topic, part, "delivered", "").inc(delivered)
        for outcome, reasons in (("withheld", withheld), ("quarantined", quarantined)):
            for kind, n in Counter(reason_kind(r) for r in reasons).items():
                self.records.labels(corridor, topic, part, outcome, kind).inc(n)
        self.bytes.labels(corridor, topic, "in").inc(bytes_in)
        self.bytes.labels(corridor, topic, "out").inc(bytes_out)
        self.transactions.labels(corridor, "committed").inc()
        self.last_commit.labels(corridor).set(now)
        self._commits[corridor] = now
        stamps = np.array([t for t in timestamps_ms if t is not None], dtype=np.float64)
        if stamps.size:
            seconds = np.maximum(now - stamps / 1000.0, 0.0)
            self.latency.observe_many(corridor, topic, seconds)
            self.age.labels(corridor, topic, part).set(float(seconds[-1]))

    def instrument(self, corridor: str, instrument: str, expiry_s: float) -> None:
        """The corridor runs under ``instrument``, expired from Unix time ``expiry_s``."""
        self.instrument_expiry.labels(corridor, instrument).set_function(
            lambda: expiry_s - self.clock())

    def aborted(self, corridor: str) -> None:
        self.transactions.labels(corridor, "aborted").inc()

    def fenced_producer(self, corridor: str) -> None:
        self.transactions.labels(corridor, "fenced").inc()
        self.fenced.labels(corridor).inc()

    def lag_of(self, corridor: str, lags: dict[tuple[str, int], int]) -> None:
        for (topic, partition), n in lags.items():
            self.lag.labels(corridor, topic, str(partition)).set(n)

    def key_epoch(self, corridor: str, epoch: int) -> None:
        self.epoch.labels(corridor).set(epoch)

    def kms_reachable(self, corridor: str, zone: str, up: bool) -> None:
        self.kms.labels(corridor, zone).set(1 if up else 0)

    def registry_reachable(self, corridor: str, zone: str, up: bool) -> None:
        self.registry_up.labels(corridor, zone).set(1 if up else 0)


def metric_names(metrics: CorridorMetrics) -> set[str]:
    """Every series name the exposition can carry (for dashboards and rules to be checked
    against)."""
    names: set[str] = set()
    for family in metrics.registry.collect():
        suffixes: tuple[str, ...] = ("",)
        if family.type == "counter":
            suffixes = ("_total", "_created")
        elif family.type == "histogram":
            suffixes = ("_bucket", "_count", "_sum")
        names.update(family.name + s for s in suffixes)
    return names


def reasons_of(records: Iterable[Any]) -> list[str]:
    """The ``reason`` of each side record (withheld or quarantined)."""
    return [r.reason for r in records]


class RunObserver:
    """What one runner tells its metrics and health. Without metrics it only keeps Health
    (cheap); every method is safe to call from the runner's thread."""

    def __init__(self, corridor: str, destination: str, metrics: CorridorMetrics | None = None,
                 health: Health | None = None) -> None:
        self.corridor, self.destination = corridor, destination
        self.metrics = metrics
        self.health = health or Health(loop_bound_s=LOOP_BOUND_S)

    def started(self, policy: str, origin: str, encrypts: bool) -> None:
        self.health.key_ready = not encrypts
        if self.metrics is not None:
            self.metrics.corridor(self.corridor, policy, origin, self.destination, encrypts)

    def instrument(self, instrument: Any, expiry_ms: int | None) -> None:
        """The corridor's transfer instrument (None: it names none) and its expiry."""
        if self.metrics is not None and instrument is not None and expiry_ms is not None:
            self.metrics.instrument(self.corridor, instrument.id, expiry_ms / 1000)

    def turned(self, partitions: int | None = None) -> None:
        self.health.turned()
        if partitions is not None:
            self.health.partitions = partitions

    def committed(self, topic: str, partition: int, result: Any,
                  raws: Sequence[Any]) -> None:
        """A chunk's transaction committed: count its outcomes, bytes and latencies."""
        if self.metrics is None:
            return
        stamps_by_offset = {r.lineage.offset: r.timestamp_ms for r in raws}
        stamps: list[int | None] = []
        bytes_out = 0
        for d in result.delivered:
            bytes_out += len(d.value or b"")
            if d.offsets:
                stamps.extend(stamps_by_offset.get(o) for o in d.offsets)
            else:
                stamps.append(d.timestamp)
        counts = result.counts()
        self.metrics.committed(
            self.corridor, topic, partition, counts["delivered"],
            reasons_of(result.withheld), reasons_of(result.quarantined),
            sum(len(r.value or b"") for r in raws), bytes_out, stamps)

    def aborted(self) -> None:
        if self.metrics is not None:
            self.metrics.aborted(self.corridor)

    def fenced(self) -> None:
        if self.metrics is not None:
            self.metrics.fenced_producer(self.corridor)

    def lags(self, lags: dict[tuple[str, int], int]) -> None:
        if self.metrics is not None:
            self.metrics.lag_of(self.corridor, lags)

    def key(self, epoch: int, ready: bool) -> None:
        self.health.key_ready = ready
        if self.metrics is not None:
            self.metrics.key_epoch(self.corridor, epoch)

    def subjects(self, zone: str, year: int, field_class: str, count: int,
                 ceiling: int | None) -> None:
        """The ledger's count of one zone, year and class (and the zone's ceiling)."""
        if self.metrics is not None:
            self.metrics.subjects.labels(zone, str(year), field_class).set(count)
            if ceiling is not None:
                self.metrics.subject_ceiling.labels(zone, field_class).set(ceiling)

    def subject_alert(self, zone: str, field_class: str, level: str) -> None:
        if self.metrics is not None:
            self.metrics.subject_alerts.labels(zone, field_class, level).inc()

    def consent_staleness(self, staleness_ms: int | None) -> None:
        if self.metrics is not None:
            seconds = -1.0 if staleness_ms is None else staleness_ms / 1000
            self.metrics.consent_staleness.labels(self.corridor).set(seconds)

    def event(self, name: str, fields: dict[str, Any]) -> None:
        """The runner's state changes (``_notify``): KMS and registry reachability, and the
        consent view's pause."""
        if name in ("consent_view_stale", "consent_view_rebuilding", "consent_view_fresh"):
            self.health.consent_fresh = name == "consent_view_fresh"
        elif name in ("kms_unavailable", "kms_available"):
            up = name == "kms_available"
            self.health.kms_up = up
            if self.metrics is not None:
                self.metrics.kms_reachable(self.corridor, self.destination, up)
        elif name in ("registry_unavailable", "registry_available") and self.metrics is not None:
            self.metrics.registry_reachable(self.corridor, str(fields.get("zone", "")),
                                            name == "registry_available")


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:  # noqa: N802 (the http.server API)
        path = self.path.split("?", 1)[0]
        if path == "/metrics":
            body, ctype = generate_latest(self.server.metrics.registry), CONTENT_TYPE_LATEST
            self._send(200, body, ctype)
        elif path in ("/healthz", "/readyz"):
            checks = [(name, h.live() if path == "/healthz" else h.ready())
                      for name, h in self.server.health.items()]
            ok = bool(checks) and all(result[0] for _, result in checks)
            text = "\n".join(f"{name}: {'ok' if good else 'failing'}: {why}"
                             for name, (good, why) in checks) or "no corridor running"
            self._send(200 if ok else 503, (text + "\n").encode(), "text/plain; charset=utf-8")
        else:
            self._send(404, b"not found: /metrics, /healthz, /readyz\n", "text/plain")

    def _send(self, code: int, body: bytes, ctype: str) -> None:
        self.send_response(code)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002
        return  # scrapes every few seconds: not worth a log line each


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address: tuple[str, int], metrics: CorridorMetrics,
                 health: dict[str, Health]) -> None:
        super().__init__(address, _Handler)
        self.metrics, self.health = metrics, health


def serve(metrics: CorridorMetrics, health: dict[str, Health], port: int,
          host: str = "0.0.0.0") -> ThreadingHTTPServer:
    """Serve /metrics, /healthz and /readyz on ``port`` in a daemon thread; returns the server
    (``shutdown()`` stops it). ``health`` maps corridor name -> its Health."""
    server = _Server((host, port), metrics, health)
    threading.Thread(target=server.serve_forever, name="corridor-metrics", daemon=True).start()
    return server
