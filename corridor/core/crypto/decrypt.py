"""Decryption side: for the consumer SDK. Fails closed, with specific errors.

- KeyNotFound: no data key for the ciphertext's key id in ``keys``;
- ContextMismatch: the ciphertext was made for another corridor, dataset,
  field (or batch, in the arrow format), or its header's context tag was altered;
- TamperedCiphertext: the context matches but the ciphertext does not
  authenticate (altered bytes), or the header is malformed.

Nothing is returned unless every value authenticated.
"""

from __future__ import annotations

from collections.abc import Mapping
from itertools import pairwise, repeat

import pyarrow as pa
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV

from corridor.core.crypto.column import column_from_bytes
from corridor.core.crypto.datakey import DataKey
from corridor.core.crypto.envelope import (
    AEAD_TAG_BYTES,
    FORMAT_BATCH,
    FORMAT_SIV,
    NONCE_BYTES,
    KeySchedule,
    context,
    split,
)
from corridor.core.crypto.values import Spans, decode_values, value_spans
from corridor.core.errors import ContextMismatch, CryptoError, KeyNotFound, TamperedCiphertext

KeyLookup = Mapping[str, DataKey]
AEAD = AESGCM | AESGCMSIV | None


class _Opener:
    """Opens ciphertexts of one context; caches one key schedule per key id."""

    def __init__(
        self, keys: KeyLookup, corridor: str, dataset: str, field: str, lineage: str = ""
    ) -> None:
        self._keys = keys
        self._where = (corridor, dataset, field, lineage)
        self._cache: dict[tuple[int, bytes], tuple[KeySchedule, bytes, bytes]] = {}
        self.last: tuple[bytes, AEAD, bytes, str] = (b"", None, b"", "")

    def _entry(self, fmt: int, kid: bytes) -> tuple[KeySchedule, bytes, bytes]:
        entry = self._cache.get((fmt, kid))
        if entry is None:
            key_id = kid.decode(errors="replace")
            try:
                key = self._keys[key_id]
            except KeyError:
                raise KeyNotFound(f"no data key {key_id!r} is known here") from None
            schedule = KeySchedule(key)
            corridor, dataset, field, lineage = self._where
            ctx = context(fmt, corridor, dataset, field, key_id, lineage)
            entry = (schedule, schedule.ctx_tag(ctx), ctx)
            self._cache[(fmt, kid)] = entry
        return entry

    def open(self, value: bytes | memoryview, row: int | None = None) -> bytes:
        """Plaintext of one ciphertext; remembers its header for ``open_all``'s fast path."""
        fmt, kid, tag, rest = split(value)
        schedule, expected, ctx = self._entry(fmt, kid)
        if tag != expected:
            corridor, dataset, field, lineage = self._where
            batch = f", batch {lineage}" if lineage else ""
            raise ContextMismatch(
                f"value{_at(row)} was not encrypted for corridor {corridor}, dataset {dataset}, "
                f"field {field}{batch} (key {schedule.key_id})"
            )
        aead = schedule.siv if fmt == FORMAT_SIV else schedule.gcm
        self.last = (bytes(value[: len(value) - len(rest)]), aead, ctx, schedule.key_id)
        try:
            return aead.decrypt(rest[:NONCE_BYTES], rest[NONCE_BYTES:], ctx)
        except InvalidTag:
            raise self._tampered(row, schedule.key_id) from None

    def _tampered(self, row: int | None, key_id: str) -> TamperedCiphertext:
        return TamperedCiphertext(
            f"value{_at(row)} of field {self._where[2]} failed authentication "
            f"(key {key_id}): it was altered"
        )

    def open_all(self, spans: Spans) -> list[bytes | None]:
        """Open every value. Values whose header equals the previous value's header
        (same format, key and context tag: the common case) skip parsing and lookup."""
        data, offsets, valid = spans
        flags = valid if valid is not None else repeat(True)
        out: list[bytes | None] = []
        append = out.append
        aead: AEAD = None
        head, ctx, key_id = b"", b"", ""
        skip = 0
        for row, ((start, end), ok) in enumerate(zip(pairwise(offsets), flags, strict=False)):
            if not ok:
                append(None)
                continue
            body = start + skip
            fast = end - body >= NONCE_BYTES + AEAD_TAG_BYTES
            if aead is not None and fast and data.startswith(head, start):
                nonce = data[body : body + NONCE_BYTES]
                try:
                    append(aead.decrypt(nonce, data[body + NONCE_BYTES : end], ctx))
                except InvalidTag:
                    raise self._tampered(row, key_id) from None
                continue
            append(self.open(data[start:end], row))
            head, aead, ctx, key_id = self.last
            skip = len(head)
        return out


def _at(row: int | None) -> str:
    return "" if row is None else f" at row {row}"


def decrypt_column(
    values: pa.Array,
    arrow_type: pa.DataType,
    *,
    corridor: str,
    dataset: str,
    field: str,
    keys: KeyLookup,
) -> pa.Array:
    """Decrypt a binary column made by ``FieldCipher.encrypt_column`` back to ``arrow_type``.

    ``keys`` maps key id -> DataKey (a ``DataKeyRing`` will do); values may use
    different keys (epochs). Raises on the first value that fails (see module doc).
    """
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    if not (pa.types.is_binary(values.type) or pa.types.is_large_binary(values.type)):
        raise CryptoError(f"encrypted column must be binary, got {values.type}")
    opener = _Opener(keys, corridor, dataset, field)
    return decode_values(opener.open_all(value_spans(values)), arrow_type)


def decrypt_batch_column(
    blob: bytes,
    *,
    corridor: str,
    dataset: str,
    field: str,
    lineage: str,
    keys: KeyLookup,
    arrow_type: pa.DataType | None = None,
) -> pa.Array:
    """Decrypt an arrow-format column made by ``FieldCipher.encrypt_batch_column``.

    ``lineage`` must be the same batch lineage string the writer used.
    ``arrow_type``, when given, is checked against the decrypted column.
    """
    if not blob or blob[0] != FORMAT_BATCH:
        raise TamperedCiphertext("not an arrow-format column ciphertext")
    opener = _Opener(keys, corridor, dataset, field, lineage)
    return column_from_bytes(opener.open(blob), arrow_type)
