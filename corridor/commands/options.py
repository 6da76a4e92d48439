"""Options and output helpers every command shares, so that the CLI fits in scripts.

- ``config_option``: ``-c/--config FILE``, default ``$CORRIDOR_CONFIG`` else ``corridors.yaml``.
- ``output_option``: ``-o/--output table|json``; json is one document on stdout with stable
  keys, nothing else on stdout.
- ``who_option``: ``--as WHO`` (``$CORRIDOR_AS``): the principal a reading command acts as.
- ``table(...)``: a rich Table that draws no box characters unless stdout is a terminal.
- ``emit_json(doc)``: print a JSON document (sorted keys) on stdout.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click
from rich import box
from rich.table import Table

F = TypeVar("F", bound=Callable[..., Any])
CONFIG_ENV = "CORRIDOR_CONFIG"


def config_option(fn: F) -> F:
    """``-c/--config``: the corridor file (``$CORRIDOR_CONFIG``, else ``corridors.yaml``)."""
    return click.option(
        "-c", "--config", "config_path", envvar=CONFIG_ENV, default="corridors.yaml",
        show_default=True, show_envvar=True, type=click.Path(dir_okay=False),
        help="The corridor file.")(fn)


def output_option(fn: F) -> F:
    """``-o/--output``: ``table`` for people, ``json`` for scripts."""
    return click.option(
        "-o", "--output", "output", type=click.Choice(["table", "json"]), default="table",
        show_default=True, help="table for people; json (stable keys) for scripts.")(fn)


WHO_HELP = ("Read as: 'auditor' (each zone's auditor-<zone>), 'admin', or a principal of the "
            "credentials file. Default: the zone's auditor when it exists, else the admin.")


def who_option(fn: F) -> F:
    """``--as WHO``: who a reading command acts as (``resolve.acting_principal``)."""
    return click.option("--as", "who", default=None, envvar="CORRIDOR_AS", show_envvar=True,
                        help=WHO_HELP)(fn)


def interactive() -> bool:
    return sys.stdout.isatty()


def table(title: str | None = None, **kwargs: Any) -> Table:
    """A Table with box drawing on a terminal, plain columns otherwise (pipes, files, CI)."""
    return Table(title=title, box=box.HEAVY_HEAD if interactive() else None, **kwargs)


def emit_json(doc: Any) -> None:
    click.echo(json.dumps(doc, sort_keys=True, indent=2, default=str))
