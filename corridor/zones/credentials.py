"""Local principals' credentials, kept in one 0600 JSON file.

The file never reaches git (it lives in the ignored state folder) and a
``Secret`` never prints its value: ``repr`` and ``str`` are redacted.
"""

from __future__ import annotations

import json
import os
import secrets
import stat
from dataclasses import dataclass, field
from pathlib import Path

from corridor.core.errors import ConfigError


class Secret(str):
    """A string that redacts itself when printed or logged."""

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return "***"

    def reveal(self) -> str:
        return str.__str__(self)


@dataclass(frozen=True, slots=True)
class Principal:
    username: str
    password: Secret = field(repr=False)

    @property
    def secret(self) -> str:
        return self.password.reveal()


@dataclass(frozen=True, slots=True)
class Credentials:
    """All local principals; ``admin`` is the super user created at format time."""

    path: Path
    principals: dict[str, Principal]

    @property
    def admin(self) -> Principal:
        return self.principals["admin"]

    def get(self, name: str) -> Principal:
        try:
            return self.principals[name]
        except KeyError:
            raise ConfigError(str(self.path), None, name, "no such principal") from None

    def add(self, name: str) -> Principal:
        """Create (or return) a principal with a fresh random password, saved 0600."""
        if name in self.principals:
            return self.principals[name]
        principal = Principal(name, Secret(secrets.token_urlsafe(18)))
        self.principals[name] = principal
        _write(self.path, self.principals)
        return principal


def load_or_create_credentials(path: Path) -> Credentials:
    """Read the credentials file, creating it (with an admin) when absent."""
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        principals = {"admin": Principal("admin", Secret(secrets.token_urlsafe(18)))}
        _write(path, principals)
        return Credentials(path, principals)
    mode = stat.S_IMODE(path.stat().st_mode)
    if mode & 0o077:
        raise ConfigError(str(path), None, "mode",
                          f"credentials file is {oct(mode)}; it must be 0600 (chmod 600 {path})")
    try:
        raw = json.loads(path.read_text())
        principals = {n: Principal(n, Secret(v["password"])) for n, v in raw.items()}
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise ConfigError(str(path), None, "credentials",
                          f"not a valid credentials file ({type(exc).__name__})") from None
    if "admin" not in principals:
        raise ConfigError(str(path), None, "admin", "the admin principal is missing")
    return Credentials(path, principals)


def _write(path: Path, principals: dict[str, Principal]) -> None:
    data = json.dumps({n: {"password": p.secret} for n, p in principals.items()}, indent=2)
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        fh.write(data)
    os.replace(tmp, path)
