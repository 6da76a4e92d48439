"""Key providers: where zones' key-encryption keys live (local files, Vault/OpenBao transit)."""

from corridor.keys.local import LocalKeyring, default_keys_dir
from corridor.keys.provider import KeyProvider

__all__ = ["KeyProvider", "LocalKeyring", "default_keys_dir"]
