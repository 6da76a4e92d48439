"""`corridor provision`: create every topic the corridors use, in the zone where it lives."""

from __future__ import annotations

from collections import defaultdict
from typing import Any

import click
from rich.console import Console

from corridor.commands.options import config_option, emit_json, output_option
from corridor.commands.options import table as new_table
from corridor.core.config import load_config
from corridor.core.topics import TopicPlan, topic_plan
from corridor.kafka import admin as kadmin
from corridor.kafka.acl_sync import AclDiff, sync_acls
from corridor.kafka.clients import admin_client
from corridor.processor.resolve import credentials, endpoints_for, zone_endpoint


def provision_topics(config_path: str, partitions: int) -> dict[str, tuple[list[str], list[str]]]:
    """Create the missing topics of the file's corridors. Returns zone -> (created, existing)."""
    config = load_config(config_path)
    by_zone: dict[str, list[TopicPlan]] = defaultdict(list)
    for plan in topic_plan(config, partitions):
        by_zone[plan.zone].append(plan)
    admin_principal = credentials().admin
    result = {}
    for zone, plans in sorted(by_zone.items()):
        admin = admin_client(zone_endpoint(config, zone), admin_principal)
        specs = [kadmin.TopicSpec(p.name, p.partitions, p.config) for p in plans]
        created, existing = kadmin.ensure_topics(admin, specs)
        result[zone] = (sorted(created), sorted(existing))
    return result


@click.command()
@config_option
@click.option("--partitions", default=6, show_default=True, type=click.IntRange(1, 1000),
              help="Partitions of new data topics (audit and schema topics get 1).")
@click.option("--acls", is_flag=True,
              help="Also create the principals (park, corridor, analytics, auditor) and their "
                   "ACLs, and revoke grants of those principals the file no longer implies.")
@output_option
def provision(config_path: str, partitions: int, acls: bool, output: str) -> None:
    """Create every topic of the corridors in CONFIG, each in its zone. Idempotent.

    Existing topics are left as they are (their partition count is not changed).
    Prints, per zone, which topics were created and which already existed.
    With --acls, prints the users and grants it added and the grants it removed
    (`corridor principals` lists the resulting rights).
    """
    result = provision_topics(config_path, partitions)
    diff = provision_acls(config_path) if acls else None
    if output == "json":
        doc: dict[str, object] = {"topics": {
            zone: {"created": created, "existing": existing}
            for zone, (created, existing) in result.items()}}
        if diff is not None:
            doc["acls"] = {
                "users_added": {c: sorted(u) for c, u in diff.users_added.items()},
                "grants_added": {c: [_grant_doc(g) for g in items]
                                 for c, items in diff.added.items()},
                "grants_removed": {c: [_grant_doc(g) for g in items]
                                   for c, items in diff.removed.items()}}
        emit_json(doc)
        return
    if diff is not None:
        _print_acl_diff(diff)
    table = new_table("corridor provision", show_lines=False)
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


def provision_acls(config_path: str) -> AclDiff:
    """Create the file's principals and grants on every cluster; returns what changed."""
    config = load_config(config_path)
    endpoints = endpoints_for(config)
    return sync_acls(config, endpoints, credentials())


def _grant_doc(g: Any) -> dict[str, object]:
    return {"principal": g.principal, "operation": g.operation, "resource": g.resource,
            "name": g.name, "prefixed": g.prefixed}


def _print_acl_diff(diff: AclDiff) -> None:
    console = Console()
    if diff.empty:
        console.print("ACLs: nothing to change (every principal and grant already in place)")
        return
    table = new_table("corridor provision --acls: changes applied")
    for column in ("cluster", "change", "principal", "right"):
        table.add_column(column)
    for cluster, users in diff.users_added.items():
        for user in users:
            table.add_row(cluster, "[green]+ user[/green]", user, "SCRAM-SHA-512")
    for label, grants in (("[green]+ grant[/green]", diff.added),
                          ("[red]- grant[/red]", diff.removed)):
        for cluster, items in grants.items():
            for g in items:
                pattern = f"{g.name}*" if g.prefixed else g.name
                table.add_row(cluster, label, g.principal, f"{g.operation} {g.resource} {pattern}")
    console.print(table)
    count = {k: sum(len(v) for v in d.values())
             for k, d in (("users", diff.users_added), ("added", diff.added),
                          ("removed", diff.removed))}
    console.print(f"ACLs: {count['users']} users added, {count['added']} grants added, "
                  f"{count['removed']} grants removed")
