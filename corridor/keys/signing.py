"""The origin zone's audit signing key: one Ed25519 key per zone as a 0600 PEM file.

File ``<keys>/audit/<zone>.ed25519`` (``<keys>``: the zone's keys folder) holds the
PKCS#8 PEM of the private key; it signs the audit chain's checkpoints
(``corridor.core.audit.sign_checkpoint``). As with KEK files (``corridor.keys.local``),
the file is created with ``os.open(..., O_EXCL, 0o600)`` in a 0700 folder, so it is never,
even briefly, readable by others and never overwritten, and loading refuses a file or
folder that group or others can read or write. Does not own: the checkpoints themselves
(``core.audit``), distributing the public key to auditors (the commands).

Beside it, ``<keys>/audit/<zone>.ed25519.pub`` holds the public key (SubjectPublicKeyInfo
PEM), written when the key is made. A verifier needs only that: the operator's
``corridor audit public-key`` prints it for an auditor, who passes the file to
``corridor audit verify --public-key``.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from cryptography.hazmat.primitives.asymmetric.ed25519 import (
    Ed25519PrivateKey,
    Ed25519PublicKey,
)
from cryptography.hazmat.primitives.serialization import (
    Encoding,
    NoEncryption,
    PrivateFormat,
    PublicFormat,
    load_pem_private_key,
    load_pem_public_key,
)

from corridor.core.errors import KeyFileError, KeyNotFound, KeyProviderUnavailable
from corridor.keys.local import _check_folder, _check_zone

SUFFIX = ".ed25519"
PUBLIC_SUFFIX = ".ed25519.pub"


def signing_key_path(keys: str | Path, zone: str) -> Path:
    """``<keys>/audit/<zone>.ed25519``."""
    _check_zone(zone)
    return Path(keys) / "audit" / f"{zone}{SUFFIX}"


def init_signing_key(keys: str | Path, zone: str) -> Ed25519PrivateKey:
    """Create the zone's signing key. KeyFileError if one exists or the folder is too open."""
    path = signing_key_path(keys, zone)
    if not path.parent.exists():
        path.parent.mkdir(mode=0o700, parents=True)
    _check_folder(path.parent)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
    except FileExistsError:
        raise KeyFileError(
            str(path),
            "an audit signing key already exists for this zone; refusing to overwrite it "
            "(checkpoints signed with it could no longer be tied to this zone's key)",
        ) from None
    key = Ed25519PrivateKey.generate()
    with os.fdopen(fd, "wb") as f:
        f.write(key.private_bytes(Encoding.PEM, PrivateFormat.PKCS8, NoEncryption()))
    public_key_path(keys, zone).write_bytes(public_pem(key))
    return key


def load_signing_key(keys: str | Path, zone: str) -> Ed25519PrivateKey:
    """The zone's signing key. KeyNotFound if there is none; KeyFileError if the file or
    its folder is readable by group or others, or it is not an Ed25519 PEM key."""
    path = signing_key_path(keys, zone)
    if not path.parent.exists():
        raise KeyNotFound(f"{path}: no audit signing key for zone {zone}")
    _check_folder(path.parent)
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
    except FileNotFoundError:
        raise KeyNotFound(f"{path}: no audit signing key for zone {zone}") from None
    except OSError as exc:
        raise KeyProviderUnavailable(f"{path}: cannot open signing key ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
        if mode & 0o077:
            raise KeyFileError(
                str(path),
                f"signing key file has mode {mode:04o}, wider than 0600; "
                f"fix with `chmod 600 {path}`",
                mode,
            )
        raw = f.read()
    try:
        key = load_pem_private_key(raw, password=None)
    except (ValueError, TypeError):
        key = None  # say nothing about the content: it may be key material
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyFileError(str(path), "signing key file is not an Ed25519 private key (PEM)")
    return key


def load_or_init_signing_key(keys: str | Path, zone: str) -> Ed25519PrivateKey:
    """The zone's signing key, created on first use."""
    try:
        return load_signing_key(keys, zone)
    except KeyNotFound:
        return init_signing_key(keys, zone)


def public_pem(key: Ed25519PrivateKey | Ed25519PublicKey) -> bytes:
    """The public key as SubjectPublicKeyInfo PEM: what auditors are given."""
    public = key.public_key() if isinstance(key, Ed25519PrivateKey) else key
    return public.public_bytes(Encoding.PEM, PublicFormat.SubjectPublicKeyInfo)


def public_key_path(keys: str | Path, zone: str) -> Path:
    """``<keys>/audit/<zone>.ed25519.pub``."""
    _check_zone(zone)
    return Path(keys) / "audit" / f"{zone}{PUBLIC_SUFFIX}"


def load_public_key(path: str | Path) -> Ed25519PublicKey:
    """The Ed25519 public key in the PEM file *path*. KeyNotFound if there is no such file;
    KeyFileError if it is not an Ed25519 public key."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise KeyNotFound(f"{path}: no such public key file") from None
    except OSError as exc:
        raise KeyProviderUnavailable(f"{path}: cannot read public key ({exc.strerror})") from None
    try:
        key = load_pem_public_key(raw)
    except (ValueError, TypeError):
        key = None
    if not isinstance(key, Ed25519PublicKey):
        raise KeyFileError(str(path), "not an Ed25519 public key (SubjectPublicKeyInfo PEM)")
    return key


def zone_public_key(keys: str | Path, zone: str) -> Ed25519PublicKey:
    """The zone's public key: from ``<zone>.ed25519.pub``, else derived from the private key
    (made before public files were written). When both exist they must match (KeyFileError:
    one of them was replaced). KeyNotFound when the zone has neither."""
    public = public_key_path(keys, zone)
    private = signing_key_path(keys, zone)
    if not private.exists():
        if not public.exists():
            raise KeyNotFound(f"{public.parent}: no audit key for zone {zone} (neither "
                              f"{public.name} nor {private.name})")
        return load_public_key(public)
    derived = load_signing_key(keys, zone).public_key()
    if public.exists() and public_pem(load_public_key(public)) != public_pem(derived):
        raise KeyFileError(str(public), f"does not match the private key {private.name}")
    return derived
