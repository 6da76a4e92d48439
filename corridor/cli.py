"""`corridor ...`: the operator's command line.

Each family of subcommands lives in ``corridor/commands/<name>.py`` and
exports click commands; they are registered here, in the order `--help`
shows them.
"""

from __future__ import annotations

import importlib
import sys

import click

from corridor.core.errors import CorridorError

# (module, attribute) of each registered command or group.
COMMANDS: list[tuple[str, str]] = [
    ("corridor.commands.run", "run"),
    ("corridor.commands.keys", "keys"),
    ("corridor.commands.zones", "zones"),
    ("corridor.commands.validate", "validate"),
    ("corridor.commands.provision", "provision"),
    ("corridor.commands.principals", "principals"),
    ("corridor.commands.generate", "generate"),
    ("corridor.commands.tail", "tail"),
    ("corridor.commands.verify", "verify"),
    ("corridor.commands.demo", "demo"),
    ("corridor.commands.bench", "bench"),
]


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--log-level", default=None, help="debug, info, warning or error (default: info).")
def cli(log_level: str | None) -> None:
    """corridor: governed data corridors between regional Kafka clusters.

    Parks produce into their own zone; corridors decide record by record what
    crosses to another zone, protect what must be protected, withhold what may
    not leave, and deliver the rest exactly once.
    """
    from corridor import log

    log.configure(log_level)


for _module, _attr in COMMANDS:
    cli.add_command(getattr(importlib.import_module(_module), _attr))


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
