"""`corridor zones up|down|status|reset|logs`: the local Kafka clusters."""

from __future__ import annotations

import click

from corridor.zones import local
from corridor.zones.launcher import default_specs

zone_option = click.option(
    "--zone", "zones", multiple=True, metavar="NAME",
    help="Only this zone (repeatable). Default: hk, eu and asean.",
)


@click.group()
def zones() -> None:
    """Start, stop and inspect the local zones (one KRaft cluster each).

    Each zone is a single-node Kafka cluster from Apache Kafka's own jars
    (fetched by `make install`), listening on loopback with SASL/SCRAM:
    hk 127.0.0.1:19092, eu 127.0.0.1:29092, asean 127.0.0.1:31092
    (override with CORRIDOR_PORT_<ZONE>). Data lives in .zones/.
    """


@zones.command()
@zone_option
def up(zones: tuple[str, ...]) -> None:
    """Start the zones that are not running and wait until they answer."""
    started = local.launcher().up(default_specs(zones), click.echo)
    if not started:
        click.echo("all zones already running: nothing to do")


@zones.command()
@zone_option
def down(zones: tuple[str, ...]) -> None:
    """Stop the zones this project started (SIGTERM, then SIGKILL after 30 s)."""
    local.launcher().down(default_specs(zones), click.echo)


@zones.command()
@zone_option
def status(zones: tuple[str, ...]) -> None:
    """Show which zones run, with their pids and bootstrap addresses."""
    rows = local.launcher().status(default_specs(zones))
    for row in rows:
        state = f"running (pid {row.pid})" if row.running else "stopped"
        click.echo(f"{row.name:<8} {row.bootstrap:<18} {state}")


@zones.command()
@zone_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(zones: tuple[str, ...], yes: bool) -> None:
    """Stop the zones and delete all their data and local credentials."""
    if not yes:
        click.confirm("Delete all data of these zones?", abort=True)
    local.launcher().reset(default_specs(zones), click.echo)


@zones.command()
@click.argument("zone")
@click.option("-n", "--lines", default=40, show_default=True, help="How many lines.")
def logs(zone: str, lines: int) -> None:
    """Print the last lines of a zone's broker log."""
    launcher = local.launcher()
    for line in launcher.last_log_lines(default_specs([zone])[0], lines):
        click.echo(line)
