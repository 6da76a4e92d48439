"""Reading files: positions, where each row is (line; row group and row), resuming at a
position, rows a reader cannot make, files that cannot be read on."""

from __future__ import annotations

import json
from pathlib import Path

import fastavro
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from connectors.source.discover import Watcher, format_of, identify, matching
from connectors.source.formats import FileRows, Unreadable, Where


def _rows(path: Path, fmt: str, start: int = 0, size: int | None = None) -> list:
    return list(FileRows(str(path), fmt, size or path.stat().st_size).rows(start))


def test_csv_positions_count_data_rows_and_lines_count_physical_lines(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text('id,location.port,note\n1,HKG,plain\n\n2,SIN,"two\nlines"\n3,AMS,x\n')
    rows = _rows(path, "csv")
    assert [r.position for r in rows] == [0, 1, 2]
    assert [r.where.line for r in rows] == [2, 4, 6]  # a blank line is no row
    assert rows[1].values == {"id": "2", "location": {"port": "SIN"}, "note": "two\nlines"}
    assert [r.position for r in _rows(path, "csv", start=2)] == [2]


def test_a_csv_row_with_the_wrong_width_is_a_problem_not_an_error(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a,b\n1,2\n1,2,3\n4,5\n")
    rows = _rows(path, "csv")
    assert rows[1].values is None and rows[1].problem is not None
    assert rows[1].problem.reason == "expected 2 fields, got 3"
    assert rows[2].values == {"a": "4", "b": "5"}


def test_text_files_are_read_only_up_to_the_size_of_their_identity(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    first = b'{"a": 1}\n{"a": 2}\n'
    path.write_bytes(first + b'{"a": 3}\n')
    assert [r.values for r in _rows(path, "jsonl", size=len(first))] == [{"a": 1}, {"a": 2}]


def test_jsonl_lines_that_are_not_objects_are_problems(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text('{"a": 1}\n\nnot json\n[1, 2]\n{"a": 2}')
    rows = _rows(path, "jsonl")
    assert [(r.position, r.where.line) for r in rows] == [(0, 1), (1, 3), (2, 4), (3, 5)]
    assert rows[1].problem is not None and rows[1].problem.reason.startswith("not JSON")
    assert rows[2].problem is not None and rows[2].problem.reason == "not a JSON object"
    assert rows[3].values == {"a": 2}  # the last line needs no newline


def test_parquet_rows_name_their_row_group_and_row(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    pq.write_table(pa.table({"n": list(range(25))}), path, row_group_size=10)
    reader = FileRows(str(path), "parquet", path.stat().st_size)
    assert reader.total == 25 and reader.columns == ["n"]
    rows = list(reader.rows(12))
    assert rows[0].position == 12 and rows[0].where == Where(str(path), row_group=1, row=2)
    assert rows[-1].where == Where(str(path), row_group=2, row=4)
    assert [r.values["n"] for r in rows] == list(range(12, 25))


def test_avro_rows_name_their_block_and_row(tmp_path: Path) -> None:
    path = tmp_path / "a.avro"
    schema = fastavro.parse_schema({"type": "record", "name": "r",
                                    "fields": [{"name": "n", "type": "long"}]})
    with open(path, "wb") as fh:
        writer = fastavro.write.Writer(fh, schema)
        for n in range(9):
            writer.write({"n": n})
            if n % 3 == 2:
                writer.flush()  # one block per three records
        writer.flush()
    rows = _rows(path, "avro", start=4)
    assert [r.values["n"] for r in rows] == [4, 5, 6, 7, 8]
    assert rows[0].where == Where(str(path), row_group=1, row=1)
    assert rows[0].position == 4


def test_a_corrupt_file_is_unreadable_with_where(tmp_path: Path) -> None:
    path = tmp_path / "a.parquet"
    path.write_bytes(b"PAR1 certainly not")
    with pytest.raises(Unreadable) as caught:
        _rows(path, "parquet")
    assert caught.value.where.row_group == 0
    avro = tmp_path / "b.avro"
    avro.write_bytes(b"Obj\x01garbage")
    with pytest.raises(Unreadable):
        _rows(avro, "avro")


def test_formats_by_extension_and_folders_globs_and_files(tmp_path: Path) -> None:
    for name in ("a.csv", "b.jsonl", "c.parquet", "d.txt", ".hidden.csv"):
        (tmp_path / name).write_text("x")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "e.avro").write_text("x")
    assert format_of("x.TSV") == "csv" and format_of("x.ndjson") == "jsonl"
    names = [Path(p).name for p in matching([str(tmp_path)])]
    assert names == ["a.csv", "b.jsonl", "c.parquet"]
    assert [Path(p).name for p in matching([str(tmp_path / "**" / "*.avro")])] == ["e.avro"]
    assert [Path(p).name for p in matching([str(tmp_path / "d.txt")])] == ["d.txt"]


def test_identity_changes_with_content_and_the_watcher_waits_for_quiet(tmp_path: Path) -> None:
    path = tmp_path / "a.csv"
    path.write_text("a\n1\n")
    first = identify(str(path))
    path.write_text("a\n2\n")
    assert identify(str(path)).head_sha256 != first.head_sha256
    now = [100.0]
    watcher = Watcher([str(tmp_path)], None, settle_s=5, clock=lambda: now[0])
    assert watcher.ready() == []
    now[0] += 5
    assert watcher.ready() == [str(path)]
    with open(path, "a") as fh:
        fh.write("3\n")
    assert watcher.ready() == []  # it changed: quiet again for 5 s first
    now[0] += 5
    assert watcher.ready() == [str(path)]


def test_json_rows_keep_their_types(tmp_path: Path) -> None:
    path = tmp_path / "a.jsonl"
    path.write_text(json.dumps({"a": 1.5, "b": None, "c": {"d": True}}) + "\n")
    assert _rows(path, "jsonl")[0].values == {"a": 1.5, "b": None, "c": {"d": True}}
