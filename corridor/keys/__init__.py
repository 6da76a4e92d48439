"""Key providers: where zones' key-encryption keys live (local files, Vault/OpenBao transit)."""

from corridor.keys.local import LocalKekProvider, default_keys_dir
from corridor.keys.provider import KekProvider

__all__ = ["KekProvider", "LocalKekProvider", "default_keys_dir"]
