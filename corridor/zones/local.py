"""Which zones a process talks to: the local launcher, external clusters, or Docker.

``CORRIDOR_ZONES`` selects the backend: ``local`` (default: Java processes
from ``.kafka/libs``), ``external`` (clusters already running; bootstraps from
``CORRIDOR_BOOTSTRAP="hk=host:port,eu=host:port"`` and the admin's credentials
from the credentials file named by ``CORRIDOR_CREDENTIALS``), or ``docker``
(testcontainers, where a Docker engine exists; not available yet: it says so).

``CORRIDOR_TLS=1`` makes the local zones serve SASL_SSL only (certificates
from the launcher's CA in ``.zones/tls/``) and every client use it.

Each local zone also runs a schema registry (``registries()``; corridor.zones.registry),
plain HTTP on loopback whatever ``CORRIDOR_TLS`` says.
"""

from __future__ import annotations

import os
from pathlib import Path

from corridor.core.errors import ZoneError
from corridor.kafka.clients import Endpoint, answers_metadata, tls_enabled
from corridor.zones.credentials import Credentials, load_or_create_credentials
from corridor.zones.launcher import Launcher, ZoneSpec, default_specs
from corridor.zones.registry import RegistryLauncher


def home() -> Path:
    """The project folder whose ``.kafka`` and ``.zones`` we use."""
    return Path(os.environ.get("CORRIDOR_HOME", os.getcwd())).resolve()


def backend() -> str:
    value = os.environ.get("CORRIDOR_ZONES", "local")
    if value not in ("local", "external", "docker"):
        raise ZoneError("*", f"CORRIDOR_ZONES={value!r}: expected local, external or docker")
    if value == "docker":
        # Not built yet: it could not be tested on a machine without a Docker engine,
        # and an untested backend would fail in someone else's hands instead of here.
        raise ZoneError("*", "CORRIDOR_ZONES=docker is not available yet; use local (the "
                             "default: Kafka from Maven jars) or external")
    return value


def probe(spec: ZoneSpec, creds: Credentials) -> bool:
    return answers_metadata(Endpoint(spec.name, spec.bootstrap), creds.admin)


def launcher() -> Launcher:
    root = home()
    return Launcher(root / ".zones", root / ".kafka" / "libs", probe, tls=tls_enabled())


def registries() -> RegistryLauncher:
    """The launcher of the local zones' schema registries (``.kafka/registry``)."""
    root = home()
    return RegistryLauncher(root / ".zones", root / ".kafka" / "registry")


def endpoints(names: list[str] | None = None) -> dict[str, Endpoint]:
    """Endpoints of the zones this process should use, by zone name."""
    if backend() == "external":
        mapping = _bootstrap_map(os.environ.get("CORRIDOR_BOOTSTRAP", ""))
        wanted = names or list(mapping)
        missing = [n for n in wanted if n not in mapping]
        if missing:
            raise ZoneError(missing[0], "not in CORRIDOR_BOOTSTRAP")
        return {n: Endpoint(n, mapping[n]) for n in wanted}
    return {s.name: Endpoint(s.name, s.bootstrap) for s in default_specs(names)}


def credentials() -> Credentials:
    path = os.environ.get("CORRIDOR_CREDENTIALS")
    if path:
        return load_or_create_credentials(Path(path))
    return launcher().credentials()


def _bootstrap_map(text: str) -> dict[str, str]:
    result = {}
    for item in filter(None, (p.strip() for p in text.split(","))):
        name, sep, addr = item.partition("=")
        if not sep or ":" not in addr:
            raise ZoneError(name or "*", f"CORRIDOR_BOOTSTRAP entry {item!r}: expected zone=host:port")
        result[name] = addr
    return result
