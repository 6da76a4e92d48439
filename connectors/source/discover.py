"""Which files a source loads, and what makes each one the same file (I/O: the file system).

A source is one or more paths: a file, a glob (``data/*.csv``, ``**`` allowed) or a
folder (its files of a known format, not recursive). ``Watcher`` is ``--follow``: it
hands out a file once its size and mtime stayed the same for ``settle_s`` seconds, so a
file still being written is not loaded half-way.
"""

from __future__ import annotations

import glob
import hashlib
import os
import time
from collections.abc import Callable, Iterable
from pathlib import Path

from connectors.errors import ConnectError
from connectors.source.progress import FileIdentity

HEAD_BYTES = 1 << 20
FORMATS = {".csv": "csv", ".tsv": "csv", ".jsonl": "jsonl", ".ndjson": "jsonl",
           ".json": "jsonl", ".parquet": "parquet", ".pq": "parquet", ".avro": "avro"}
Clock = Callable[[], float]


def format_of(path: str | Path, explicit: str | None = None) -> str:
    """The file's format: ``explicit``, else by its extension. Raises ConnectError."""
    if explicit:
        return explicit
    fmt = FORMATS.get(Path(path).suffix.lower())
    if fmt is None:
        raise ConnectError(str(path), "unknown file format (give --format csv|jsonl|parquet|avro)")
    return fmt


def matching(specs: Iterable[str], explicit_format: str | None = None) -> list[str]:
    """Absolute paths the specs name now, sorted, each once. A folder yields its files of a
    known format (``explicit_format``: all its files); hidden files are left out."""
    found: set[str] = set()
    for spec in specs:
        if os.path.isdir(spec):
            found.update(str(p) for p in Path(spec).iterdir()
                         if p.is_file() and _wanted(p, explicit_format))
        elif glob.has_magic(spec):
            found.update(p for p in glob.glob(spec, recursive=True)
                         if os.path.isfile(p) and _wanted(Path(p), explicit_format))
        elif os.path.isfile(spec):
            found.add(spec)
    return sorted(os.path.abspath(p) for p in found)


def _wanted(path: Path, explicit_format: str | None) -> bool:
    if path.name.startswith("."):
        return False
    return explicit_format is not None or path.suffix.lower() in FORMATS


def head_sha256(path: str, length: int) -> str:
    """SHA-256 (hex) of the first ``length`` bytes of ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        left = length
        while left > 0:
            chunk = fh.read(min(left, 1 << 16))
            if not chunk:
                break
            digest.update(chunk)
            left -= len(chunk)
    return digest.hexdigest()


def identify(path: str) -> FileIdentity:
    """The identity of ``path`` as it is now. Raises ConnectError when it cannot be read."""
    try:
        stat = os.stat(path)
        head_len = min(stat.st_size, HEAD_BYTES)
        return FileIdentity(os.path.abspath(path), stat.st_size, stat.st_mtime_ns,
                            head_sha256(path, head_len), head_len)
    except OSError as exc:
        raise ConnectError(path, f"cannot read: {exc.strerror or exc}") from None


class Watcher:
    """``--follow``: the files that are ready, scan after scan (see the module docstring)."""

    def __init__(self, specs: Iterable[str], explicit_format: str | None, settle_s: float,
                 clock: Clock = time.monotonic) -> None:
        self.specs, self.explicit_format = list(specs), explicit_format
        self.settle_s, self.clock = settle_s, clock
        self._seen: dict[str, tuple[int, int, float]] = {}  # path -> (size, mtime, since)

    def ready(self) -> list[str]:
        """Files whose size and mtime have not changed for ``settle_s`` seconds."""
        now, out = self.clock(), []
        for path in matching(self.specs, self.explicit_format):
            try:
                stat = os.stat(path)
            except OSError:
                continue  # gone between listing and looking: the next scan decides
            state = (stat.st_size, stat.st_mtime_ns)
            size, mtime, since = self._seen.get(path, (-1, -1, now))
            if (size, mtime) != state:
                self._seen[path] = (*state, now)
                since = now
            if now - since >= self.settle_s:
                out.append(path)
        return out
