"""`corridor principals`: who may do what, as the corridor file implies (no broker needed)."""

from __future__ import annotations

from collections.abc import Iterable

import click
from rich.console import Console

from corridor.commands.options import config_option, emit_json, output_option
from corridor.commands.options import table as new_table
from corridor.core import acl
from corridor.core.config import load_config


@click.command()
@config_option
@output_option
def principals(config_path: str, output: str) -> None:
    """List every principal of CONFIG and its rights, zone by zone.

    These are the grants `corridor provision --acls` creates; anything not
    listed is denied (the clusters allow nothing by default).
    """
    config = load_config(config_path)
    rights = acl.by_principal(acl.grants(config))
    if output == "json":
        emit_json({"principals": [
            {"name": p.name, "role": p.role, "serves": p.serves, "grants": [
                {"zone": g.zone, "operation": g.operation, "resource": g.resource,
                 "pattern": g.pattern} for g in rights.get(p.name, [])]}
            for p in acl.principals(config)]})
        return
    table = new_table(f"principals of {config_path}", show_lines=True)
    for column in ("principal", "role", "serves", "zone", "may"):
        table.add_column(column)
    for p in acl.principals(config):
        granted = rights.get(p.name, [])
        for zone in sorted({g.zone for g in granted}):
            may = "\n".join(_merged(g for g in granted if g.zone == zone))
            table.add_row(p.name, p.role, p.serves, zone, may)
    console = Console(width=max(140, Console().width))  # wide enough when piped
    console.print(table)
    console.print(f"{len(acl.principals(config))} principals, "
                  f"{sum(len(v) for v in rights.values())} grants")


def _merged(grants: Iterable[acl.ZoneGrant]) -> list[str]:
    """``read+describe topic x`` lines: one per resource, operations joined."""
    ops: dict[tuple[str, str], list[str]] = {}
    for g in grants:
        ops.setdefault((g.resource, g.pattern), []).append(g.operation)
    return [f"{'+'.join(sorted(o, reverse=True))} {res} {pat}" for (res, pat), o in ops.items()]
