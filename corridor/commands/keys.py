"""`corridor keys ...`: manage zones' key-encryption keys."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import click

from corridor.commands.options import config_option
from corridor.keys.local import LocalKekProvider


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
    help="Keyring folder (default: the zone's `keys.path` in the corridor file, else "
    "$CORRIDOR_KEYS_DIR or .keys/ at the repo root).",
)
@config_option
def init(zone: str, folder: Path | None, config_path: str) -> None:
    """Create a zone's KEK as a 0600 file. Never overwrites an existing one.

    The processor and `corridor tail --keys` look for it where the zone's
    `keys:` entry in the corridor file says, so that is the default here too.
    """
    if folder is None and Path(config_path).exists():
        from corridor.core.config import load_config

        zone_cfg = load_config(Path(config_path)).zones.get(zone)
        if zone_cfg is not None and zone_cfg.keys.provider == "local":
            folder = zone_cfg.keys.path
    ring = LocalKekProvider(folder)
    kek = ring.init(zone)
    click.echo(f"created KEK {kek.key_id} for zone {zone} in {ring.path(zone)} (mode 0600)")


def _corridor_endpoint(config_path: str, name: str) -> tuple[Any, Any, Any]:
    """(config, destination endpoint, admin principal) of corridor ``name``."""
    from corridor.core.config import load_config
    from corridor.processor.resolve import admin, zone_endpoint

    config = load_config(Path(config_path))
    if name not in config.corridors:
        raise click.BadParameter(f"unknown corridor {name!r}; known: {', '.join(config.corridors)}",
                                 param_hint="--corridor")
    corridor = config.corridors[name]
    return config, zone_endpoint(config, corridor.destination), admin()


@keys.command("rotate")
@click.option("--corridor", "name", required=True, help="Corridor whose data key to rotate.")
@config_option
@click.option("--wait", "wait_s", default=30.0, show_default=True,
              help="Seconds to wait for the new key to be published (0: do not wait).")
def rotate(name: str, config_path: str, wait_s: float) -> None:
    """Start a new data key epoch on the corridor's running processors, without a restart.

    The request goes through the destination cluster's `_corridor.control`
    topic, so it reaches every running instance, wherever it runs. Each one
    draws a key of an epoch above every epoch published so far, wraps it for
    the destination zone, and publishes it to `_corridor.keys` with its next
    batch, before the first record it encrypts.
    """
    from corridor.core.crypto.rotation import ROTATE, ControlCommand, latest_epoch
    from corridor.kafka.keys_topic import new_request_id, published_keys, send_command

    _, endpoint, admin = _corridor_endpoint(config_path, name)
    known = published_keys(endpoint, admin)
    before = {k.key_id for k in known if k.corridor == name}
    epoch = latest_epoch(known, name) + 1
    command = ControlCommand(ROTATE, name, new_request_id(), epoch)
    send_command(endpoint, admin, command)
    click.echo(f"rotation of {name} requested (request {command.request_id}, epoch >= {epoch})")
    deadline = time.monotonic() + wait_s
    while wait_s > 0:
        new = [k for k in published_keys(endpoint, admin)
               if k.corridor == name and k.key_id not in before and k.epoch >= epoch]
        if new:
            for k in sorted(new, key=lambda k: k.epoch):
                click.echo(f"published {k.key_id} (epoch {k.epoch})")
            return
        if time.monotonic() > deadline:
            click.echo(f"no new key published within {wait_s:.0f}s: a processor publishes it "
                       "with its next batch (is one running, and is data arriving?)")
            return
        time.sleep(1.0)  # polling the keys topic; the deadline bounds it


@keys.command("retire")
@click.option("--corridor", "name", required=True, help="Corridor whose old data keys to retire.")
@click.option("--before-epoch", type=click.IntRange(1), required=True,
              help="Retire the data keys of epochs below this one.")
@click.option("--grace", "grace", default="1h", show_default=True,
              help="Keep a key until its successor is this old (e.g. 0, 90s, 30m, 1h, 7d).")
@config_option
@click.option("--count/--no-count", default=True, show_default=True,
              help="Count the corridor's messages encrypted under each retired key.")
@click.option("--dry-run", is_flag=True, help="Say what would be retired; change nothing.")
def retire(name: str, before_epoch: int, grace: str, config_path: str, count: bool,
           dry_run: bool) -> None:
    """Retire old data keys: tombstone them in `_corridor.keys`.

    Consumers can no longer decrypt what was encrypted under a retired key
    (they raise KeyNotFound); this command lists those key ids and how many
    messages of the corridor's topics use them. The newest key is never
    retired, nor a key whose successor is younger than --grace. Running
    processors still on a retired epoch move to a new one first.
    """
    from corridor.core.crypto.rotation import RETIRE, ControlCommand, plan_retirement
    from corridor.kafka.keys_topic import (
        new_request_id,
        published_keys,
        retire_keys,
        send_command,
    )

    config, endpoint, admin = _corridor_endpoint(config_path, name)
    plan = plan_retirement(published_keys(endpoint, admin), name, before_epoch,
                           parse_duration(grace), time.time())
    for k in plan.in_grace:
        click.echo(f"kept {k.key_id} (epoch {k.epoch}): its successor is younger than {grace}")
    if not plan.retire:
        click.echo(f"nothing to retire for {name} below epoch {before_epoch}")
        return
    uses = _uses(config, name, endpoint, admin) if count else {}
    if not dry_run:
        send_command(endpoint, admin, ControlCommand(RETIRE, name, new_request_id(), before_epoch))
        retire_keys(endpoint, admin, [k.key_id for k in plan.retire])
    verb = "would retire" if dry_run else "retired"
    for k in plan.retire:
        used = f", used by {uses.get(k.key_id, 0)} messages" if count else ""
        click.echo(f"{verb} {k.key_id} (epoch {k.epoch}){used}: no longer decryptable")


def _uses(config: Any, name: str, endpoint: Any, admin: Any) -> dict[str, int]:
    """Messages per `corridor-key` header in the corridor's topics."""
    from corridor.core import topics, wire
    from corridor.kafka.io import read_to_end

    corridor = config.corridors[name]
    counts: dict[str, int] = {}
    for dataset in corridor.datasets:
        topic = topics.corridor_topic(corridor.origin, corridor.destination, dataset)
        for rec in read_to_end(endpoint, admin, topic):
            key_id = rec.header(wire.KEY_ID)
            if key_id is not None:
                counts[key_id] = counts.get(key_id, 0) + 1
    return counts


_UNITS = {"": 1.0, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def parse_duration(text: str) -> float:
    """Seconds in ``0``, ``90``, ``90s``, ``30m``, ``1h``, ``7d``."""
    value = text.strip().lower()
    unit = value[-1:] if value[-1:].isalpha() else ""
    try:
        number = float(value[: len(value) - len(unit)])
        factor = _UNITS[unit]
    except (ValueError, KeyError):
        raise click.BadParameter(f"{text!r} is not a duration like 90s, 30m, 1h, 7d",
                                 param_hint="--grace") from None
    if number < 0:
        raise click.BadParameter("a duration cannot be negative", param_hint="--grace")
    return number * factor
