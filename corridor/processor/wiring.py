"""Wiring for `corridor run`: endpoints, principals, keys and secrets -> running corridors."""

from __future__ import annotations

import os
import secrets
import threading
import time
from pathlib import Path
from typing import Any

from corridor.core.acl import corridor_principal
from corridor.core.config import Config, KeysConfig, KeyTreatment, Transform
from corridor.core.config.rotation import RotationSchedule, rotation_for
from corridor.core.crypto import DataKeyRing, SecretBytes
from corridor.core.crypto.rotation import latest_epoch
from corridor.core.errors import CorridorError, CryptoError, KafkaUnavailable
from corridor.core.plan import build_plan
from corridor.kafka.clients import Endpoint
from corridor.kafka.keys_topic import published_keys
from corridor.keys.local import LocalKekProvider
from corridor.processor.runner import CorridorRunner
from corridor.zones import local
from corridor.zones.credentials import Principal

SECRET_BYTES = 32


def endpoints_for(config: Config) -> dict[str, Endpoint]:
    """Endpoints from the corridor file, unless CORRIDOR_ZONES=external overrides them."""
    if local.backend() == "external":
        return local.endpoints(list(config.zones))
    return {name: Endpoint(name, zone.bootstrap) for name, zone in config.zones.items()}


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


def _keys_dir(config: Config, keys: KeysConfig) -> Path:
    if keys.path is None:
        return Path(config.path).parent / ".keys"
    return keys.path if keys.path.is_absolute() else Path(config.path).parent / keys.path


def pseudonym_secret(config: Config, corridor_name: str) -> SecretBytes:
    """The corridor's HMAC secret: a 0600 file beside the origin zone's keys, made once."""
    corridor = config.corridors[corridor_name]
    folder = _keys_dir(config, config.zones[corridor.origin].keys) / "pseudonym"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    path = folder / f"{corridor.pseudonym_key}.secret"
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(secrets.token_bytes(SECRET_BYTES))
    except FileExistsError:
        pass
    mode = path.stat().st_mode & 0o777
    if mode & 0o077:
        raise CryptoError(f"{path}: pseudonym secret has mode {mode:04o}; chmod 600 it")
    return SecretBytes(path.read_bytes())


def encrypts(config: Config, corridor_name: str) -> bool:
    """A field or a record key of the corridor is encrypted: it needs a data key."""
    corridor = config.corridors[corridor_name]
    return any(t in (Transform.ENCRYPT, Transform.ENCRYPT_DETERMINISTIC)
               for fields in corridor.transform.values() for t in fields.values()) or any(
        corridor.key_treatment(d) is KeyTreatment.ENCRYPT_DETERMINISTIC
        for d in corridor.datasets)


def pseudonymizes(config: Config, corridor_name: str) -> bool:
    """A field or a record key (the default) of the corridor is pseudonymized."""
    corridor = config.corridors[corridor_name]
    return any(t is Transform.PSEUDONYMIZE
               for fields in corridor.transform.values() for t in fields.values()) or any(
        corridor.key_treatment(d) is KeyTreatment.PSEUDONYMIZE for d in corridor.datasets)


def make_runner(config: Config, name: str, instance: str, logger: Any,
                schedule: RotationSchedule | None = None) -> CorridorRunner:
    """One corridor's runner. Its first data key is drawn here (epoch one past the highest
    published for the corridor) and wrapped when the runner starts (see processor.keys).
    ``schedule`` (the run flags) overrides the corridor's ``rotate`` from the file."""
    corridor = config.corridors[name]
    # The ring rotates only when the publisher asks (processor.keys applies the schedule).
    ring = DataKeyRing() if encrypts(config, name) else None
    provider = kek_provider(config, corridor.destination) if ring is not None else None
    endpoints = endpoints_for(config)
    principal = runner_principal(name, logger)
    if ring is not None:
        ring.rotate(name, at_least=_next_epoch(endpoints[corridor.destination], principal, name,
                                               logger))
    secret = pseudonym_secret(config, name) if pseudonymizes(config, name) else None
    plan = build_plan(config, name, ring, secret)
    return CorridorRunner(config, plan, endpoints, principal, logger, instance, data_keys=ring,
                          kek_provider=provider, rotation=rotation_for(corridor, schedule))


def _next_epoch(endpoint: Endpoint, principal: Principal, name: str, logger: Any) -> int:
    """One past the corridor's highest published epoch, so epochs count up across restarts
    and instances (``keys retire --before-epoch`` relies on it); 1 if unreadable."""
    try:
        return latest_epoch(published_keys(endpoint, principal, timeout_s=20), name) + 1
    except KafkaUnavailable as exc:
        logger.warning("key_epochs_unknown", corridor=name, error=str(exc))
        return 1


def runner_principal(name: str, logger: Any) -> Principal:
    """The corridor's own principal ``corridor-<name>`` once `corridor provision --acls` made it.

    Before that (a file never provisioned with --acls, as in most tests), the
    admin runs the corridor and a warning says so.
    """
    creds = local.credentials()
    own = creds.principals.get(corridor_principal(name))
    if own is not None:
        return own
    logger.warning("running_as_admin", corridor=name, principal=creds.admin.username,
                   reason=f"no principal {corridor_principal(name)} in {creds.path}: "
                          "run `corridor provision --acls`")
    return creds.admin


def start_runners(config: Config, names: list[str], instance: str, stop: threading.Event,
                  logger: Any, schedule: RotationSchedule | None = None,
                  ) -> tuple[list[CorridorRunner], list[threading.Thread], list[tuple[str, str]]]:
    """Build one runner per corridor (failing fast on bad keys or config), each in a thread.

    ``schedule`` rotates every corridor's data key every N records / T seconds; None: each
    corridor's ``rotate`` from the file (or no scheduled rotation)."""
    runners = [make_runner(config, name, instance, logger, schedule=schedule) for name in names]
    failures: list[tuple[str, str]] = []
    threads = []
    for runner in runners:
        def target(r: CorridorRunner = runner) -> None:
            try:
                r.run(stop)
            except CorridorError as exc:
                failures.append((r.corridor.name, str(exc)))
                logger.error("corridor_failed", corridor=r.corridor.name, error=str(exc))
                stop.set()
            except Exception as exc:
                failures.append((r.corridor.name, repr(exc)))
                logger.exception("corridor_crashed", corridor=r.corridor.name)
                stop.set()
        thread = threading.Thread(target=target, name=f"corridor-{runner.corridor.name}",
                                  daemon=True)
        thread.start()
        threads.append(thread)
    return runners, threads, failures


def caught_up(runners: list[CorridorRunner], idle_ms: int) -> bool:
    """Every runner owns partitions, has nothing left on them, and has been quiet ``idle_ms``."""
    now = time.monotonic()
    for r in runners:
        quiet_since = max(r.stats.last_delivery, r.stats.started)
        if (now - quiet_since) * 1000 < idle_ms or r.stats.lag != 0:
            return False
    return True
