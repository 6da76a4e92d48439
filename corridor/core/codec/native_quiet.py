"""Keep a native library's panic messages off the terminal.

polars (Rust) refuses some malformed Avro blocks by panicking; the panic is caught
(``corridor.core.codec`` falls back to the strict decoder, which quarantines each bad
record with its reason), but Rust's panic hook has already written
``thread '<unnamed>' panicked at ...`` to file descriptor 2, where it reads like a
crash. ``quiet_panics()`` points fd 2 at a temporary file for the duration of the
native call, then restores it and passes on everything written meanwhile except the
panic lines. Whatever another thread wrote to stderr in that window is delayed, not
lost. One redirection at a time (a lock): fd 2 is process-wide.

This module is the core's one exception to "no I/O, no environment": it guards a
native call's file descriptor, and asks Rust for one-line panics (``RUST_BACKTRACE=0``
unless the operator set it) so that there is less to filter.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator
from typing import IO

_LOCK = threading.Lock()
_PANIC_LINES = ("panicked at", "note: run with `RUST_BACKTRACE", "range end index",
                "out of range for slice", "called `Result::unwrap()`",
                "called `Option::unwrap()`", "entered unreachable code")
_sink: IO[bytes] | None = None
os.environ.setdefault("RUST_BACKTRACE", "0")  # read by polars' panic hook at panic time


@contextlib.contextmanager
def quiet_panics() -> Iterator[None]:
    global _sink
    with _LOCK:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing to protect
            yield
            return
        if _sink is None:  # one file for the process: this sits on the decoder's hot path
            _sink = tempfile.TemporaryFile()  # noqa: SIM115 (kept open for the process)
        try:
            os.dup2(_sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            if os.fstat(_sink.fileno()).st_size:
                _pass_on(_sink)


def _pass_on(sink: IO[bytes]) -> None:
    """Write what ``sink`` caught to stderr, minus the panic lines; empty it."""
    sink.seek(0)
    kept = [line for line in sink.read().splitlines(keepends=True)
            if not any(p.encode() in line for p in _PANIC_LINES)]
    sink.seek(0)
    sink.truncate()
    if kept:
        os.write(2, b"".join(kept))
