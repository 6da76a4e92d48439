"""`corridor keys ...`: manage zones' key-encryption keys."""

from __future__ import annotations

from pathlib import Path

import click

from corridor.keys.local import LocalKeyring


@click.group("keys")
def keys() -> None:
    """Key-encryption keys of zones (local keyring for development)."""


@keys.command("init")
@click.option("--zone", required=True, help="Zone whose KEK to create (e.g. eu).")
@click.option(
    "--dir",
    "folder",
    type=click.Path(path_type=Path),
    default=None,
    help="Keyring folder (default: $CORRIDOR_KEYS_DIR or .keys/ at the repo root).",
)
def init(zone: str, folder: Path | None) -> None:
    """Create a zone's KEK as a 0600 file. Never overwrites an existing one."""
    ring = LocalKeyring(folder)
    kek = ring.init(zone)
    click.echo(f"created KEK {kek.key_id} for zone {zone} in {ring.path(zone)} (mode 0600)")
