"""Column kernels of the transforms: pseudonymize and mask (and their per-value references).

Pseudonym: HMAC-SHA256(corridor pseudonym key, plaintext), first 15 bytes,
base64url: a 20-character token (120 bits; 15 bytes are 5 whole base64 groups,
so a column's tokens are ONE base64 call over the joined digests). The
plaintext is a string's UTF-8, other scalars' canonical bytes
(``corridor.core.crypto.values``: little-endian fixed width, enums as their symbol).
Equal values give equal tokens within a corridor (joinable), different ones
across corridors (different keys); nulls stay null.

Mask (strings): an e-mail-like value (has ``@``) keeps its domain,
``alice@example.com`` -> ``***@example.com``; any other value longer than 4
characters keeps its last 4, ``+852 9123 4567`` -> ``****4567``; a value of 4
characters or fewer becomes ``****``. Nulls stay null.
"""

from __future__ import annotations

import base64
import hmac
import itertools

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from corridor.core.crypto.values import encode_values

TOKEN_BYTES = 15
TOKEN_CHARS = 20
_digest = hmac.digest


def pseudonymize_column(arr: pa.Array, key: bytes) -> pa.Array:
    """A ``pa.string()`` token for every value of *arr* (any scalar type), nulls kept.

    Strings and binaries hash their bytes as they are (a string's UTF-8)."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    if pa.types.is_dictionary(arr.type):  # enums: hash each symbol once
        return pseudonymize_column(arr.dictionary, key).take(arr.indices)
    if pa.types.is_string(arr.type) or pa.types.is_large_string(arr.type) or (
        pa.types.is_binary(arr.type) or pa.types.is_large_binary(arr.type)
    ):
        # Hash each distinct value once: names and ids repeat a lot in a batch.
        encoded = pc.dictionary_encode(arr)
        return _string_tokens(encoded.dictionary, key).take(encoded.indices)
    plaintexts = encode_values(arr)
    tokens = [None if p is None else pseudonym(bytes(p), key) for p in plaintexts]
    return pa.array(tokens, pa.string())


def _string_tokens(arr: pa.Array, key: bytes) -> pa.Array:
    """Tokens of a string array without nulls (a dictionary), built from its buffers."""
    n = len(arr)
    if n == 0:
        return pa.array([], pa.string())
    width = np.int64 if pa.types.is_large_string(arr.type) else np.int32
    _, offsets_buf, data_buf = arr.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=width)[arr.offset : arr.offset + n + 1]
    start = int(offsets[0])
    data = data_buf.to_pybytes()[start : int(offsets[-1])] if data_buf is not None else b""
    bounds = (offsets - start).tolist()
    digests = b"".join(
        [_digest(key, data[s:e], "sha256")[:TOKEN_BYTES] for s, e in itertools.pairwise(bounds)]
    )
    text = base64.urlsafe_b64encode(digests)
    token_offsets = np.arange(0, (n + 1) * TOKEN_CHARS, TOKEN_CHARS, dtype=np.int32)
    return pa.StringArray.from_buffers(n, pa.py_buffer(token_offsets), pa.py_buffer(text))


def pseudonym(plaintext: bytes, key: bytes) -> str:
    """The token of one plaintext (the per-value reference of ``pseudonymize_column``)."""
    return base64.urlsafe_b64encode(_digest(key, plaintext, "sha256")[:TOKEN_BYTES]).decode()


_EMAIL = pa.scalar("***", pa.string())
_HIDDEN = pa.scalar("****", pa.string())


def mask_column(arr: pa.Array) -> pa.Array:
    """Masked strings (see the module docstring), vectorised with Arrow's utf8 kernels."""
    if isinstance(arr, pa.ChunkedArray):
        arr = arr.combine_chunks()
    email = pc.replace_substring_regex(arr, pattern=r"(?s)^[^@]*@", replacement="***@")
    tail = pc.binary_join_element_wise(
        _HIDDEN, pc.utf8_slice_codeunits(arr, start=-4), pa.scalar("", pa.string())
    )
    other = pc.if_else(pc.greater(pc.utf8_length(arr), 4), tail, _HIDDEN)
    masked = pc.if_else(pc.match_substring(arr, "@"), email, other)
    return masked.cast(arr.type) if masked.type != arr.type else masked


def mask_value(value: str | None) -> str | None:
    """One masked string (the per-value reference of ``mask_column``)."""
    if value is None:
        return None
    if "@" in value:
        return "***" + value[value.index("@") :]
    return "****" + value[-4:] if len(value) > 4 else "****"
