"""Ciphertext layout, associated data, and the per-data-key schedule.

Every ciphertext (one field value in the avro format, one column of one batch
in the arrow format) is self-describing::

    format   1 byte   0x01 AES-256-GCM per value (random-prefix counter nonce)
                      0x02 AES-256-GCM-SIV per value (deterministic)
                      0x03 AES-256-GCM over a whole column of one batch (arrow format)
    kid_len  1 byte   length of the key id
    key_id   kid_len  UTF-8 data key id (looked up on decrypt)
    ctx_tag  8 bytes  HMAC-SHA256(tag_key, context)[:8]
    nonce    12 bytes
    sealed   rest     ciphertext || 16-byte tag

The *context* is ``format, corridor, dataset, field, key_id`` (and the batch's
lineage string in the arrow format), length-prefixed; it is the AEAD's
associated data.

Why the context tag: AES-GCM alone fails the same way for a value that was
altered and for an intact value moved to another field, dataset or corridor
(both are a wrong tag). The keyed context tag lets the reader tell them
apart *before* the AEAD: tag differs from the reader's context ->
ContextMismatch (moved, or its header altered); tag matches but the AEAD
fails -> TamperedCiphertext. The tag is keyed with a key derived from the
data key, so it tells an outsider nothing beyond "same context", which the
ciphertext's position already shows.

Subkeys: the data key is never used directly. HKDF-SHA256 derives a GCM key,
a GCM-SIV key, the context tag key and the fixed GCM-SIV nonce, so no key
serves two algorithms.
"""

from __future__ import annotations

import hashlib
import hmac
import struct

from cryptography.hazmat.primitives.ciphers.aead import AESGCM, AESGCMSIV
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from corridor.core.crypto.datakey import DataKey
from corridor.core.errors import TamperedCiphertext

FORMAT_GCM = 0x01
FORMAT_SIV = 0x02
FORMAT_BATCH = 0x03
FORMATS = (FORMAT_GCM, FORMAT_SIV, FORMAT_BATCH)
TAG_BYTES = 8
NONCE_BYTES = 12
AEAD_TAG_BYTES = 16


def context(
    fmt: int, corridor: str, dataset: str, field: str, key_id: str, lineage: str = ""
) -> bytes:
    """Unambiguous encoding of what a ciphertext is bound to (the AEAD's associated data)."""
    parts = [b"corridor-ctx-v1", bytes([fmt])]
    for text in (corridor, dataset, field, key_id, lineage):
        raw = text.encode()
        parts.append(struct.pack("<I", len(raw)))
        parts.append(raw)
    return b"".join(parts)


class KeySchedule:
    """Ciphers and derived values of one data key. Repr shows only the key id."""

    __slots__ = ("_tag_key", "gcm", "key_id", "siv", "siv_nonce")

    def __init__(self, key: DataKey) -> None:
        okm = HKDF(SHA256(), 32 * 3 + NONCE_BYTES, None, b"corridor data key v1").derive(
            key.material.reveal()
        )
        self.key_id = key.key_id
        self.gcm = AESGCM(okm[0:32])
        self.siv = AESGCMSIV(okm[32:64])
        self._tag_key = okm[64:96]
        self.siv_nonce = okm[96:108]

    def ctx_tag(self, ctx: bytes) -> bytes:
        return hmac.new(self._tag_key, ctx, hashlib.sha256).digest()[:TAG_BYTES]

    def header(self, fmt: int, ctx: bytes) -> bytes:
        kid = self.key_id.encode()
        if len(kid) > 255:
            raise ValueError("key id longer than 255 bytes")
        return bytes([fmt, len(kid)]) + kid + self.ctx_tag(ctx)

    def __repr__(self) -> str:
        return f"KeySchedule(key_id={self.key_id!r})"


def split(value: bytes | memoryview) -> tuple[int, bytes, bytes, memoryview]:
    """``(format, key_id bytes, ctx_tag, nonce || sealed)`` of a ciphertext, or TamperedCiphertext."""
    mv = memoryview(value)
    if len(mv) < 2:
        raise TamperedCiphertext("ciphertext is too short to hold a header")
    fmt, klen = mv[0], mv[1]
    body = 2 + klen + TAG_BYTES
    if fmt not in FORMATS or len(mv) < body + NONCE_BYTES + AEAD_TAG_BYTES:
        raise TamperedCiphertext(f"ciphertext header is malformed (format byte {fmt:#04x})")
    return fmt, bytes(mv[2 : 2 + klen]), bytes(mv[2 + klen : body]), mv[body:]
