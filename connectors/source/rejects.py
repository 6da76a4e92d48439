"""Rows that did not fit, as JSON lines, and the load summary beside them (I/O: two files).

Each reject names the file, where the row is (``line``; or ``row_group`` and ``row``),
the ``column`` (dotted; null when the row as a whole is at fault), the ``reason`` and an
excerpt of the ``value``, plus the file identity and row ``position`` it belongs to.

Exactly once like the records: a batch's rejects are appended and synced to disk before
the batch's transaction commits, and at start ``trim`` drops every reject that no
committed progress covers (those of a batch whose transaction never committed), so a
crashed and re-run load lists each bad row once.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from connectors.source.convert import Problem
from connectors.source.formats import Where


@dataclass(frozen=True, slots=True)
class Reject:
    """One row that was not loaded, and why (see the module docstring)."""

    file: str
    line: int | None
    row_group: int | None
    row: int | None
    column: str | None
    reason: str
    value: str | None
    position: int
    file_id: str
    topic: str

    @classmethod
    def of(cls, where: Where, problem: Problem, position: int, file_id: str,
           topic: str) -> Reject:
        return cls(where.file, where.line, where.row_group, where.row, problem.column,
                   problem.reason, problem.value, position, file_id, topic)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=True, separators=(",", ":"))


class RejectsFile:
    """The rejects of one source job, as JSON lines (see the module docstring)."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)

    def entries(self) -> Iterator[dict[str, Any]]:
        if not self.path.exists():
            return
        with open(self.path, encoding="utf-8") as fh:
            for line in fh:
                if line.strip():
                    yield json.loads(line)

    def trim(self, covered: Callable[[str, str, int], bool]) -> int:
        """Keep only rejects ``covered(topic, file_id, position)`` accepts (committed ones);
        returns how many were dropped. Rewrites the file atomically."""
        if not self.path.exists():
            return 0
        kept, dropped = [], 0
        for entry in self.entries():
            if covered(entry["topic"], entry["file_id"], entry["position"]):
                kept.append(json.dumps(entry, ensure_ascii=True, separators=(",", ":")))
            else:
                dropped += 1
        if dropped:
            _replace(self.path, "".join(line + "\n" for line in kept))
        return dropped

    def append(self, rejects: Iterable[Reject]) -> None:
        """Append and sync to disk (before the batch's transaction commits)."""
        text = "".join(r.to_json() + "\n" for r in rejects)
        if not text:
            return
        with open(self.path, "a", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())

    def reasons(self, topic: str) -> dict[str, int]:
        """``"column: reason"`` -> count over the rejects of ``topic``, most frequent first."""
        counts = Counter(f"{e['column'] or '(row)'}: {_reason_class(e['reason'])}"
                         for e in self.entries() if e["topic"] == topic)
        return dict(counts.most_common())


def _reason_class(reason: str) -> str:
    # "not JSON: Expecting value: line 1 column 2 (char 1)" counts as "not JSON"
    return reason.split(":", 1)[0]


def write_summary(path: Path, doc: Mapping[str, Any]) -> None:
    """The load summary as JSON, replaced atomically."""
    _replace(path, json.dumps(doc, indent=2, sort_keys=True, default=str) + "\n")


def _replace(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    with open(tmp, "w", encoding="utf-8") as fh:
        fh.write(text)
        fh.flush()
        os.fsync(fh.fileno())
    os.replace(tmp, path)
