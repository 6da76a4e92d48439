"""``LocalKekProvider``: one KEK per zone as a 0600 file in a 0700 folder (for development).

File ``<folder>/<zone>.kek`` holds the base64 of 32 random bytes and a newline.
The folder defaults to ``$CORRIDOR_KEYS_DIR`` or ``.keys/`` at the repository
root (the nearest parent of the working directory with a ``.git`` or
``pyproject.toml``). Files are created by ``os.open(..., O_EXCL, 0o600)``, so
they are never, even briefly, readable by others and never overwritten.
Loading refuses a file wider than 0600 or a folder that group or others may
read or write, and says how to fix it.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import stat
from collections.abc import Callable
from pathlib import Path

from corridor.core.crypto.datakey import (
    KEY_BYTES,
    DataKey,
    Kek,
    WrappedKey,
    unwrap_data_key,
    wrap_data_key,
)
from corridor.core.errors import CryptoError, KeyFileError, KeyNotFound, KeyProviderUnavailable

_ZONE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,62}$")


def default_keys_dir(start: Path | None = None) -> Path:
    """``$CORRIDOR_KEYS_DIR``, else ``.keys`` at the repository root, else ``./.keys``."""
    env = os.environ.get("CORRIDOR_KEYS_DIR")
    if env:
        return Path(env)
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        if (folder / ".git").exists() or (folder / "pyproject.toml").exists():
            return folder / ".keys"
    return here / ".keys"


def _check_zone(zone: str) -> None:
    if not _ZONE.match(zone):
        raise CryptoError(f"zone name {zone!r} is not usable as a key file name")


def _check_folder(folder: Path) -> None:
    try:
        mode = stat.S_IMODE(folder.stat().st_mode)
    except FileNotFoundError:
        raise KeyProviderUnavailable(
            f"{folder}: keyring folder does not exist; run `corridor keys init --zone <zone>`"
        ) from None
    if mode & 0o077:
        raise KeyFileError(
            str(folder),
            f"keyring folder has mode {mode:04o}: group/others can read or write it; "
            f"fix with `chmod 700 {folder}`",
            mode,
        )


class LocalKekProvider:
    """A KekProvider backed by KEK files. Loaded KEKs are cached for the object's life."""

    def __init__(self, folder: str | Path | None = None) -> None:
        self.folder = Path(folder) if folder is not None else default_keys_dir()
        self._keks: dict[str, Kek] = {}

    def __repr__(self) -> str:
        return f"LocalKekProvider(folder={str(self.folder)!r})"

    def path(self, zone: str) -> Path:
        _check_zone(zone)
        return self.folder / f"{zone}.kek"

    def init(self, zone: str, *, random: Callable[[int], bytes] = os.urandom) -> Kek:
        """Create the zone's KEK. Refuses an existing file and a too-open folder (KeyFileError)."""
        path = self.path(zone)
        if not self.folder.exists():
            self.folder.mkdir(mode=0o700, parents=True)
        _check_folder(self.folder)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o600)
        except FileExistsError:
            raise KeyFileError(
                str(path),
                "a KEK already exists for this zone; refusing to overwrite it "
                "(data keys wrapped under it would become unreadable)",
            ) from None
        kek = Kek.from_material(zone, random(KEY_BYTES))
        with os.fdopen(fd, "wb") as f:
            f.write(base64.b64encode(kek.material.reveal()) + b"\n")
        self._keks[zone] = kek
        return kek

    def load(self, zone: str) -> Kek:
        """The zone's KEK. KeyNotFound if there is none; KeyFileError if the file is too open."""
        cached = self._keks.get(zone)
        if cached is not None:
            return cached
        path = self.path(zone)
        _check_folder(self.folder)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW)
        except FileNotFoundError:
            raise KeyNotFound(f"{path}: no KEK for zone {zone} in this kek_provider") from None
        except OSError as exc:
            raise KeyProviderUnavailable(f"{path}: cannot open KEK file ({exc.strerror})") from None
        with os.fdopen(fd, "rb") as f:
            mode = stat.S_IMODE(os.fstat(f.fileno()).st_mode)
            if mode & 0o077:
                raise KeyFileError(
                    str(path),
                    f"KEK file has mode {mode:04o}, wider than 0600; fix with `chmod 600 {path}`",
                    mode,
                )
            kek = _parse(path, zone, f.read())
        self._keks[zone] = kek
        return kek

    def kek_id(self, zone: str) -> str:
        return self.load(zone).key_id

    def wrap(self, key: DataKey, zone: str) -> WrappedKey:
        return wrap_data_key(key, self.load(zone))

    def unwrap(self, wrapped: WrappedKey) -> DataKey:
        return unwrap_data_key(wrapped, self.load(wrapped.zone))


def _parse(path: Path, zone: str, raw: bytes) -> Kek:
    try:
        return Kek.from_material(zone, base64.b64decode(raw.strip(), validate=True))
    except (binascii.Error, CryptoError):
        # Say nothing about the content: it may be key material.
        raise KeyFileError(str(path), "KEK file is not the base64 of a 32-byte key") from None
