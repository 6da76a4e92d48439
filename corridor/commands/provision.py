"""`corridor provision`: create every topic the corridors use, in the zone where it lives."""

from __future__ import annotations

from collections import defaultdict

import click
from rich.console import Console
from rich.table import Table

from corridor.config import load_config
from corridor.kafka import admin as kadmin
from corridor.kafka.clients import admin_client
from corridor.kafka.io import endpoint_of
from corridor.topics import TopicPlan, topic_plan
from corridor.zones import local


def provision_topics(config_path: str, partitions: int) -> dict[str, tuple[list[str], list[str]]]:
    """Create the missing topics of the file's corridors. Returns zone -> (created, existing)."""
    config = load_config(config_path)
    by_zone: dict[str, list[TopicPlan]] = defaultdict(list)
    for plan in topic_plan(config, partitions):
        by_zone[plan.zone].append(plan)
    admin_principal = local.credentials().admin
    result = {}
    for zone, plans in sorted(by_zone.items()):
        admin = admin_client(endpoint_of(config, zone), admin_principal)
        specs = [kadmin.TopicSpec(p.name, p.partitions, p.config) for p in plans]
        created, existing = kadmin.ensure_topics(admin, specs)
        result[zone] = (sorted(created), sorted(existing))
    return result


@click.command()
@click.option("--config", "config_path", default="corridors.yaml", show_default=True,
              type=click.Path(dir_okay=False), help="The corridor file.")
@click.option("--partitions", default=6, show_default=True, type=click.IntRange(1, 1000),
              help="Partitions of new data topics (audit and schema topics get 1).")
def provision(config_path: str, partitions: int) -> None:
    """Create every topic of the corridors in CONFIG, each in its zone. Idempotent.

    Existing topics are left as they are (their partition count is not changed).
    Prints, per zone, which topics were created and which already existed.
    """
    result = provision_topics(config_path, partitions)
    table = Table(title="corridor provision", show_lines=False)
    table.add_column("zone")
    table.add_column("topic")
    table.add_column("status")
    for zone, (created, existing) in result.items():
        for name in created:
            table.add_row(zone, name, "[green]created[/green]")
        for name in existing:
            table.add_row(zone, name, "[dim]exists[/dim]")
    console = Console()
    console.print(table)
    made = sum(len(c) for c, _ in result.values())
    kept = sum(len(e) for _, e in result.values())
    console.print(f"{made} created, {kept} already existing, in {len(result)} zones")
