"""`corridor validate [FILE]`: check a corridor file without touching any cluster."""

from __future__ import annotations

import sys

import click

from corridor.core.config import load_config
from corridor.core.errors import ConfigErrors


@click.command()
@click.argument("file", default="corridors.yaml", type=click.Path(dir_okay=False))
def validate(file: str) -> None:
    """Check FILE (default corridors.yaml): zones, schemas, rules, transforms, leaks.

    Prints one summary line and exits 0 when the file is valid; otherwise prints
    every problem as FILE:LINE: FIELD: message on stderr and exits 2.
    """
    try:
        config = load_config(file)
    except ConfigErrors as exc:
        for error in exc.errors:
            click.echo(error.render(), err=True)
        count = len(exc.errors)
        click.echo(f"{file}: {count} error{'s' if count != 1 else ''}", err=True)
        # sys.exit, not click's Exit: cli.main() runs click with standalone_mode=False,
        # where an Exit's code is returned, not used as the process status.
        sys.exit(2)
    click.echo(f"{config.summary()}: OK")
