"""`corridor tail`: print decoded corridor records with their residency tags."""

from __future__ import annotations

import base64
import json
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import click

from corridor.commands.options import config_option
from corridor.core.config import load_config
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.sdk import CorridorConsumer, CorridorRecord


def _plain(value: Any) -> Any:
    if isinstance(value, bytes):
        return "base64:" + base64.b64encode(value).decode()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, Decimal):
        return str(value)
    return str(value)


def _key_text(key: bytes | None) -> str | None:
    """A key as text when it is UTF-8 (a pseudonym is), else ``base64:...``."""
    if key is None:
        return None
    try:
        return key.decode("utf-8")
    except UnicodeDecodeError:
        return "base64:" + base64.b64encode(key).decode()


def render(record: CorridorRecord) -> str:
    """One JSON line: lineage, key and its treatment, source timestamp, residency tags,
    value (bytes as ``base64:...``)."""
    return json.dumps({"lineage": record.lineage, "key": _key_text(record.key),
                       "key_treatment": record.key_treatment, "timestamp_ms": record.timestamp_ms,
                       "tags": record.headers, "value": record.value},
                      default=_plain, ensure_ascii=False)


@click.command()
@click.argument("topic")
@click.option("--zone", required=True, help="Zone (cluster) the topic is in: the destination.")
@click.option("--max", "max_records", default=None, type=click.IntRange(1),
              help="Stop after this many records (default: follow).")
@click.option("--idle", default=None, type=float,
              help="Stop once nothing arrived for this many seconds.")
@click.option("--keys", "keys_dir", default=None, type=click.Path(file_okay=False),
              help="Keyring folder holding the zone's KEK: decrypt encrypted fields.")
@config_option
def tail(topic: str, zone: str, max_records: int | None, idle: float | None,
         keys_dir: str | None, config_path: str) -> None:
    """Print the records of TOPIC, one JSON line each, from the beginning."""
    endpoint = zone_endpoint(load_config(config_path), zone)
    kek_provider = LocalKekProvider(keys_dir) if keys_dir else None
    with CorridorConsumer(endpoint, topic, kek_provider=kek_provider) as consumer:
        for record in consumer.records(max_records, idle):
            click.echo(render(record))
