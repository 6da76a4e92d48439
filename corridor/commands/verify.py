"""`corridor verify`: check that every committed source record has exactly one outcome."""

from __future__ import annotations

import sys

import click
from rich.console import Console

from corridor.commands.options import config_option, emit_json, output_option
from corridor.commands.options import table as new_table
from corridor.core.config import load_config
from corridor.core.errors import ConfigError
from corridor.core.release import summarize
from corridor.core.verify import VerifyReport
from corridor.kafka.verify_reader import VerifyInput, read_verify_input
from corridor.processor.resolve import credentials, endpoints_for

SHOWN = 10  # lineages listed per kind of violation; the counts are always complete


@click.command()
@click.option("--corridor", "name", required=True, help="Corridor name, e.g. hk-eu.")
@config_option
@output_option
def verify(name: str, config_path: str, output: str) -> None:
    """Check the accounting invariant of corridor NAME (docs/DESIGN.md section 9).

    Every source record below the committed position must appear exactly once
    in exactly one of delivered, withheld or quarantined, or be released (held,
    then delivered once by `corridor held release`). Prints totals per outcome
    and reason, the releases, duplicates, missing records and gaps; exits 1 on
    any violation, 0 when the invariant holds. -o json prints the totals, reasons,
    releases and the first violations of each kind as one document.
    """
    config = load_config(config_path)
    if name not in config.corridors:
        raise ConfigError(config_path, None, f"corridors.{name}", "no such corridor")
    # The progress spinner goes to stderr, so that stdout holds only the result.
    console = Console(stderr=output == "json")
    with console.status("reading topics") as status:
        corridor = config.corridors[name]
        where = endpoints_for(config, [corridor.origin, corridor.destination])
        found = read_verify_input(where[corridor.origin], where[corridor.destination], corridor,
                                  credentials().admin, lambda text: status.update(text))
    report = found.check()
    if output == "json":
        emit_json(as_json(name, report, found))
    else:
        show(console, name, report, found)
    sys.exit(0 if report.ok and not found.unreadable else 1)


def as_json(name: str, report: VerifyReport, found: VerifyInput) -> dict[str, object]:
    """The report as one document with stable keys (violations: the first SHOWN of each)."""
    return {
        "corridor": name, "ok": bool(report.ok and not found.unreadable),
        "source": report.source, "delivered": report.delivered,
        "withheld": report.withheld, "quarantined": report.quarantined,
        "released": report.released,
        "released_by_previous": dict(report.released_by_previous),
        "releases": summarize(found.released),
        "pending": report.pending, "ahead": report.ahead,
        "side_rewrites": report.side_rewrites,
        "withheld_by_reason": dict(report.withheld_by_reason),
        "quarantined_by_reason": dict(report.quarantined_by_reason),
        "missing": [str(x) for x in report.missing[:SHOWN]], "missing_count": len(report.missing),
        "duplicates": [str(x) for x in report.delivered_duplicates[:SHOWN]],
        "duplicates_count": len(report.delivered_duplicates),
        "conflicts": [str(x) for x in report.conflicts[:SHOWN]],
        "conflicts_count": len(report.conflicts),
        "unknown": list(report.unknown[:SHOWN]), "unknown_count": len(report.unknown),
        "unreadable": found.unreadable[:SHOWN], "unreadable_count": len(found.unreadable),
        "gaps": [str(g) for g in report.gaps],
    }


def show(console: Console, name: str, report: VerifyReport, found: VerifyInput) -> None:
    table = new_table(f"corridor {name}: accounting", show_header=True)
    table.add_column("outcome")
    table.add_column("reason")
    table.add_column("records", justify="right")
    table.add_row("source (committed)", "", str(report.source))
    table.add_row("delivered", "", str(report.delivered))
    for outcome, reasons in (("withheld", report.withheld_by_reason),
                             ("quarantined", report.quarantined_by_reason)):
        table.add_row(outcome, "", str(getattr(report, outcome)))
        for reason, count in list(reasons.items())[:SHOWN]:
            table.add_row("", reason[:80], str(count))
        if len(reasons) > SHOWN:
            table.add_row("", f"... {len(reasons) - SHOWN} more reasons", "")
    table.add_row("released (held, then crossed)", "", str(report.released))
    for previous, count in report.released_by_previous.items():
        table.add_row("", f"was {previous}", str(count))
    table.add_row("pending (not yet committed)", "", str(report.pending))
    table.add_row("ahead of the committed position", "", str(report.ahead))
    table.add_row("withheld/quarantine rewrites", "", str(report.side_rewrites))
    table.add_row("expired from the source", "", str(report.expired))
    console.print(table)
    for r in summarize(found.released):
        console.print(f"release {r['release']}: {r['records']} records, by {r['by']}, "
                      f"reason: {r['reason']}")
    for gap in report.gaps:
        console.print(f"gap ({gap.kind}): {gap.topic}/{gap.partition} offsets "
                      f"{gap.start}..{gap.end - 1} were gone before the corridor read them")
    problems = [("missing (lost)", [str(x) for x in report.missing]),
                ("delivered twice", [str(x) for x in report.delivered_duplicates]),
                ("in two outcomes", [str(x) for x in report.conflicts]),
                ("not a source record", list(report.unknown)),
                ("unreadable corridor messages", found.unreadable)]
    for label, items in problems:
        if items:
            more = f" (+{len(items) - SHOWN} more)" if len(items) > SHOWN else ""
            console.print(f"[red]{label}: {len(items)}[/red]: {', '.join(items[:SHOWN])}{more}")
    if report.ok and not found.unreadable:
        console.print(f"[green]OK[/green]: {report.source} committed source records, each in "
                      "exactly one outcome")
    else:
        console.print(f"[red]VIOLATED[/red]: {report.violations() + len(found.unreadable)} "
                      "problems")
