"""``VaultTransit``: zones' KEKs as named keys in a Vault / OpenBao transit engine.

The KEK never leaves the server: ``wrap`` sends the data key to
``transit/encrypt/<name>`` and stores the returned ``vault:vN:...`` string;
``unwrap`` sends it to ``transit/decrypt/<name>``. The transit plaintext is
``data key (32 bytes) || SHA-256(metadata)``, so the wrapped key's id,
corridor, epoch, zone and KEK id are authenticated by transit's AES-GCM the
way the local kek_provider binds them as associated data (and it works on
servers without transit's ``associated_data`` parameter).

The KEK id is ``<zone>-transit-<name>-<8 hex>``, the hex a hash of the key's
name and the creation time of its version 1: a key deleted and re-created
under the same name gets a new id, so old wrapped keys raise WrongKey.

Every call has a short timeout; an unreachable, sealed or erroring server
raises KeyProviderUnavailable, never returns a key.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import hvac
import hvac.exceptions as hvac_errors
import requests

from corridor.core.crypto.datakey import KEY_BYTES, DataKey, WrappedKey
from corridor.core.crypto.secret import SecretBytes
from corridor.core.errors import (
    CryptoError,
    KeyNotFound,
    KeyProviderUnavailable,
    TamperedCiphertext,
    WrongKey,
)

TRANSIT_ALG = "vault-transit"


def _metadata_digest(w: WrappedKey | DataKey, zone: str, kek_id: str) -> bytes:
    text = "\0".join(
        [
            "corridor-transit-v1",
            zone,
            kek_id,
            w.key_id,
            w.corridor,
            str(w.epoch),
            repr(float(w.created_at)),
        ]
    )
    return hashlib.sha256(text.encode()).digest()


class VaultTransit:
    """A KekProvider on a transit engine. ``key_name(zone)`` defaults to ``corridor-<zone>``."""

    def __init__(
        self,
        url: str,
        token: str,
        *,
        mount: str = "transit",
        key_name: Callable[[str], str] = lambda zone: f"corridor-{zone}",
        timeout: float = 2.0,
        client: Any = None,
    ) -> None:
        self.url = url
        self.mount = mount
        self._key_name = key_name
        self._client = client or hvac.Client(url=url, token=token, timeout=timeout)
        self._kek_ids: dict[str, str] = {}

    def __repr__(self) -> str:
        return f"VaultTransit(url={self.url!r}, mount={self.mount!r})"

    @contextmanager
    def _call(self, what: str, zone: str) -> Iterator[None]:
        """Map transport and server failures to corridor errors (fail closed)."""
        name = self._key_name(zone)
        try:
            yield
        except hvac_errors.InvalidPath:
            raise KeyNotFound(
                f"{self.url}: no transit key {self.mount}/{name} for zone {zone}"
            ) from None
        except hvac_errors.InvalidRequest:
            raise TamperedCiphertext(
                f"transit {what} with {self.mount}/{name} refused the data"
            ) from None
        except (hvac_errors.Forbidden, hvac_errors.Unauthorized):
            raise KeyProviderUnavailable(
                f"{self.url}: permission denied for transit {what} with {self.mount}/{name}"
            ) from None
        except (hvac_errors.VaultError, requests.RequestException) as exc:
            raise KeyProviderUnavailable(
                f"{self.url}: transit {what} for zone {zone} failed ({type(exc).__name__})"
            ) from None

    def create_key(self, zone: str) -> str:
        """Create the zone's transit key (aes256-gcm96) if missing; returns its KEK id."""
        with self._call("create key", zone):
            self._client.secrets.transit.create_key(
                self._key_name(zone), key_type="aes256-gcm96", mount_point=self.mount
            )
        self._kek_ids.pop(zone, None)
        return self.kek_id(zone)

    def kek_id(self, zone: str) -> str:
        cached = self._kek_ids.get(zone)
        if cached is not None:
            return cached
        name = self._key_name(zone)
        with self._call("read key", zone):
            data = self._client.secrets.transit.read_key(name, mount_point=self.mount)["data"]
        first = str(data.get("keys", {}).get("1", ""))
        kek_id = (
            f"{zone}-transit-{name}-{hashlib.sha256(f'{name}|{first}'.encode()).hexdigest()[:8]}"
        )
        self._kek_ids[zone] = kek_id
        return kek_id

    def wrap(self, key: DataKey, zone: str) -> WrappedKey:
        kek_id = self.kek_id(zone)
        blob = key.material.reveal() + _metadata_digest(key, zone, kek_id)
        with self._call("encrypt", zone):
            reply = self._client.secrets.transit.encrypt_data(
                self._key_name(zone),
                plaintext=base64.b64encode(blob).decode(),
                mount_point=self.mount,
            )
        sealed = str(reply["data"]["ciphertext"]).encode()
        return WrappedKey(
            key.key_id, key.corridor, key.epoch, key.created_at, zone, kek_id, sealed, TRANSIT_ALG
        )

    def unwrap(self, wrapped: WrappedKey) -> DataKey:
        zone = wrapped.zone
        kek_id = self.kek_id(zone)
        if wrapped.kek_id != kek_id:
            raise WrongKey(
                f"data key {wrapped.key_id} is wrapped under {wrapped.kek_id}; "
                f"this server's KEK for zone {zone} is {kek_id}"
            )
        if wrapped.alg != TRANSIT_ALG:
            raise CryptoError(
                f"data key {wrapped.key_id} was not wrapped by transit ({wrapped.alg})"
            )
        with self._call("decrypt", zone):
            reply = self._client.secrets.transit.decrypt_data(
                self._key_name(zone),
                ciphertext=wrapped.wrapped.decode("ascii", errors="replace"),
                mount_point=self.mount,
            )
        try:
            blob = base64.b64decode(reply["data"]["plaintext"], validate=True)
        except (binascii.Error, KeyError, TypeError):
            raise TamperedCiphertext(
                f"transit returned no usable key for {wrapped.key_id}"
            ) from None
        if len(blob) != KEY_BYTES + 32 or blob[KEY_BYTES:] != _metadata_digest(
            wrapped, zone, kek_id
        ):
            raise TamperedCiphertext(
                f"wrapped data key {wrapped.key_id} or its metadata was altered"
            )
        return DataKey(
            wrapped.key_id,
            wrapped.corridor,
            wrapped.epoch,
            wrapped.created_at,
            SecretBytes(blob[:KEY_BYTES]),
        )
