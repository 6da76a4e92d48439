"""Keep a native library's panic messages off the terminal.

polars (Rust) refuses some malformed Avro blocks by panicking; the panic is caught
(``corridor.codec`` falls back to the strict decoder, which quarantines each bad
record with its reason), but Rust's panic hook has already written
``thread '<unnamed>' panicked at ...`` to file descriptor 2, where it reads like a
crash. ``quiet_panics()`` points fd 2 at a temporary file for the duration of the
native call, then restores it and passes on everything written meanwhile except the
panic lines. Whatever another thread wrote to stderr in that window is delayed, not
lost. One redirection at a time (a lock): fd 2 is process-wide.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import threading
from collections.abc import Iterator

_LOCK = threading.Lock()
_PANIC_LINES = ("panicked at", "note: run with `RUST_BACKTRACE", "range end index",
                "out of range for slice", "called `Result::unwrap()`",
                "called `Option::unwrap()`", "entered unreachable code")


@contextlib.contextmanager
def quiet_panics() -> Iterator[None]:
    with _LOCK, tempfile.TemporaryFile() as sink:
        try:
            saved = os.dup(2)
        except OSError:  # no fd 2 at all: nothing to protect
            yield
            return
        try:
            os.dup2(sink.fileno(), 2)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)
            sink.seek(0)
            kept = [line for line in sink.read().splitlines(keepends=True)
                    if not any(p.encode() in line for p in _PANIC_LINES)]
            if kept:
                os.write(2, b"".join(kept))
