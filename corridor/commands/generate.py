"""`corridor generate`: realistic, seeded park records into a zone's outbound topic."""

from __future__ import annotations

import click
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

from corridor.commands.options import config_option
from corridor.core.config import load_config
from corridor.core.errors import ConfigError
from corridor.dev.sample import generate_keys, generate_records
from corridor.sdk import ParkProducer

CHUNK = 5000


@click.command()
@click.option("--dataset", required=True, help="Dataset name, e.g. trade.shipment.")
@click.option("--zone", required=True, help="Zone whose outbound topic receives the records.")
@click.option("--count", required=True, type=click.IntRange(1), help="How many records.")
@click.option("--bad-ratio", default=0.0, show_default=True, type=click.FloatRange(0, 1),
              help="Share of bad values (garbage bytes, truncated or unknown-schema datums, "
                   "records failing the dataset's validate rules).")
@click.option("--withheld-share", default=0.1, show_default=True, type=click.FloatRange(0, 1),
              help="Share of valid records that trip the sample withhold rules.")
@click.option("--seed", default=0, show_default=True, type=int, help="Same seed, same bytes.")
@config_option
def generate(dataset: str, zone: str, count: int, bad_ratio: float, withheld_share: float,
             seed: int, config_path: str) -> None:
    """Produce COUNT seeded records of DATASET to <ZONE>.outbound.<DATASET>."""
    config = load_config(config_path)
    if dataset not in config.datasets:
        raise ConfigError(config_path, None, f"datasets.{dataset}", "no such dataset")
    producer = ParkProducer(config, zone, dataset)
    columns = (TextColumn("[bold]{task.description}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[rate]}"), TimeRemainingColumn())
    with Progress(*columns) as progress:
        task = progress.add_task(producer.topic, total=count, rate="")
        done = 0
        while done < count:
            n = min(CHUNK, count - done)
            # Chunks get their own seed so a large count needs no large list in memory.
            chunk_seed = seed * 1_000_003 + done
            values = generate_records(config.datasets[dataset], n, chunk_seed, withheld_share,
                                      bad_ratio)
            # Keyed by the person (sample.KEY_FIELDS), as parks do.
            keys = generate_keys(config.datasets[dataset], n, chunk_seed, withheld_share)
            for key, value in zip(keys, values, strict=True):
                producer.send_raw(value, key)
            done += n
            speed = progress.tasks[0].speed
            progress.update(task, advance=n, rate=f"{speed:,.0f} rec/s" if speed else "")
        producer.flush()
    click.echo(f"{count} records produced to {producer.topic} (seed {seed}, bad ratio {bad_ratio})")
