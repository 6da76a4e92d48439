"""The corridor file loader: top level and zones. Datasets and corridors have their own modules.

Each section builder returns only the entries that are valid, plus the names
declared (valid or not), so a reference to a declared-but-broken zone or
dataset is not reported a second time as "unknown".
"""

from __future__ import annotations

import re
from pathlib import Path
from types import MappingProxyType
from urllib.parse import urlsplit

from corridor.core.config.audit import build_audit
from corridor.core.config.corridors import build_corridors
from corridor.core.config.datasets import build_datasets
from corridor.core.config.document import (
    MapView,
    Problems,
    as_map,
    describe,
    load_document,
    text_value,
)
from corridor.core.config.instruments import build_instruments
from corridor.core.config.model import Config, KeysConfig, SchemaRegistryConfig, Zone
from corridor.core.config.subjects import build_thresholds

TOP_KEYS = ("zones", "datasets", "corridors")
OPTIONAL_TOP_KEYS = ("instruments", "audit")
ZONE_KEYS = ("bootstrap", "jurisdiction", "keys", "schema_registry", "thresholds", "description")
REGISTRY_KEYS = ("url", "user_env", "password_env")
LOCAL_KEYS = ("provider", "path")
VAULT_KEYS = ("provider", "addr", "mount", "transit_key", "token_env")

# A zone name is part of topic names (`hk.outbound.x`, `corridor.hk-eu.x`): no dots or dashes.
ZONE_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
JURISDICTION = re.compile(r"^[A-Z]{2}(-[A-Z0-9]{1,3})?$")
HOST = re.compile(r"^(\[[0-9A-Fa-f:.]+\]|[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?)$")
ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def load(path: Path) -> Config:
    """See corridor.core.config.load_config."""
    top, problems = load_document(path)
    if top is None:
        problems.raise_if_any()
        raise AssertionError("load_document returned no document and no problem")
    top.check_keys(TOP_KEYS + OPTIONAL_TOP_KEYS, problems)
    sections: dict[str, MapView | None] = {}
    for key in TOP_KEYS + OPTIONAL_TOP_KEYS:
        if key not in top.data and key in OPTIONAL_TOP_KEYS:
            sections[key] = None
        elif key not in top.data:
            problems.add(None, key, f"missing top-level key '{key}'")
            sections[key] = None
        else:
            sections[key] = as_map(
                top.data[key],
                key,
                top.key_line(key),
                "audit settings {retention, checkpoint_every_events, "
                "checkpoint_every_seconds}" if key == "audit"
                else f"a mapping of {key[:-1]} names to settings",
                problems,
            )
    zones_view = sections["zones"]
    zones = build_zones(zones_view, path.parent, problems)
    zone_names = set(map(str, zones_view.data)) if zones_view is not None else set()
    datasets, dataset_names = build_datasets(sections["datasets"], path.parent, problems)
    instruments_view = sections["instruments"]
    instruments = build_instruments(instruments_view, problems)
    # A file without the section is not asked for instruments (see config.instruments).
    declared = set(map(str, instruments_view.data)) if instruments_view is not None else (
        None if "instruments" not in top.data else set())
    corridors = build_corridors(
        sections["corridors"], zones, zone_names, datasets, dataset_names, problems,
        instruments, declared,
    )
    audit = build_audit(sections["audit"], problems)
    problems.raise_if_any()
    return Config(
        path, MappingProxyType(zones), MappingProxyType(datasets), MappingProxyType(corridors),
        MappingProxyType(instruments), audit,
    )


def build_zones(section: MapView | None, base: Path, problems: Problems) -> dict[str, Zone]:
    """Valid zones by name; invalid ones are reported and left out."""
    zones: dict[str, Zone] = {}
    if section is None:
        return zones
    for name in section.data:
        key = str(name)
        if not ZONE_NAME.match(key):
            problems.add(
                section.key_line(name),
                section.child(key),
                f"bad zone name '{key}' (expected lowercase letters, digits, '_')",
            )
        view = as_map(
            section.data[name],
            section.child(key),
            section.key_line(name),
            "zone settings {bootstrap, jurisdiction}",
            problems,
        )
        zone = _build_zone(key, view, base, problems) if view is not None else None
        if zone is not None and ZONE_NAME.match(key):
            zones[key] = zone
    return zones


def _build_zone(name: str, view: MapView, base: Path, problems: Problems) -> Zone | None:
    before = len(problems.errors)
    view.check_keys(ZONE_KEYS, problems)
    bootstrap = text_value(view, "bootstrap", problems, "host:port[,host:port...]")
    if bootstrap is not None and not _bootstrap_ok(bootstrap):
        problems.add(
            view.value_line("bootstrap"),
            view.child("bootstrap"),
            f"bad bootstrap '{bootstrap}' (expected host:port[,host:port...], port 1-65535)",
        )
    jurisdiction = text_value(
        view, "jurisdiction", problems, "a jurisdiction code such as HK, EU, SG"
    )
    if jurisdiction is not None and not JURISDICTION.match(jurisdiction):
        problems.add(
            view.value_line("jurisdiction"),
            view.child("jurisdiction"),
            f"bad jurisdiction '{jurisdiction}' (expected a code such as HK, EU, SG, CN-GD)",
        )
    keys = _build_keys(name, view, base, problems)
    registry = _build_registry(view, problems) if "schema_registry" in view.data else None
    thresholds = build_thresholds(view, problems)
    if len(problems.errors) > before or bootstrap is None or jurisdiction is None or keys is None:
        return None
    return Zone(name, bootstrap, jurisdiction, keys, registry, thresholds)


def _bootstrap_ok(text: str) -> bool:
    for server in text.split(","):
        host, sep, port = server.strip().rpartition(":")
        if not sep or not HOST.match(host) or not port.isdigit() or not 0 < int(port) < 65536:
            return False
    return True


def _build_keys(zone: str, view: MapView, base: Path, problems: Problems) -> KeysConfig | None:
    """The zone's key provider; default: a local keyring under .corridor/keys/<zone>."""
    if "keys" not in view.data:
        return KeysConfig("local", path=base / ".corridor" / "keys" / zone)
    keys = as_map(
        view.data["keys"],
        view.child("keys"),
        view.key_line("keys"),
        "key provider settings {provider: local|vault, ...}",
        problems,
    )
    if keys is None:
        return None
    provider = keys.data.get("provider", "local")
    if provider == "local":
        keys.check_keys(LOCAL_KEYS, problems)
        where = keys.data.get("path", f".corridor/keys/{zone}")
        if not isinstance(where, str) or not where.strip():
            problems.add(
                keys.value_line("path"),
                keys.child("path"),
                f"expected a directory path, got {describe(where)}",
            )
            return None
        return KeysConfig("local", path=base / where)
    if provider == "vault":
        return _build_vault(zone, keys, problems)
    problems.add(
        keys.value_line("provider"),
        keys.child("provider"),
        f"unknown key provider {describe(provider)} (expected local or vault)",
    )
    return None


def _build_vault(zone: str, keys: MapView, problems: Problems) -> KeysConfig | None:
    keys.check_keys(VAULT_KEYS, problems)
    addr = text_value(keys, "addr", problems, "the Vault/OpenBao address, http(s)://host:port")
    if addr is not None and not re.match(r"^https?://[^\s/]+", addr):
        problems.add(
            keys.value_line("addr"),
            keys.child("addr"),
            f"bad Vault address '{addr}' (expected http(s)://host:port)",
        )
        return None
    options: dict[str, str | None] = {}
    for key in ("mount", "transit_key", "token_env"):
        if key in keys.data:
            options[key] = text_value(keys, key, problems, "a non-empty name")
    if addr is None or None in options.values():
        return None
    return KeysConfig(
        "vault",
        addr=addr,
        mount=options.get("mount") or "transit",
        transit_key=options.get("transit_key") or f"corridor-{zone}",
        token_env=options.get("token_env") or "VAULT_TOKEN",
    )


def _build_registry(view: MapView, problems: Problems) -> SchemaRegistryConfig | None:
    """``schema_registry: {url, user_env?, password_env?}``; the secrets stay in the environment."""
    reg = as_map(view.data["schema_registry"], view.child("schema_registry"),
                 view.key_line("schema_registry"),
                 "schema registry settings {url, user_env, password_env}", problems)
    if reg is None:
        return None
    before = len(problems.errors)
    reg.check_keys(REGISTRY_KEYS, problems)
    url = text_value(reg, "url", problems, "the registry's API URL, http(s)://host:port/path")
    problem = _registry_url_problem(url) if url is not None else None
    if problem is not None:
        shown = re.sub(r"//[^/@]*@", "//***@", str(url))  # never echo a password
        problems.add(reg.value_line("url"), reg.child("url"), f"bad registry URL '{shown}': {problem}")
    names: dict[str, str | None] = {}
    for key in ("user_env", "password_env"):
        if key not in reg.data:
            names[key] = None
            continue
        names[key] = text_value(reg, key, problems, "the name of an environment variable")
        if names[key] is not None and not ENV_NAME.match(str(names[key])):
            problems.add(reg.value_line(key), reg.child(key),
                         f"bad environment variable name '{names[key]}' (letters, digits, '_')")
    if ("user_env" in reg.data) != ("password_env" in reg.data):
        given = "user_env" if "user_env" in reg.data else "password_env"
        problems.add(reg.key_line(given), reg.child(given),
                     "basic auth needs both user_env and password_env (or neither)")
    if len(problems.errors) > before or url is None:
        return None
    return SchemaRegistryConfig(url.rstrip("/"), names["user_env"], names["password_env"])


def _registry_url_problem(url: str) -> str | None:
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        return str(exc)
    if parts.scheme not in ("http", "https"):
        return "expected http:// or https://"
    if parts.username is not None or parts.password is not None:
        return "credentials do not belong in the file: name their variables in user_env/password_env"
    if not parts.hostname or not HOST.match(parts.hostname if ":" not in parts.hostname
                                            else f"[{parts.hostname}]"):
        return "no host"
    if port == 0:
        return "port 0"
    if parts.query or parts.fragment:
        return "no query or fragment: the URL is the API's base"
    return None


def load_config(path: str | Path) -> Config:
    """Load and validate the corridor file at *path*.

    Schema paths are relative to the file's directory. Raises ConfigErrors with
    every problem found (never a partial Config).
    """
    return load(Path(path))
