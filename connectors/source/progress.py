"""A file's load progress, as committed with its records (pure: values and their bytes).

One progress record per file identity (path, size, mtime, SHA-256 of the first MiB) on the
compacted topic ``<zone>.connect.progress`` of the origin zone, keyed by
``<outbound topic>|<identity>``: the position ``next`` is the first row not yet loaded,
``done`` says the file was read to its end. It is written in the same Kafka transaction
as the records it accounts for, so a reader at read_committed sees both or neither.

``resume`` decides where a load starts from what was committed before: the same
identity resumes at its position (nothing, when done); a file that only grew (same path,
its old first bytes unchanged; text and Avro files, whose row positions survive an
append) resumes where the smaller version stopped; anything else starts at row 0.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any

from corridor.core import topics

PROGRESS_CONFIG = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
APPENDABLE = frozenset({"csv", "jsonl", "avro"})  # formats whose row positions survive appends
VERSION = 1


def progress_topic(zone: str) -> str:
    """The compacted topic of the file sources' progress in ``zone``."""
    return topics.connect_progress(zone)


@dataclass(frozen=True, slots=True)
class FileIdentity:
    """What makes a file the same file: absolute path, size, mtime (ns) and the SHA-256 of
    its first ``head_len`` bytes (the first MiB, or the whole file when smaller)."""

    path: str
    size: int
    mtime_ns: int
    head_sha256: str
    head_len: int

    def text(self) -> str:
        return f"{self.path}|{self.size}|{self.mtime_ns}|{self.head_sha256[:16]}"


@dataclass(frozen=True, slots=True)
class Progress:
    """How far one file identity was loaded into ``topic`` (see the module docstring).

    ``loaded``/``rejected`` count rows so far; ``error``: why the file could not be read
    to its end (then ``done`` too: the rest is not retried until the file changes).
    """

    topic: str
    file: FileIdentity
    format: str
    next: int = 0
    done: bool = False
    loaded: int = 0
    rejected: int = 0
    error: str | None = None
    job: str = ""
    committed_ms: int = 0

    def key(self) -> bytes:
        return f"{self.topic}|{self.file.text()}".encode()

    def encode(self) -> bytes:
        doc = asdict(self)
        doc["v"] = VERSION
        return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def decode(cls, value: bytes | None) -> Progress | None:
        """The progress a record holds; None for a tombstone or anything else."""
        if not value:
            return None
        try:
            doc: dict[str, Any] = json.loads(value)
            if doc.pop("v", None) != VERSION:
                return None
            file = FileIdentity(**doc.pop("file"))
            return cls(file=file, **doc)
        except (ValueError, TypeError, KeyError):
            return None

    def advanced(self, next_row: int, loaded: int, rejected: int, done: bool,
                 committed_ms: int, error: str | None = None) -> Progress:
        """This progress moved on by a batch: ``loaded``/``rejected`` are added."""
        return replace(self, next=next_row, loaded=self.loaded + loaded,
                       rejected=self.rejected + rejected, done=done, error=error,
                       committed_ms=committed_ms)


@dataclass(frozen=True, slots=True)
class Resume:
    """Where to start a file: ``progress`` carries the counts so far and ``next``
    (``progress.done``: nothing left); ``why`` is new, resumed, done, grew or replaced."""

    progress: Progress
    why: str


def resume(topic: str, identity: FileIdentity, fmt: str, job: str,
           committed: Iterable[Progress], head_of: Callable[[int], str]) -> Resume:
    """Decide where the load of ``identity`` starts (see the module docstring).

    ``committed``: every progress read back at read_committed; ``head_of(n)``: the
    SHA-256 of the file's first ``n`` bytes now (only called for a file that grew).
    """
    same_path = sorted((p for p in committed if p.topic == topic and p.file.path == identity.path),
                       key=lambda p: p.committed_ms, reverse=True)
    for p in same_path:
        if p.file == identity:
            return Resume(p, "done" if p.done else "resumed")
    fresh = Progress(topic, identity, fmt, job=job)
    for p in same_path:
        if (fmt in APPENDABLE and p.format == fmt and p.error is None
                and p.file.size < identity.size and head_of(p.file.head_len) == p.file.head_sha256):
            return Resume(replace(fresh, next=p.next, loaded=p.loaded, rejected=p.rejected),
                          "grew")
    return Resume(fresh, "replaced" if same_path else "new")


def latest(progress: Iterable[Progress]) -> dict[bytes, Progress]:
    """The last committed progress per key (a compacted topic read to its end)."""
    out: dict[bytes, Progress] = {}
    for p in progress:
        out[p.key()] = p
    return out
