"""Field and column encryption for corridors (pure: no I/O, no logging).

Envelope encryption: a zone's KEK (held by a key provider, ``corridor.keys``)
wraps per-corridor, per-epoch AES-256 data keys; data keys encrypt field
values (avro format: per value; arrow format: per column per batch). See the
module docs of ``field`` (modes), ``envelope`` (layout, context tag),
``values`` (plaintext encoding), ``decrypt`` (errors), ``ring`` (rotation).
"""

from corridor.core.crypto.datakey import (
    DataKey,
    Kek,
    WrappedKey,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from corridor.core.crypto.decrypt import KeyLookup, decrypt_batch_column, decrypt_column
from corridor.core.crypto.field import DEFAULT_USAGE_LIMIT, FieldCipher
from corridor.core.crypto.nonce import NonceSource, process_nonces
from corridor.core.crypto.ring import DataKeyRing
from corridor.core.crypto.secret import SecretBytes

__all__ = [
    "DEFAULT_USAGE_LIMIT",
    "DataKey",
    "FieldCipher",
    "Kek",
    "KeyLookup",
    "DataKeyRing",
    "NonceSource",
    "SecretBytes",
    "WrappedKey",
    "decrypt_batch_column",
    "decrypt_column",
    "new_data_key",
    "process_nonces",
    "unwrap_data_key",
    "wrap_data_key",
]
