"""The small interface every key provider implements (local kek_provider, Vault/OpenBao, a KMS)."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from corridor.core.crypto.datakey import DataKey, WrappedKey


@runtime_checkable
class KekProvider(Protocol):
    """Wraps and unwraps data keys under a zone's key-encryption key (KEK).

    Fails closed: every method raises (KeyNotFound when the zone has no KEK
    here, WrongKey when the wrapped key was made under another KEK,
    TamperedCiphertext when it was altered, KeyProviderUnavailable when the
    provider cannot be reached) and never returns a key it could not check.
    """

    def kek_id(self, zone: str) -> str:
        """Id of the zone's current KEK (never key material)."""
        ...

    def wrap(self, key: DataKey, zone: str) -> WrappedKey:
        """Wrap ``key`` under ``zone``'s KEK, for publishing to ``_corridor.keys``."""
        ...

    def unwrap(self, wrapped: WrappedKey) -> DataKey:
        """Unwrap with the KEK of ``wrapped.zone``."""
        ...
