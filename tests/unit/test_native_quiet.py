"""Panic text of a native call stays off stderr; anything else written meanwhile gets through."""

from __future__ import annotations

import os
import subprocess
import sys

SCRIPT = r"""
import os
from corridor.core.codec.native_quiet import quiet_panics
with quiet_panics():
    os.write(2, b"thread '<unnamed>' panicked at crates/x.rs:1:2:\n")
    os.write(2, b"range end index 99 out of range for slice of length 3\n")
    os.write(2, b"note: run with `RUST_BACKTRACE=1` environment variable to display a backtrace\n")
    os.write(2, b"a warning that matters\n")
with quiet_panics():  # the same file again: nothing of the first window comes back
    os.write(2, b"second\n")
os.write(2, b"after\n")
"""


def test_panic_lines_are_dropped_and_the_rest_is_kept() -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True,
                          timeout=60, env={**os.environ})
    assert done.returncode == 0, done.stderr
    assert done.stderr == "a warning that matters\nsecond\nafter\n"


def test_a_decoder_batch_with_a_huge_length_prints_nothing_and_quarantines() -> None:
    script = r"""
from corridor.dev.sample import generate_records
from corridor.core.codec import decode_avro
from corridor.core.schema import SchemaStore, load_schema
from corridor.dev.sample import SCHEMAS
s = load_schema(SCHEMAS / "trade" / "shipment.avsc")
values = generate_records("trade.shipment", 40, seed=3)
# A huge length right after the 10-byte header: polars panics on this block.
bad = bytearray(values[5]); bad[10:16] = b"\xfe\xff\xff\xff\xf0\x1f"; values[5] = bytes(bad)
d = decode_avro(values, SchemaStore([s]), s)
print(len(d.rows), len(d.errors))
"""
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          timeout=120, env={**os.environ})
    assert done.returncode == 0, done.stderr
    rows, errors = map(int, done.stdout.split())
    assert rows + errors == 40 and errors >= 1
    assert "panicked" not in done.stderr, done.stderr
