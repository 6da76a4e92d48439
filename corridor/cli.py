"""`corridor ...`: the operator's command line.

Each family of subcommands lives in ``corridor/commands/<name>.py`` and
exports click commands; they are registered here, in the order `--help`
shows them.
"""

from __future__ import annotations

import copy
import importlib
import sys

import click

from corridor import __version__
from corridor.core.errors import CorridorError

# (module, attribute) of each registered command or group.
COMMANDS: list[tuple[str, str]] = [
    ("corridor.commands.run", "run"),
    ("corridor.commands.keys", "keys"),
    ("corridor.commands.zones", "zones"),
    ("corridor.commands.validate", "validate"),
    ("corridor.commands.provision", "provision"),
    ("corridor.commands.principals", "principals"),
    ("corridor.commands.tail", "tail"),
    ("corridor.commands.verify", "verify"),
    ("corridor.commands.audit", "audit"),
    ("corridor.commands.report", "report"),
    ("corridor.commands.held", "held"),
    ("corridor.commands.demo", "demo"),
    ("corridor.commands.status", "status"),
    ("corridor.commands.deploy", "deploy"),
    ("corridor.commands.connect", "connect"),
    ("corridor.commands.subjects", "subjects"),
    ("corridor.commands.erase", "erase"),
    ("corridor.commands.consent", "consent"),
]
# Development tools: under `corridor dev` (and still reachable by their old names,
# hidden from the main --help, for scripts written before).
DEV_COMMANDS: list[tuple[str, str]] = [
    ("corridor.commands.bench", "bench"),
    ("corridor.commands.generate", "generate"),
]
LOG_LEVELS = ("debug", "info", "warning", "error")


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "-V", "--version", prog_name="corridor")
@click.option("--log-level", type=click.Choice(LOG_LEVELS, case_sensitive=False), default=None,
              envvar="CORRIDOR_LOG_LEVEL", show_envvar=True,
              help="Log level (default: info). Logs are JSON when stderr is not a terminal.")
def cli(log_level: str | None) -> None:
    """corridor: governed data corridors between regional Kafka clusters.

    Parks produce into their own zone; corridors decide record by record what
    crosses to another zone, protect what must be protected, withhold what may
    not leave, and deliver the rest exactly once.
    """
    from corridor import log

    log.configure(log_level)


@cli.group()
def dev() -> None:
    """Development tools: benchmarks and sample data (not needed to run corridors)."""


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(_module), _attr))
for _module, _attr in DEV_COMMANDS:
    _command = getattr(importlib.import_module(_module), _attr)
    dev.add_command(_command)
    cli.add_command(copy.copy(_command), _attr)
    cli.commands[_attr].hidden = True


def main() -> None:
    """Console entry point: operator errors print one line and exit 2, not a traceback."""
    try:
        # With standalone_mode=False click returns the code of ctx.exit(n).
        code = cli.main(standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Abort:
        click.echo("aborted", err=True)
        sys.exit(130)
    except CorridorError as exc:
        click.echo(f"corridor: error: {exc}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()
