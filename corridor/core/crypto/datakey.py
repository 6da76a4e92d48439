"""Data keys (DEKs), key-encryption keys (KEKs) and the envelope that wraps one in the other.

A data key is AES-256, one per corridor and epoch. It is wrapped with the
destination zone's KEK by AES-256-GCM, with associated data binding the zone,
the KEK id, and the data key's own id, corridor, epoch and creation time: a
wrapped key copied onto another id or zone fails to unwrap. The wrapped form
(``WrappedKey``) is what goes to the compacted ``_corridor.keys`` topic, keyed
by ``key_id``.

Key ids are derived from a domain-separated SHA-256 of the key (first 8 hex
digits): stable, short, and they never contain key material.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from corridor.core.crypto.secret import SecretBytes
from corridor.core.errors import CryptoError, TamperedCiphertext, WrongKey

KEY_BYTES = 32
WRAP_ALG = "A256GCM"
WRAPPED_VERSION = 1

Random = Callable[[int], bytes]
Clock = Callable[[], float]


def key_fingerprint(material: bytes, purpose: str) -> str:
    """First 8 hex digits of SHA-256(purpose || key): an id suffix that reveals nothing useful."""
    return hashlib.sha256(purpose.encode() + b"\0" + material).hexdigest()[:8]


@dataclass(frozen=True)
class Kek:
    """A zone's key-encryption key. ``key_id`` is ``<zone>-kek-<8 hex>``."""

    zone: str
    key_id: str
    material: SecretBytes = field(repr=False)

    @classmethod
    def from_material(cls, zone: str, material: bytes) -> Kek:
        if len(material) != KEY_BYTES:
            raise CryptoError(f"KEK of zone {zone} must be {KEY_BYTES} bytes, got {len(material)}")
        return cls(zone, f"{zone}-kek-{key_fingerprint(material, 'kek')}", SecretBytes(material))


@dataclass(frozen=True)
class DataKey:
    """An AES-256 data key for one corridor and epoch. ``created_at`` is Unix seconds."""

    key_id: str
    corridor: str
    epoch: int
    created_at: float
    material: SecretBytes = field(repr=False)


def new_data_key(
    corridor: str, epoch: int, *, random: Random = os.urandom, clock: Clock = time.time
) -> DataKey:
    """Draw a fresh data key; its id is ``<corridor>-dek-e<epoch>-<8 hex>``."""
    material = random(KEY_BYTES)
    if len(material) != KEY_BYTES:
        raise CryptoError("random source returned the wrong number of bytes")
    key_id = f"{corridor}-dek-e{epoch}-{key_fingerprint(material, 'dek')}"
    return DataKey(key_id, corridor, epoch, clock(), SecretBytes(material))


@dataclass(frozen=True)
class WrappedKey:
    """A data key wrapped under a zone's KEK: safe to publish, useless without the KEK.

    ``wrapped`` is ``nonce(12) || ciphertext || tag(16)``. ``to_json``/``from_json``
    give the ``_corridor.keys`` record value; ``topic_key`` its Kafka key.
    """

    key_id: str
    corridor: str
    epoch: int
    created_at: float
    zone: str
    kek_id: str
    wrapped: bytes = field(repr=False)
    alg: str = WRAP_ALG

    @property
    def topic_key(self) -> bytes:
        return self.key_id.encode()

    def to_json(self) -> bytes:
        obj = {
            "v": WRAPPED_VERSION,
            "key_id": self.key_id,
            "corridor": self.corridor,
            "epoch": self.epoch,
            "created_at": self.created_at,
            "zone": self.zone,
            "kek_id": self.kek_id,
            "alg": self.alg,
            "wrapped": base64.b64encode(self.wrapped).decode(),
        }
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()

    @classmethod
    def from_json(cls, data: bytes) -> WrappedKey:
        """Parse a ``_corridor.keys`` value; raises CryptoError naming what is wrong."""
        try:
            obj = json.loads(data)
            if obj.get("v") != WRAPPED_VERSION:
                raise CryptoError(f"unsupported wrapped key version {obj.get('v')!r}")
            return cls(
                str(obj["key_id"]),
                str(obj["corridor"]),
                int(obj["epoch"]),
                float(obj["created_at"]),
                str(obj["zone"]),
                str(obj["kek_id"]),
                base64.b64decode(obj["wrapped"], validate=True),
                str(obj["alg"]),
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            raise CryptoError(f"malformed wrapped key: {type(exc).__name__}") from None


def _wrap_aad(
    zone: str, kek_id: str, key_id: str, corridor: str, epoch: int, created: float
) -> bytes:
    return json.dumps(
        ["corridor-wrap-v1", zone, kek_id, key_id, corridor, epoch, repr(float(created))],
        separators=(",", ":"),
    ).encode()


def wrap_data_key(key: DataKey, kek: Kek, *, random: Random = os.urandom) -> WrappedKey:
    """Wrap ``key`` under ``kek`` (AES-256-GCM, random nonce, metadata as associated data)."""
    aad = _wrap_aad(kek.zone, kek.key_id, key.key_id, key.corridor, key.epoch, key.created_at)
    nonce = random(12)
    sealed = AESGCM(kek.material.reveal()).encrypt(nonce, key.material.reveal(), aad)
    return WrappedKey(
        key.key_id, key.corridor, key.epoch, key.created_at, kek.zone, kek.key_id, nonce + sealed
    )


def unwrap_data_key(wrapped: WrappedKey, kek: Kek) -> DataKey:
    """Unwrap with ``kek``.

    Raises WrongKey when ``kek`` is not the KEK (zone and id) the key was wrapped
    under, and TamperedCiphertext when it is but the wrapped bytes or their
    metadata were altered.
    """
    if kek.zone != wrapped.zone or kek.key_id != wrapped.kek_id:
        raise WrongKey(
            f"data key {wrapped.key_id} is wrapped for zone {wrapped.zone} under KEK "
            f"{wrapped.kek_id}; the KEK offered is {kek.key_id} of zone {kek.zone}"
        )
    if wrapped.alg != WRAP_ALG or len(wrapped.wrapped) != 12 + KEY_BYTES + 16:
        raise TamperedCiphertext(f"wrapped data key {wrapped.key_id} is malformed")
    aad = _wrap_aad(
        wrapped.zone,
        wrapped.kek_id,
        wrapped.key_id,
        wrapped.corridor,
        wrapped.epoch,
        wrapped.created_at,
    )
    try:
        material = SecretBytes(
            AESGCM(kek.material.reveal()).decrypt(wrapped.wrapped[:12], wrapped.wrapped[12:], aad)
        )
    except InvalidTag:
        raise TamperedCiphertext(
            f"wrapped data key {wrapped.key_id} or its metadata was altered"
        ) from None
    return DataKey(wrapped.key_id, wrapped.corridor, wrapped.epoch, wrapped.created_at, material)
