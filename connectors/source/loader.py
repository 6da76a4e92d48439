"""The file source: rows to records, each batch and its progress in one Kafka transaction.

Commit protocol, per batch of at most ``batch_rows`` rows of one file:

1. convert the rows; good ones become single-object Avro records (``ParkProducer.encode``),
   bad ones ``Reject``s;
2. append the batch's rejects to the rejects file and sync it;
3. in one transaction on the origin cluster: the records into ``<zone>.outbound.<dataset>``
   and the file's new progress (next row, counts, done) into ``<zone>.connect.progress``;
   commit.

At start the transactional producer is initialised first (fencing a previous run of the
same job and aborting its open transaction), then the progress is read back at
read_committed, the rejects file trimmed to what that progress covers, and each file
resumes at its committed position: after a crash anywhere, nothing is loaded twice and
nothing is skipped.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

import structlog

from connectors.errors import ConnectError
from connectors.source.convert import Problem, RowConverter
from connectors.source.discover import format_of, head_sha256, identify
from connectors.source.formats import FileRows, SourceRow, Unreadable
from connectors.source.progress import (
    PROGRESS_CONFIG,
    Progress,
    latest,
    progress_topic,
    resume,
)
from connectors.source.rejects import Reject, RejectsFile
from corridor.core.errors import KafkaUnavailable, SchemaError
from corridor.core.model import OutMessage
from corridor.core.topics import connect_transactional_prefix
from corridor.kafka import admin as kadmin
from corridor.kafka.clients import Endpoint, Principal, admin_client
from corridor.kafka.io import read_to_end
from corridor.kafka.sink import BatchAborted, SinkFenced, TransactionalSink
from corridor.sdk import ParkProducer

log = structlog.get_logger("connectors.source")
MAX_REPLAYS = 10
# A loader killed mid-transaction holds back read_committed readers of the park topic and
# of the (shared, one-partition) progress topic until its transaction times out or the same
# job runs again: keep that short. Reading the progress waits longer than that.
SINK_SETTINGS = {"transaction.timeout.ms": 60000, "message.timeout.ms": 55000}
PROGRESS_READ_TIMEOUT_S = 90.0
OnBatch = Callable[["FileReport"], None]


@dataclass(frozen=True)
class SourceJob:
    """What to load and how. ``name`` tells concurrent loaders into one topic apart: two
    runs with the same name fence each other (only one writes at a time)."""

    zone: str
    dataset: str
    name: str = "files"
    format: str | None = None  # None: by file extension
    delimiter: str | None = None
    key_field: str | None = None
    batch_rows: int = 5000

    @property
    def transactional_id(self) -> str:
        return connect_transactional_prefix(self.zone, self.dataset) + self.name


@dataclass
class FileReport:
    """One file of one run: what was found, loaded and rejected (``this_run_*``) and the
    committed totals across runs (``loaded``, ``rejected``)."""

    path: str
    format: str
    why: str
    start: int
    next: int = 0
    loaded: int = 0
    rejected: int = 0
    this_run_loaded: int = 0
    this_run_rejected: int = 0
    done: bool = False
    error: str | None = None
    total: int | None = None
    unknown_columns: list[str] = field(default_factory=list)
    seconds: float = 0.0


class FileLoader:
    """Loads files into one park topic exactly once (see the module docstring).

    ``park`` encodes records (the dataset's schema); ``endpoint``/``principal``: the
    origin cluster and who writes there (the park's principal; creating the progress
    topic needs the admin's rights, else it must exist).
    """

    def __init__(self, park: ParkProducer, job: SourceJob, endpoint: Endpoint,
                 principal: Principal, rejects: RejectsFile,
                 on_batch: OnBatch | None = None, clock: Callable[[], float] = time.time) -> None:
        self.park, self.job, self.endpoint, self.principal = park, job, endpoint, principal
        self.rejects, self.on_batch, self.clock = rejects, on_batch, clock
        self.topic, self.progress_topic = park.topic, progress_topic(job.zone)
        self.committed: dict[bytes, Progress] = {}
        self.reports: list[FileReport] = []
        self._sink: TransactionalSink | None = None

    # -- start ---------------------------------------------------------------------------

    def start(self) -> None:
        """Fence the previous run, read the committed progress, trim the rejects file."""
        self._ensure_progress_topic()
        self._sink = TransactionalSink(self.endpoint, self.principal, self.job.transactional_id,
                                       _notify, SINK_SETTINGS)
        records = read_to_end(self.endpoint, self.principal, self.progress_topic,
                              timeout_s=PROGRESS_READ_TIMEOUT_S)
        self.committed = latest(p for r in records if (p := Progress.decode(r.value)))
        dropped = self.rejects.trim(self._covered)
        log.info("source_started", topic=self.topic, job=self.job.name,
                 files_known=sum(p.topic == self.topic for p in self.committed.values()),
                 uncommitted_rejects_dropped=dropped)

    def _ensure_progress_topic(self) -> None:
        try:
            kadmin.ensure_topics(admin_client(self.endpoint, self.principal),
                                 [kadmin.TopicSpec(self.progress_topic, 1, PROGRESS_CONFIG)])
        except KafkaUnavailable as exc:  # no right to create it: it must exist already
            log.warning("progress_topic_not_created", topic=self.progress_topic, error=str(exc))

    def _covered(self, topic: str, file_id: str, position: int) -> bool:
        progress = self.committed.get(f"{topic}|{file_id}".encode())
        return progress is not None and position < progress.next

    # -- files ---------------------------------------------------------------------------

    def load(self, paths: Iterable[str], stop: Callable[[], bool] = lambda: False) -> None:
        """Load each file in turn from where its committed progress left it."""
        for path in paths:
            if stop():
                return
            self.load_file(path, stop)

    def is_done(self, path: str) -> bool:
        """Whether ``path``, at its current size and mtime, was loaded to its end (cheap:
        a stat, no read; for ``--follow``, which asks at every scan)."""
        try:
            stat = os.stat(path)
        except OSError:
            return False
        now = (os.path.abspath(path), stat.st_size, stat.st_mtime_ns)
        return any(p.done and (p.file.path, p.file.size, p.file.mtime_ns) == now
                   for p in self.committed.values() if p.topic == self.topic)

    def load_file(self, path: str, stop: Callable[[], bool] = lambda: False) -> FileReport:
        fmt = format_of(path, self.job.format)
        ident = identify(path)
        plan = resume(self.topic, ident, fmt, self.job.name, self.committed.values(),
                      lambda n: head_sha256(path, n))
        progress = plan.progress
        report = FileReport(path, fmt, plan.why, progress.next, progress.next,
                            progress.loaded, progress.rejected, done=progress.done,
                            error=progress.error)
        self.reports.append(report)
        log.info("file_found", path=path, format=fmt, status=plan.why, start=progress.next)
        if progress.done:
            return report
        began = self.clock()
        self._load_rows(FileRows(path, fmt, ident.size, self.job.delimiter), progress, report,
                        stop)
        report.seconds = self.clock() - began
        log.info("file_loaded" if report.done else "file_paused", path=path,
                 loaded=report.this_run_loaded, rejected=report.this_run_rejected,
                 next=report.next, seconds=round(report.seconds, 3), error=report.error)
        return report

    def _load_rows(self, rows: FileRows, progress: Progress, report: FileReport,
                   stop: Callable[[], bool]) -> None:
        batch = _Batch(self, progress, RowConverter(self.park.schema, text=rows.fmt == "csv"))
        report.total = rows.total
        try:
            for row in rows.rows(progress.next):
                if rows.columns is not None and batch.next == progress.next:  # the first row
                    report.unknown_columns = batch.converter.unknown_columns(rows.columns)
                batch.add(row)
                if batch.rows >= self.job.batch_rows:
                    self._commit(batch, report, done=False)
                    if stop():
                        return
        except Unreadable as exc:
            position = max(batch.next, progress.next)
            batch.reject(position, exc.where, Problem(None, f"unreadable: {exc.reason}"))
            self._commit(batch, report, done=True, error=exc.reason)
            return
        self._commit(batch, report, done=True)

    def _commit(self, batch: _Batch, report: FileReport, done: bool,
                error: str | None = None) -> None:
        # Step 1 was batch.add; Step 2: the rejects on disk before the transaction.
        self.rejects.append(batch.bad)
        progress = batch.progress.advanced(max(batch.next, batch.progress.next), len(batch.good),
                                           len(batch.bad), done, int(self.clock() * 1000), error)
        # Step 3: the records and the progress in one transaction.
        self._write([*batch.good, OutMessage(self.progress_topic, progress.encode(),
                                             progress.key())])
        self.committed[progress.key()] = progress
        report.this_run_loaded += len(batch.good)
        report.this_run_rejected += len(batch.bad)
        report.next, report.loaded, report.rejected = progress.next, progress.loaded, \
            progress.rejected
        report.done, report.error = done, error
        batch.reset(progress)
        if self.on_batch is not None:
            self.on_batch(report)

    def _write(self, messages: list[OutMessage]) -> None:
        assert self._sink is not None, "start() first"
        for _ in range(MAX_REPLAYS):
            try:
                self._sink.write(messages)
                return
            except BatchAborted as exc:
                log.warning("batch_aborted", topic=self.topic, error=str(exc),
                            action="the batch is written again")
            except SinkFenced as exc:
                raise ConnectError(self.job.transactional_id,
                                   f"fenced: another run of job {self.job.name!r} took over, "
                                   f"or the producer failed for good ({exc}); run again") from None
        raise ConnectError(self.topic, f"batch aborted {MAX_REPLAYS} times in a row")

    def close(self) -> None:
        if self._sink is not None:
            self._sink.close()


class _Batch:
    """The rows of one file since its last commit: records to send and rejects."""

    def __init__(self, loader: FileLoader, progress: Progress, converter: RowConverter) -> None:
        self.loader, self.converter = loader, converter
        self.key_path = loader.job.key_field.split(".") if loader.job.key_field else None
        self.file_id = progress.file.text()
        self.progress = progress
        self.good: list[OutMessage] = []
        self.bad: list[Reject] = []
        self.next = progress.next

    @property
    def rows(self) -> int:
        return len(self.good) + len(self.bad)

    def add(self, row: SourceRow) -> None:
        self.next = row.position + 1
        if row.problem is not None or row.values is None:
            self.reject(row.position, row.where, row.problem or Problem(None, "empty row"))
            return
        record = self.converter.convert(row.values)
        if isinstance(record, Problem):
            self.reject(row.position, row.where, record)
            return
        try:
            value = self.loader.park.encode(record)
        except SchemaError as exc:  # the converter let through what the schema refuses
            self.reject(row.position, row.where, Problem(None, str(exc)))
            return
        self.good.append(OutMessage(self.loader.topic, value, self._key(record)))

    def reject(self, position: int, where: Any, problem: Problem) -> None:
        self.next = max(self.next, position + 1)
        self.bad.append(Reject.of(where, problem, position, self.file_id, self.loader.topic))

    def _key(self, record: dict[str, Any]) -> bytes | None:
        if self.key_path is None:
            return None
        node: Any = record
        for part in self.key_path:
            node = node.get(part) if isinstance(node, dict) else None
        return None if node is None else str(node).encode()

    def reset(self, progress: Progress) -> None:
        self.progress = progress
        self.good, self.bad = [], []


def _notify(event: str, fields: dict[str, Any]) -> None:
    log.warning(event, **fields)
