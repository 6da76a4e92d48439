"""key: the record key under the policy, and the park headers a corridor lets through.

The Kafka key is a governed field (docs/DESIGN.md section 6). Per treatment, for a whole
batch of keys at once (``KeyTreatment``):

- ``pseudonymize``: the 20-character HMAC token of the key's bytes under the
  corridor's pseudonym key, as UTF-8 bytes. Equal keys give equal tokens (per-key
  order and joins survive); a UTF-8 key's token equals the token of the same
  string in a pseudonymized field, so keys and fields join.
- ``encrypt-deterministic``: AES-256-GCM-SIV of the key's bytes bound to the
  corridor, dataset and the pseudo-field ``KEY_FIELD``: equal keys, equal
  ciphertexts; the consumer SDK decrypts them.
- ``drop``: every key becomes null. ``keep``: the bytes as they are.

A null key stays null whatever the treatment; keys need not be UTF-8.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import pyarrow as pa

from corridor.core.config import KeyTreatment
from corridor.core.errors import PlanError
from corridor.core.policy.transform import TransformContext
from corridor.core.policy.values import pseudonymize_column
from corridor.core.wire import HEADER_PREFIX

# Associated-data field name of an encrypted key (no Avro field can be named so).
KEY_FIELD = "<key>"
RESERVED_HEADER_PREFIX = HEADER_PREFIX
Header = tuple[str, bytes | None]


def key_column(keys: Sequence[bytes | None], treatment: KeyTreatment,
               ctx: TransformContext) -> pa.Array:
    """The outgoing keys of *keys* as a ``pa.binary()`` array (nulls where keys were null)."""
    arr = pa.array(keys, pa.binary())
    if treatment is KeyTreatment.KEEP or arr.null_count == len(arr):
        return arr
    if treatment is KeyTreatment.DROP:
        return pa.nulls(len(arr), pa.binary())
    if treatment is KeyTreatment.PSEUDONYMIZE:
        if ctx.pseudonym_key is None:
            raise PlanError(ctx.corridor, f"no pseudonym key to pseudonymize {ctx.dataset}'s keys")
        return pseudonymize_column(arr, ctx.pseudonym_key).cast(pa.binary())
    if ctx.cipher is None:
        raise PlanError(ctx.corridor, f"no cipher to encrypt {ctx.dataset}'s keys")
    return ctx.cipher.encrypt_column(arr, corridor=ctx.corridor, dataset=ctx.dataset,
                                     field=KEY_FIELD, deterministic=True)


def outgoing_keys(keys: Sequence[bytes | None], treatment: KeyTreatment,
                  ctx: TransformContext) -> list[bytes | None]:
    """``key_column`` as a list (one per record, for the avro format)."""
    if treatment is KeyTreatment.KEEP:
        return list(keys)
    if not any(k is not None for k in keys):
        return [None] * len(keys)
    out: list[bytes | None] = key_column(keys, treatment, ctx).to_pylist()
    return out


def allowed_headers(headers: Iterable[Header] | None,
                    allowed: frozenset[str]) -> list[Header]:
    """The park headers named in *allowed*, in their order; never a ``corridor-*`` one."""
    if not headers or not allowed:
        return []
    return [(k, v) for k, v in headers
            if k in allowed and not k.lower().startswith(RESERVED_HEADER_PREFIX)]
