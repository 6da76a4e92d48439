"""`corridor subjects ...`: the data subjects' volume ledger, read from the clusters.

``count``: per origin zone, calendar year and class (personal, sensitive), the distinct
subjects whose data crossed, with the zone's ceiling and where the count stands (``ok``,
``warning`` from 80%, ``reached``). An origin's ledger is the union of its share in each
destination zone (``_corridor.subjects.<origin>``, written with the batches; see
``corridor.core.subjects``), read to its end at read_committed: a batch whose transaction
aborted counted no one. Exit status: 0; 2 when the file is invalid or a cluster does not
answer.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import click

from corridor.commands.options import config_option, emit_json, output_option
from corridor.commands.options import table as new_table
from corridor.core import topics
from corridor.core.config import Config, Thresholds
from corridor.core.subjects import LedgerEntry, LedgerState, level


@click.group("subjects")
def subjects() -> None:
    """Data subjects: the yearly ledger of distinct subjects per origin zone."""


def fold_ledger(keys: Iterable[bytes | None]) -> tuple[LedgerState, int]:
    """The ledger folded from its records' keys, and how many records were not ledger
    entries (ignored)."""
    entries, ignored = [], 0
    for key in keys:
        try:
            entries.append(LedgerEntry.from_record_key(key or b""))
        except ValueError:
            ignored += 1
    return LedgerState(entries), ignored


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
                     "on_reach": limits.on_reach.value if limits is not None else None})
    return rows


def _origins(config: Config, zone: str | None) -> dict[str, set[str]]:
    """Origin zone -> its destinations, for corridors carrying a dataset with a subject."""
    out: dict[str, set[str]] = {}
    for corridor in config.corridors.values():
        if zone is not None and corridor.origin != zone:
            continue
        if any(config.datasets[d].subject is not None for d in corridor.datasets):
            out.setdefault(corridor.origin, set()).add(corridor.destination)
    return out


@subjects.command("count")
@click.option("--zone", default=None, help="Origin zone to count (default: every origin).")
@click.option("--year", type=int, default=None, help="Calendar year (UTC; default: every year).")
@config_option
@output_option
def count(zone: str | None, year: int | None, config_path: str, output: str) -> None:
    """Distinct data subjects whose personal or sensitive data crossed, per origin zone and
    year, against the zone's thresholds."""
    from corridor.core.config import load_config
    from corridor.kafka.io import read_to_end
    from corridor.processor.resolve import admin, endpoints_for

    config = load_config(Path(config_path))
    if zone is not None and zone not in config.zones:
        raise click.BadParameter(f"unknown zone {zone!r}; known: {', '.join(config.zones)}",
                                 param_hint="--zone")
    origins = _origins(config, zone)
    where = endpoints_for(config, {d for ds in origins.values() for d in ds})
    keys: list[bytes | None] = []
    for origin, destinations in sorted(origins.items()):
        for destination in sorted(destinations):
            keys.extend(r.key for r in read_to_end(where[destination], admin(),
                                                   topics.subject_ledger(origin)))
    state, ignored = fold_ledger(keys)
    rows = count_rows(state, {z: c.thresholds for z, c in config.zones.items()}, zone, year)
    if output == "json":
        emit_json({"ledger": rows, "ignored_records": ignored})
        return
    shown = new_table("data subjects per origin zone and year")
    for column in ("zone", "year", "class", "subjects", "ceiling", "level"):
        shown.add_column(column)
    for row in rows:
        shown.add_row(*("-" if row[c] is None else str(row[c])
                        for c in ("zone", "year", "class", "subjects", "ceiling", "level")))
    from rich.console import Console

    Console().print(shown)
