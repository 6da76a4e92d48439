"""96-bit AES-GCM nonces that never repeat under a key.

A nonce is ``prefix(4 random bytes) || counter(8 bytes, little-endian)``. The
prefix is drawn once per source; the counter only goes up, so one source never
repeats a nonce. The process-wide source (``process_nonces()``) is replaced in
a forked child, whose copied counter would otherwise replay the parent's
nonces. Two processes that share a data key differ by their random prefixes
(a collision needs equal 32-bit prefixes *and* overlapping counters).
"""

from __future__ import annotations

import os
import struct
import threading
from collections.abc import Callable

from corridor.core.errors import CryptoError

NONCE_BYTES = 12
_COUNTER_LIMIT = 2**64
_pack = struct.Struct("<4sQ").pack


class NonceSource:
    """Hands out unique nonces; thread-safe. ``random`` is injectable for tests."""

    __slots__ = ("_lock", "_next", "prefix")

    def __init__(self, random: Callable[[int], bytes] = os.urandom, start: int = 0) -> None:
        prefix = random(4)
        if len(prefix) != 4:
            raise CryptoError("nonce prefix must be 4 bytes")
        self.prefix = prefix
        self._next = start
        self._lock = threading.Lock()

    def reserve(self, n: int) -> int:
        """Reserve ``n`` consecutive counters; returns the first. Use ``nonce(c)`` for each."""
        with self._lock:
            first = self._next
            if first + n > _COUNTER_LIMIT:
                raise CryptoError("nonce counter exhausted; draw a new nonce source")
            self._next = first + n
        return first

    def nonce(self, counter: int) -> bytes:
        """The nonce for a reserved counter."""
        return _pack(self.prefix, counter)

    def next(self) -> bytes:
        return _pack(self.prefix, self.reserve(1))


_process_source: NonceSource | None = None
_process_lock = threading.Lock()


def process_nonces() -> NonceSource:
    """The nonce source shared by every cipher in this process (new after a fork)."""
    global _process_source
    with _process_lock:
        if _process_source is None:
            _process_source = NonceSource()
        return _process_source


def _forget_after_fork() -> None:
    global _process_source, _process_lock
    _process_source = None
    _process_lock = threading.Lock()


os.register_at_fork(after_in_child=_forget_after_fork)
