"""`corridor validate [-c FILE]`: check a corridor file without touching any cluster."""

from __future__ import annotations

import sys

import click

from corridor.commands.options import config_option, emit_json, output_option
from corridor.core.config import load_config
from corridor.core.errors import ConfigErrors


@click.command()
@click.argument("file", required=False, type=click.Path(dir_okay=False))
@config_option
@output_option
def validate(file: str | None, config_path: str, output: str) -> None:
    """Check the corridor file (-c, or FILE): zones, schemas, rules, transforms, leaks.

    Prints one summary line and exits 0 when the file is valid; otherwise prints
    every problem as FILE:LINE: FIELD: message on stderr and exits 2. With -o json,
    prints {"file", "ok", "errors": [{"file", "line", "field", "message"}]}.
    """
    path = file or config_path
    try:
        config = load_config(path)
    except ConfigErrors as exc:
        if output == "json":
            emit_json({"file": path, "ok": False, "errors": [
                {"file": e.file, "line": e.line, "field": e.field, "message": e.message}
                for e in exc.errors]})
        for error in exc.errors:
            click.echo(error.render(), err=True)
        count = len(exc.errors)
        click.echo(f"{path}: {count} error{'s' if count != 1 else ''}", err=True)
        # sys.exit, not click's Exit: cli.main() runs click with standalone_mode=False,
        # where an Exit's code is returned, not used as the process status.
        sys.exit(2)
    if output == "json":
        emit_json({"file": path, "ok": True, "errors": [], "zones": sorted(config.zones),
                   "datasets": sorted(config.datasets), "corridors": {
                       n: c.policy_id for n, c in config.corridors.items()}})
        return
    click.echo(f"{config.summary()}: OK")
