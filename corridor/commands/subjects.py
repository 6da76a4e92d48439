"""`corridor subjects ...`: the data subjects' volume ledger, read from the clusters.

``count``: per origin zone, calendar year and class (personal, sensitive), the distinct
subjects whose data crossed, with the zone's ceiling and where the count stands (``ok``,
``warning`` from 80%, ``reached``), and per destination zone reached. An origin's ledger
is the topic ``<origin>.subjects`` in the origin zone (written by the processors with each
batch's side output, before the batch commits; see ``corridor.core.subjects``), read to its
end at read_committed. Exit status: 0; 2 when the file is invalid or a cluster does not
answer.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click

from corridor.commands.options import config_option, emit_json, output_option
from corridor.commands.options import table as new_table
from corridor.core.config import Config, Thresholds
from corridor.core.subjects import LedgerState, level


@click.group("subjects")
def subjects() -> None:
    """Data subjects: the yearly ledger of distinct subjects per origin zone."""


def count_rows(state: LedgerState, thresholds: Mapping[str, Thresholds | None],
               zone: str | None = None, year: int | None = None) -> list[dict[str, Any]]:
    """One row per (zone, year, class) of *state*, filtered by *zone* and *year*, with the
    zone's ceiling for that class and the level (``-o json`` prints these rows)."""
    rows = []
    for (z, y, field_class), count in state.counts().items():
        if (zone is not None and z != zone) or (year is not None and y != year):
            continue
        limits = thresholds.get(z)
        ceiling = limits.ceiling(field_class) if limits is not None else None
        rows.append({"zone": z, "year": y, "class": field_class.value, "subjects": count,
                     "ceiling": ceiling,
                     "level": level(count, ceiling) if ceiling is not None else None,
                     "on_reach": limits.on_reach.value if limits is not None else None,
                     "destinations": state.by_destination(z, y, field_class)})
    return rows


def _origins(config: Config, zone: str | None) -> list[str]:
    """Origin zones of the corridors carrying a dataset with a subject (only *zone*)."""
    return sorted({c.origin for c in config.corridors.values()
                   if (zone is None or c.origin == zone)
                   and any(config.datasets[d].subject is not None for d in c.datasets)})


@subjects.command("count")
@click.option("--zone", default=None, help="Origin zone to count (default: every origin).")
@click.option("--year", type=int, default=None, help="Calendar year (UTC; default: every year).")
@config_option
@output_option
def count(zone: str | None, year: int | None, config_path: str, output: str) -> None:
    """Distinct data subjects whose personal or sensitive data crossed, per origin zone and
    year, against the zone's thresholds."""
    from corridor.core.config import load_config
    from corridor.kafka.ledger import read_ledger
    from corridor.processor.resolve import admin, endpoints_for

    config = load_config(Path(config_path))
    if zone is not None and zone not in config.zones:
        raise click.BadParameter(f"unknown zone {zone!r}; known: {', '.join(config.zones)}",
                                 param_hint="--zone")
    origins = _origins(config, zone)
    where = endpoints_for(config, origins)
    state, ignored = LedgerState(), 0
    for origin in origins:
        folded, skipped = read_ledger(where[origin], admin(), origin)
        state.apply(folded.entries())
        ignored += skipped
    rows = count_rows(state, {z: c.thresholds for z, c in config.zones.items()}, zone, year)
    if output == "json":
        emit_json({"ledger": rows, "ignored_records": ignored})
        return
    shown = new_table("data subjects per origin zone and year")
    columns = ("zone", "year", "class", "subjects", "ceiling", "level")
    for column in (*columns, "destinations"):
        shown.add_column(column)
    for row in rows:
        reached = ", ".join(f"{d}={n}" for d, n in row["destinations"].items())
        shown.add_row(*("-" if row[c] is None else str(row[c]) for c in columns), reached)
    from rich.console import Console

    Console().print(shown)
