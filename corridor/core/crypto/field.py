"""Encryption side: ``FieldCipher`` encrypts columns with one data key.

Three modes, all with associated data binding corridor, dataset, field and
key id (layout and context tag: ``corridor.core.crypto.envelope``):

- ``encrypt_column``: AES-256-GCM per value (avro format). Nonces come from
  a ``NonceSource`` (random 4-byte prefix, 64-bit counter) and never repeat
  under a key. Nulls stay null: *whether* a value is present is visible.
- ``encrypt_column(..., deterministic=True)``: AES-256-GCM-SIV with a fixed
  nonce derived from the data key, so equal values give equal ciphertexts
  within one corridor, dataset, field and epoch (joins and group-bys still
  work). It reveals which values are equal, and nothing else; a new epoch
  changes every ciphertext.
- ``encrypt_batch_column``: the arrow format. One AES-256-GCM operation over
  the whole column of one batch (as a one-column Arrow IPC stream); the batch's
  lineage string is bound too, so a column cannot be moved to another batch.

A cipher counts its encryptions (a whole column in the arrow format counts
one) and raises KeyUsageExhausted before exceeding ``usage_limit``, so the
caller rotates to a new epoch (``corridor.core.crypto.ring.DataKeyRing``).
"""

from __future__ import annotations

import struct
import threading
from itertools import pairwise, repeat

import pyarrow as pa

from corridor.core.crypto.column import column_to_bytes
from corridor.core.crypto.datakey import DataKey
from corridor.core.crypto.envelope import (
    FORMAT_BATCH,
    FORMAT_GCM,
    FORMAT_SIV,
    KeySchedule,
    context,
)
from corridor.core.crypto.nonce import NonceSource, process_nonces
from corridor.core.crypto.values import Spans, value_spans
from corridor.core.errors import CryptoError, KeyUsageExhausted

# NIST SP 800-38D caps invocations per GCM key at 2**32 unless nonces are
# deterministic; our counters are, but the cap also bounds what one key protects.
DEFAULT_USAGE_LIMIT = 2**32


class FieldCipher:
    """Encrypts with one data key. Thread-safe. Never shows key material."""

    def __init__(
        self,
        key: DataKey,
        *,
        usage_limit: int = DEFAULT_USAGE_LIMIT,
        nonces: NonceSource | None = None,
    ) -> None:
        """``nonces`` defaults to the process-wide source (tests inject their own)."""
        self.key = key
        self.usage_limit = usage_limit
        self._schedule = KeySchedule(key)
        self._nonces = nonces
        self._used = 0
        self._lock = threading.Lock()

    @property
    def key_id(self) -> str:
        return self.key.key_id

    @property
    def used(self) -> int:
        """Encryptions done so far with this key."""
        return self._used

    def __repr__(self) -> str:
        return f"FieldCipher(key_id={self.key_id!r}, used={self._used})"

    def _spend(self, n: int) -> None:
        with self._lock:
            if self._used + n > self.usage_limit:
                raise KeyUsageExhausted(self.key_id, self.usage_limit, self._used)
            self._used += n

    def _check_corridor(self, corridor: str) -> None:
        if corridor != self.key.corridor:
            raise CryptoError(
                f"data key {self.key_id} belongs to corridor {self.key.corridor}, not {corridor}"
            )

    def encrypt_column(
        self,
        values: pa.Array,
        *,
        corridor: str,
        dataset: str,
        field: str,
        deterministic: bool = False,
    ) -> pa.Array:
        """Encrypt every value; returns ``pa.binary()`` of the same length, nulls where nulls were.

        Plaintext encoding per Arrow type: ``corridor.core.crypto.values``. Raises
        KeyUsageExhausted (nothing encrypted) when the column would pass the limit.
        """
        self._check_corridor(corridor)
        if isinstance(values, pa.ChunkedArray):
            values = values.combine_chunks()
        spans = value_spans(values)
        count = len(values) - values.null_count
        self._spend(count)
        fmt = FORMAT_SIV if deterministic else FORMAT_GCM
        ctx = context(fmt, corridor, dataset, field, self.key_id)
        header = self._schedule.header(fmt, ctx)
        out = self._seal_siv(spans, header, ctx) if deterministic else self._seal_gcm(spans, header, ctx, count)
        return pa.array(out, pa.binary())

    def _seal_gcm(self, spans: Spans, header: bytes, ctx: bytes, count: int) -> list[bytes | None]:
        source = self._nonces or process_nonces()
        counter = source.reserve(count)
        prefix = source.prefix
        # header || nonce in one pack call: the loop body is one pack, one encrypt, one concat.
        pack = struct.Struct(f"<{len(header)}s4sQ").pack
        encrypt = self._schedule.gcm.encrypt
        skip = len(header)
        data, offsets, valid = spans
        out: list[bytes | None] = []
        append = out.append
        if valid is None:
            for start, end in pairwise(offsets):
                head = pack(header, prefix, counter)
                counter += 1
                append(head + encrypt(head[skip:], data[start:end], ctx))
            return out
        for (start, end), ok in zip(pairwise(offsets), valid, strict=False):
            if not ok:
                append(None)
                continue
            head = pack(header, prefix, counter)
            counter += 1
            append(head + encrypt(head[skip:], data[start:end], ctx))
        return out

    def _seal_siv(self, spans: Spans, header: bytes, ctx: bytes) -> list[bytes | None]:
        nonce = self._schedule.siv_nonce
        head = header + nonce
        encrypt = self._schedule.siv.encrypt
        data, offsets, valid = spans
        flags = valid if valid is not None else repeat(True)
        return [
            head + encrypt(nonce, data[start:end], ctx) if ok else None
            for (start, end), ok in zip(pairwise(offsets), flags, strict=False)
        ]

    def encrypt_batch_column(
        self,
        values: pa.Array | pa.ChunkedArray,
        *,
        corridor: str,
        dataset: str,
        field: str,
        lineage: str,
    ) -> bytes:
        """Encrypt a whole column of one batch with one AES-GCM operation (arrow format).

        ``lineage`` identifies the batch (e.g. ``topic/partition/first-last``) and
        must be given again to decrypt. Returns the self-describing ciphertext.
        """
        self._check_corridor(corridor)
        self._spend(1)
        ctx = context(FORMAT_BATCH, corridor, dataset, field, self.key_id, lineage)
        source = self._nonces or process_nonces()
        nonce = source.nonce(source.reserve(1))
        head = self._schedule.header(FORMAT_BATCH, ctx) + nonce
        return head + self._schedule.gcm.encrypt(nonce, column_to_bytes(values), ctx)
