"""`corridor zones up|down|status|reset|logs`: the local Kafka clusters and their schema registries."""

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
    (override with CORRIDOR_PORT_<ZONE>), and a schema registry (Apicurio,
    in memory, Java 21+) with the Confluent-compatible API on the zone's
    port - 11: http://127.0.0.1:19081/apis/ccompat/v7 for hk. Data lives in .zones/.
    """


registry_option = click.option(
    "--no-registry", is_flag=True,
    help="Brokers only: do not start the schema registries (which need Java 21+).",
)


@zones.command()
@zone_option
@registry_option
def up(zones: tuple[str, ...], no_registry: bool) -> None:
    """Start the zones (broker, then schema registry) that are not running; wait until
    they answer."""
    specs = default_specs(zones)
    brokers = local.launcher()
    registries = None if no_registry else local.registries()
    if registries is not None:  # what is missing fails before anything starts
        brokers.check_prerequisites()
        registries.check()
    started = brokers.up(specs, click.echo)
    if registries is not None:
        started += registries.up(specs, click.echo)
    if not started:
        click.echo("all zones already running: nothing to do")


@zones.command()
@zone_option
def down(zones: tuple[str, ...]) -> None:
    """Stop the zones this project started, registries first (SIGTERM, then SIGKILL)."""
    specs = default_specs(zones)
    local.registries().down(specs, click.echo)
    local.launcher().down(specs, click.echo)


@zones.command()
@zone_option
def status(zones: tuple[str, ...]) -> None:
    """Show which zones and schema registries run, with their pids and addresses."""
    specs = default_specs(zones)
    registries = {r.name: r for r in local.registries().status(specs)}
    for row in local.launcher().status(specs):
        state = f"running (pid {row.pid})" if row.running else "stopped"
        click.echo(f"{row.name:<8} {row.bootstrap:<18} {state}")
        reg = registries[row.name]
        state = f"running (pid {reg.pid})" if reg.running else "stopped"
        click.echo(f"{'':<8} registry {reg.url}  {state}")


@zones.command()
@zone_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
def reset(zones: tuple[str, ...], yes: bool) -> None:
    """Stop the zones and delete all their data and local credentials."""
    if not yes:
        click.confirm("Delete all data of these zones?", abort=True)
    specs = default_specs(zones)
    local.registries().down(specs, click.echo)  # their pid files go with the zone's folder
    local.launcher().reset(specs, click.echo)


@zones.command()
@click.argument("zone")
@click.option("-n", "--lines", default=40, show_default=True, help="How many lines.")
def logs(zone: str, lines: int) -> None:
    """Print the last lines of a zone's broker log."""
    launcher = local.launcher()
    for line in launcher.last_log_lines(default_specs([zone])[0], lines):
        click.echo(line)
