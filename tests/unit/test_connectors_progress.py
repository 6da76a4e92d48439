"""A file source's progress: its bytes, where a load resumes, and rejects kept exactly once."""

from __future__ import annotations

import json
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from connectors.source.convert import Problem
from connectors.source.formats import Where
from connectors.source.progress import FileIdentity, Progress, latest, progress_topic, resume
from connectors.source.rejects import Reject, RejectsFile

TOPIC = "hk.outbound.trade.shipment"
IDENT = FileIdentity("/data/a.csv", 1000, 1_700_000_000_000_000_000, "ab" * 32, 1000)


def _never(_n: int) -> str:
    raise AssertionError("the head is hashed only for a file that grew")


identities = st.builds(FileIdentity, st.text(min_size=1), st.integers(0, 2**40),
                       st.integers(0, 2**63), st.text("0123456789abcdef", min_size=64,
                                                      max_size=64), st.integers(0, 2**20))


@given(identities, st.integers(0, 2**40), st.booleans(), st.integers(0, 10**9),
       st.one_of(st.none(), st.text()))
def test_progress_round_trips_through_its_bytes(ident: FileIdentity, next_row: int, done: bool,
                                                loaded: int, error: str | None) -> None:
    p = Progress(TOPIC, ident, "csv", next_row, done, loaded, 3, error, "files", 123)
    assert Progress.decode(p.encode()) == p


def test_foreign_or_broken_progress_values_are_ignored() -> None:
    assert Progress.decode(None) is None
    assert Progress.decode(b"") is None
    assert Progress.decode(b"{not json") is None
    assert Progress.decode(json.dumps({"v": 99}).encode()) is None


def test_the_key_holds_topic_path_size_mtime_and_hash() -> None:
    key = Progress(TOPIC, IDENT, "csv").key().decode()
    assert key == f"{TOPIC}|/data/a.csv|1000|1700000000000000000|{'ab' * 8}"
    assert progress_topic("hk") == "hk.connect.progress"


def test_a_new_file_starts_at_row_zero() -> None:
    plan = resume(TOPIC, IDENT, "csv", "files", [], _never)
    assert (plan.why, plan.progress.next, plan.progress.done) == ("new", 0, False)


def test_the_same_file_resumes_at_its_committed_row_or_is_done() -> None:
    half = Progress(TOPIC, IDENT, "csv", next=500, loaded=495, rejected=5, committed_ms=1)
    plan = resume(TOPIC, IDENT, "csv", "files", [half], _never)
    assert (plan.why, plan.progress.next, plan.progress.loaded) == ("resumed", 500, 495)
    done = half.advanced(1000, 500, 0, True, 2)
    assert resume(TOPIC, IDENT, "csv", "files", [done], _never).why == "done"


def test_progress_of_another_topic_does_not_count() -> None:
    other = Progress("hk.outbound.other", IDENT, "csv", next=500, done=True)
    assert resume(TOPIC, IDENT, "csv", "files", [other], _never).why == "new"


def test_a_file_that_grew_resumes_where_the_smaller_one_stopped() -> None:
    old = Progress(TOPIC, IDENT, "csv", next=40, done=True, loaded=40, committed_ms=1)
    grown = FileIdentity(IDENT.path, 2000, IDENT.mtime_ns + 1, "cd" * 32, 2000)
    plan = resume(TOPIC, grown, "csv", "files", [old], lambda n: "ab" * 32 if n == 1000 else "")
    assert (plan.why, plan.progress.next, plan.progress.done) == ("grew", 40, False)
    assert plan.progress.file == grown and plan.progress.loaded == 40


def test_a_rewritten_file_or_a_parquet_file_starts_again() -> None:
    old = Progress(TOPIC, IDENT, "csv", next=40, done=True, committed_ms=1)
    grown = FileIdentity(IDENT.path, 2000, IDENT.mtime_ns + 1, "cd" * 32, 2000)
    assert resume(TOPIC, grown, "csv", "files", [old], lambda n: "ff" * 32).why == "replaced"
    parquet = Progress(TOPIC, IDENT, "parquet", next=40, done=True, committed_ms=1)
    assert resume(TOPIC, grown, "parquet", "files", [parquet], _never).why == "replaced"
    shrunk = FileIdentity(IDENT.path, 10, IDENT.mtime_ns + 1, "cd" * 32, 10)
    assert resume(TOPIC, shrunk, "csv", "files", [old], _never).progress.next == 0


def test_the_latest_committed_progress_per_key_wins() -> None:
    a = Progress(TOPIC, IDENT, "csv", next=10)
    b = a.advanced(20, 10, 0, False, 5)
    assert latest([a, b]) == {a.key(): b}
    assert b.loaded == 10 and b.next == 20


def _reject(position: int, file_id: str = "f1") -> Reject:
    return Reject.of(Where("/data/a.csv", line=position + 2), Problem("x", "bad", "v"),
                     position, file_id, TOPIC)


def test_rejects_of_uncommitted_batches_are_dropped_at_start(tmp_path: Path) -> None:
    rejects = RejectsFile(tmp_path / "rejects.jsonl")
    rejects.append([_reject(1), _reject(7), _reject(12), _reject(3, "f2")])
    committed = {"f1": 10}  # f1 committed up to row 10; f2 never committed

    def covered(topic: str, file_id: str, position: int) -> bool:
        return topic == TOPIC and position < committed.get(file_id, 0)

    assert rejects.trim(covered) == 2
    assert [(e["file_id"], e["position"]) for e in rejects.entries()] == [("f1", 1), ("f1", 7)]
    assert rejects.trim(covered) == 0
    entry = next(rejects.entries())
    assert (entry["file"], entry["line"], entry["column"], entry["reason"]) == (
        "/data/a.csv", 3, "x", "bad")


def test_reject_reasons_are_counted_by_column_and_kind(tmp_path: Path) -> None:
    rejects = RejectsFile(tmp_path / "r.jsonl")
    rows = [Reject.of(Where("f"), Problem(None, f"not JSON: char {i}"), i, "f1", TOPIC)
            for i in range(3)]
    rejects.append([*rows, _reject(9)])
    assert rejects.reasons(TOPIC) == {"(row): not JSON": 3, "x: bad": 1}
