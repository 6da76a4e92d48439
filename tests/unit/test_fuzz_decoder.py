"""A few seconds of decoder fuzzing (the long runs are in tests/integration/test_bad_input.py
and `make chaos`), and the helpers the fuzz report uses."""

from __future__ import annotations

from corridor.core.codec import decode_avro
from corridor.core.schema import SchemaStore, load_schema
from corridor.dev.chaos.fuzz import check_decoded, reason_kind, run_fuzz
from corridor.dev.sample import SCHEMAS, generate_records


def test_short_fuzz_run_finds_no_crash_hang_or_broken_invariant() -> None:
    report = run_fuzz(3.0, examples_per_round=50)
    assert report.execs > 50
    assert report.rejected > 0 and report.decoded > 0  # both outcomes were exercised
    assert report.slowest_s < 2.0


def test_check_decoded_accepts_a_real_result() -> None:
    schema = load_schema(SCHEMAS / "trade" / "shipment.avsc")
    values = generate_records("trade.shipment", 20, seed=1, bad_ratio=0.3)
    decoded = decode_avro(values, SchemaStore([schema]), schema)
    check_decoded(decoded, len(values))


def test_reason_kinds_drop_offsets_and_values() -> None:
    assert reason_kind("bad magic ffff (single-object Avro starts with c301)") == "bad magic"
    assert reason_kind("invalid UTF-8 in string at offset 4") == "invalid UTF-8 in string"
    assert reason_kind("negative string length -3 at offset 5") == "negative string length"
    assert reason_kind("1 trailing bytes after the datum (at offset 3)") == (
        "trailing bytes after the datum")
