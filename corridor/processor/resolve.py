"""The one resolver: the corridor file plus the environment -> where every zone is, who we
are there, and where its keys live. Every command, the processor and the SDK use it.

- Endpoints: the file's ``bootstrap`` per zone; with ``CORRIDOR_ZONES=external`` the
  addresses in ``CORRIDOR_BOOTSTRAP`` instead (``zone=host:port,...``), for every zone of
  the file (a zone missing there is an error, never a silent fallback to the file).
- Credentials: the file named by ``CORRIDOR_CREDENTIALS``, else the local zones'
  ``.zones/credentials.json`` (made at first start, 0600).
- Key providers, pseudonym secrets, the subject secret and the audit signing key: the
  zone's ``keys:`` entry (Vault token from the environment variable it names, never the
  file); the signing key and the secrets are 0600 files in the zone's keys folder
  (``.keys`` beside the corridor file for a Vault zone).
- Schema registries: the zone's ``schema_registry:`` entry (user and password from the
  environment variables it names, never the file).
- Who a reading command acts as in a zone (``acting_principal``), and the public keys
  that may sign a zone's audit checkpoints (``audit_public_keys``).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from corridor.core.acl import AUDITOR, auditor_principal
from corridor.core.audit import signer_id
from corridor.core.config import Config, KeysConfig
from corridor.core.crypto import SecretBytes
from corridor.core.errors import ConfigError, CryptoError
from corridor.core.subjects import subject_secret_name
from corridor.kafka.clients import Endpoint
from corridor.keys.local import LocalKekProvider
from corridor.keys.signing import load_or_init_signing_key, load_public_key, zone_public_key
from corridor.registry import SchemaRegistry, connect
from corridor.zones import local
from corridor.zones.credentials import Credentials, Principal, load_or_create_credentials

SECRET_BYTES = 32


def endpoints_for(config: Config, zones: Iterable[str] | None = None) -> dict[str, Endpoint]:
    """Endpoints of ``zones`` (default: every zone of the file), by zone name: the file's
    bootstraps, or ``CORRIDOR_BOOTSTRAP``'s under ``CORRIDOR_ZONES=external``. A zone the
    file does not declare is a ConfigError."""
    names = list(config.zones) if zones is None else list(zones)
    for name in names:
        if name not in config.zones:
            raise ConfigError(str(config.path), None, f"zones.{name}", "no such zone")
    if local.backend() == "external":
        return local.endpoints(names)
    return {name: Endpoint(name, config.zones[name].bootstrap) for name in names}


def zone_endpoint(config: Config, zone: str) -> Endpoint:
    """The endpoint of one zone (see ``endpoints_for``)."""
    return endpoints_for(config, [zone])[zone]


def credentials() -> Credentials:
    """The principals' credentials: ``CORRIDOR_CREDENTIALS``, else the local zones' file."""
    path = os.environ.get("CORRIDOR_CREDENTIALS")
    if path:
        return load_or_create_credentials(Path(path))
    return local.launcher().credentials()


def admin() -> Principal:
    """The admin principal of the zones (provisioning, tests, tools)."""
    return credentials().admin


def acting_principal(zone: str, who: str | None) -> Principal:
    """Who a reading command acts as in ``zone``: ``who`` ``"admin"``: the admin;
    ``"auditor"``: the zone's ``auditor-<zone>``; another name: that principal; None: the
    zone's auditor when the credentials file has it (`corridor provision --acls`), else the
    admin. ConfigError when a principal asked for by name is not in the file."""
    creds = credentials()
    if who == "admin":
        return creds.admin
    if who is None:
        return creds.principals.get(auditor_principal(zone), creds.admin)
    return creds.get(auditor_principal(zone) if who == AUDITOR else who)


def audit_public_keys(config: Config, zone: str,
                      files: Iterable[Path] = ()) -> dict[str, Ed25519PublicKey]:
    """The keys that may sign ``zone``'s audit checkpoints, by signer id: the PEM files
    given (an auditor's copies), else the zone's own key in its keys folder (its
    ``.pub`` file, or derived from the private key). KeyNotFound when there is none."""
    keys = [load_public_key(f) for f in files] or [
        zone_public_key(_keys_dir(config, config.zones[zone].keys), zone)]
    return {signer_id(k): k for k in keys}


def kek_provider(config: Config, zone: str) -> Any:
    """The KekProvider of ``zone`` as its corridor-file entry says."""
    keys: KeysConfig = config.zones[zone].keys
    if keys.provider == "vault":
        from corridor.keys.vault import VaultTransit

        token = os.environ.get(keys.token_env)
        if not token:
            raise CryptoError(f"zone {zone}: environment variable {keys.token_env} "
                              "(the Vault token) is not set")
        name = keys.transit_key or f"corridor-{zone}"
        return VaultTransit(keys.addr or "", token, mount=keys.mount, key_name=lambda _z: name)
    return LocalKekProvider(_keys_dir(config, keys))


def schema_registry(config: Config, zone: str) -> SchemaRegistry | None:
    """The schema registry of ``zone`` as its ``schema_registry:`` entry says (None: the zone
    has none). Raises ConfigError when a credential variable it names is not set."""
    entry = config.zones[zone].schema_registry
    if entry is None:
        return None
    user = password = None
    if entry.user_env is not None and entry.password_env is not None:
        user, password = os.environ.get(entry.user_env), os.environ.get(entry.password_env)
        missing = [n for n, v in ((entry.user_env, user), (entry.password_env, password))
                   if not v]
        if missing:
            raise ConfigError(str(config.path), None, f"zones.{zone}.schema_registry",
                              f"environment variable {missing[0]} (the registry's "
                              "credentials) is not set")
    return connect(entry.url, user, password)


def audit_signing_key(config: Config, zone: str) -> Ed25519PrivateKey:
    """The Ed25519 key that signs ``zone``'s audit checkpoints, made on first use
    (``<keys>/audit/<zone>.ed25519``, 0600: ``corridor.keys.signing``)."""
    return load_or_init_signing_key(_keys_dir(config, config.zones[zone].keys), zone)


def _keys_dir(config: Config, keys: KeysConfig) -> Path:
    if keys.path is None:
        return Path(config.path).parent / ".keys"
    return keys.path if keys.path.is_absolute() else Path(config.path).parent / keys.path


def pseudonym_secret(config: Config, corridor_name: str) -> SecretBytes:
    """The corridor's HMAC secret: a 0600 file beside the origin zone's keys, made once."""
    corridor = config.corridors[corridor_name]
    return _secret_file(config, corridor.origin, corridor.pseudonym_key, "pseudonym secret")


def subject_secret(config: Config, zone: str) -> SecretBytes:
    """The origin zone's subject secret (``corridor.core.subjects``): a 0600 file beside its
    pseudonym secrets, made once, shared by every corridor out of the zone."""
    return _secret_file(config, zone, subject_secret_name(zone), "subject secret")


def _secret_file(config: Config, zone: str, name: str, what: str) -> SecretBytes:
    folder = _keys_dir(config, config.zones[zone].keys) / "pseudonym"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / f"{name}.secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
    except FileExistsError:
        pass
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise CryptoError(f"{path}: {what} has mode {mode:04o}; chmod 600 it")
    return SecretBytes(path.read_bytes())
