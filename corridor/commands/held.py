"""`corridor held list|show|release`: review the records a corridor held back, and let
the ones today's policy delivers cross, exactly once, with the decision recorded."""

from __future__ import annotations

import getpass
import json
import os
import secrets
import sys
import time
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, TypeVar

import click
from rich.console import Console

from corridor import log as corridor_log
from corridor.commands.options import config_option, emit_json, output_option
from corridor.commands.options import table as new_table
from corridor.core.config import Config, load_config
from corridor.core.errors import ConfigError
from corridor.core.model import Lineage
from corridor.core.release import (
    HeldRecord,
    LineagePattern,
    Marker,
    Release,
    Selection,
    parse_since,
    ranges,
    release_id,
)
from corridor.processor.release import Releaser, ReleaseReport, decoded, held_view
from corridor.processor.wiring import runner_principal

F = TypeVar("F", bound=Callable[..., Any])
SHOWN = 20  # records listed per kind in a release's text report; the counts are complete
PREVIEW_BYTES = 64
OPERATOR_ENV = "CORRIDOR_OPERATOR"


def _corridor_option(fn: F) -> F:
    return click.option("--corridor", "name", required=True,
                        help="Corridor name, e.g. hk-eu.")(fn)


def _filters(reason_flag: str) -> Callable[[F], F]:
    """--<reason_flag> PREFIX, --since T, --lineage L (repeatable)."""
    def wrap(fn: F) -> F:
        fn = click.option("--lineage", "lineages", multiple=True, metavar="L",
                          help="Only this lineage (topic/partition/offset[#row]) or range "
                               "(topic/partition/first-last); repeatable.")(fn)
        fn = click.option("--since", default=None, metavar="T",
                          help="Only records held at or after T: a duration ago (30m, 2h, "
                               "7d) or an ISO-8601 time (UTC unless it names a zone).")(fn)
        return click.option(f"--{reason_flag}", "held_reason", default=None, metavar="PREFIX",
                            help="Only records whose held reason starts with PREFIX, e.g. "
                                 "'decode: unknown schema id'.")(fn)
    return wrap


def _selection(held_reason: str | None, since: str | None, lineages: tuple[str, ...]
               ) -> Selection:
    try:
        since_ms = parse_since(since, int(time.time() * 1000)) if since else None
        patterns = tuple(LineagePattern.parse(text) for text in lineages)
    except ValueError as exc:
        raise click.BadParameter(str(exc)) from None
    return Selection(held_reason, since_ms, patterns)


def _config(config_path: str, name: str) -> Config:
    config = load_config(config_path)
    if name not in config.corridors:
        raise ConfigError(config_path, None, f"corridors.{name}", "no such corridor")
    return config


def _when(ms: int | None) -> str:
    return "" if ms is None else datetime.fromtimestamp(ms / 1000, UTC).isoformat(
        timespec="seconds")


@click.group()
def held() -> None:
    """Records a corridor withheld or quarantined: review them, release them.

    Held records stay in the origin (<zone>.withheld.<corridor> and
    <zone>.quarantine.<corridor>). `release` re-runs them through the corridor's
    CURRENT policy: a record crosses only when today's policy delivers it (a
    quarantined record whose schema is now registered, a withheld one a rule no
    longer withholds), exactly once, with a release marker in the destination and a
    release event in the origin's audit topic. Releasing never bypasses the policy.
    Every subcommand runs as the corridor's principal (the admin until
    `corridor provision --acls` made it).
    """


@held.command("list")
@_corridor_option
@_filters("reason")
@click.option("--include-released", is_flag=True,
              help="Also list records a release already let cross.")
@config_option
@output_option
def list_held(name: str, held_reason: str | None, since: str | None, lineages: tuple[str, ...],
              include_released: bool, config_path: str, output: str) -> None:
    """List the records corridor NAME holds: lineage, outcome, reason, when, size.

    Exit codes: 0 listed (also when nothing matches), 2 bad config or unreachable zone.
    """
    config = _config(config_path, name)
    selection = _selection(held_reason, since, lineages)
    console = Console(stderr=output == "json")
    with console.status("reading held records"):
        records, markers = held_view(config, name, _principal(name), selection)
    rows = [(r, markers.get(str(r.lineage))) for r in records]
    rows = [(r, m) for r, m in rows if include_released or m is None]
    if output == "json":
        emit_json({"corridor": name, "count": len(rows),
                   "records": [_record_doc(r, m) for r, m in rows]})
        return
    table = new_table(f"corridor {name}: held records ({len(rows)})", show_header=True)
    for column in ("lineage", "held as", "reason", "held at (UTC)", "bytes", "released"):
        table.add_column(column, justify="right" if column == "bytes" else "left")
    for r, m in rows:
        table.add_row(str(r.lineage), r.outcome.value, r.reason[:80], _when(r.held_at_ms),
                      str(r.size), m.release if m else "")
    console.print(table)


@held.command("show")
@click.argument("lineage")
@_corridor_option
@config_option
@output_option
def show(lineage: str, name: str, config_path: str, output: str) -> None:
    """Show one held record of corridor NAME by its LINEAGE: outcome, reason, headers,
    the value decoded when it decodes (else a hex preview), and its release if any.

    Exit codes: 0 shown, 1 no record held under LINEAGE, 2 bad config or unreachable zone.
    """
    config = _config(config_path, name)
    try:
        wanted = Lineage.parse(lineage)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="LINEAGE") from None
    selection = Selection(lineages=(LineagePattern.parse(lineage),))
    records, markers = held_view(config, name, _principal(name), selection)
    found = [r for r in records if r.lineage == wanted]
    if not found:
        click.echo(f"no record of corridor {name} is held under {lineage}", err=True)
        sys.exit(1)
    docs = []
    for r in found:
        doc = _record_doc(r, markers.get(lineage))
        doc["headers"] = {k: _text(v) for k, v in r.headers}
        value = decoded(config, name, r)
        doc["value"] = value
        doc["value_hex"] = None if value is not None else (r.value or b"")[:PREVIEW_BYTES].hex()
        docs.append(doc)
    if output == "json":
        emit_json(docs[0] if len(docs) == 1 else {"records": docs})
        return
    for doc in docs:
        for key in ("lineage", "outcome", "reason", "held_at", "bytes", "released"):
            click.echo(f"{key + ':':<11} {doc[key] if doc[key] is not None else ''}")
        click.echo("headers:")
        for k, v in doc["headers"].items():
            click.echo(f"  {k}: {v}")
        if doc["value"] is not None:
            click.echo(f"value:     {json.dumps(doc['value'], default=str, ensure_ascii=False)}")
        else:
            click.echo(f"value:     (does not decode) {doc['value_hex']}"
                       f"{'...' if (doc['bytes'] or 0) > PREVIEW_BYTES else ''}")


@held.command("release")
@_corridor_option
@click.option("--reason", required=True, metavar="TEXT",
              help="Why these records may cross now (recorded with the release), e.g. "
                   "schema-registered.")
@_filters("held-reason")
@click.option("--dry-run", is_flag=True,
              help="Show what would cross and what would stay held; write nothing.")
@config_option
@output_option
def release(name: str, reason: str, held_reason: str | None, since: str | None,
            lineages: tuple[str, ...], dry_run: bool, config_path: str, output: str) -> None:
    """Re-run the held records of corridor NAME that the filters select through the
    corridor's CURRENT policy; deliver the ones it now lets cross, exactly once.

    \b
    - crosses: delivered to the corridor topic with `corridor-released: <release id>`,
      each with a release marker in _corridor.released.<corridor> (same transaction);
    - stays held: today's policy still withholds or quarantines it (its current
      reason is shown; the held record is left as it is);
    - already released: an earlier release took it (a repeated release is a no-op);
    - pending: the corridor has not committed its batch yet (left to the processor).
    The release (who: $CORRIDOR_OPERATOR or the login name; why: --reason) is
    recorded in the markers and as an event in the origin's audit topic.

    \b
    Exit codes:
      0  every selected record crossed now or had crossed before (also: none selected)
      1  some selected records stay held, are pending, or cannot be re-run
      2  bad config, unreachable zone or registry, refused transaction
    """
    config = _config(config_path, name)
    selection = _selection(held_reason, since, lineages)
    logger = corridor_log.get_logger("corridor.held")
    principal = _principal(name)
    now_ms = int(time.time() * 1000)
    who = os.environ.get(OPERATOR_ENV) or getpass.getuser()
    intent = Release(name, release_id(now_ms, secrets.token_hex(3)), who, principal.username,
                     reason, now_ms, "")
    console = Console(stderr=True)
    with console.status("reading held records") as status:
        releaser = Releaser(config, name, principal, logger,
                            lambda what, done, total: status.update(f"{what}: {done}/{total}"))
        report = releaser.run(intent, selection, dry_run=dry_run)
    if output == "json":
        emit_json(as_json(report))
    else:
        show_report(Console(), report)
    stays = report.still_held or report.pending or report.refused
    sys.exit(1 if stays else 0)


def as_json(report: ReleaseReport) -> dict[str, object]:
    """The report as one document with stable keys (records: the first SHOWN of each kind)."""
    rel = report.release
    return {
        "corridor": rel.corridor, "release": rel.release_id, "by": rel.by,
        "principal": rel.principal, "reason": rel.reason, "policy": rel.policy,
        "dry_run": report.dry_run, "selected": report.selected,
        "crossed": len(report.crossed),
        "crossed_by_previous": dict(Counter(r.outcome.value for r in report.crossed)),
        "crossed_lineages": ranges(r.lineage for r in report.crossed),
        "still_held": len(report.still_held),
        "still_held_by_reason": dict(Counter(why for _, _, why in report.still_held)),
        "still_held_lineages": [str(r.lineage) for r, _, _ in report.still_held[:SHOWN]],
        "already_released": len(report.already),
        "already_released_by": dict(Counter(rid for _, rid in report.already)),
        "pending": len(report.pending),
        "refused": [{"lineage": str(r.lineage), "why": why} for r, why in report.refused],
        "without_source": report.without_source,
    }


def show_report(console: Console, report: ReleaseReport) -> None:
    rel, verb = report.release, "would cross" if report.dry_run else "crossed"
    title = f"release {rel.release_id} of corridor {rel.corridor}" + (
        " (dry run: nothing written)" if report.dry_run else "")
    table = new_table(title, show_header=True)
    for column in ("records", "detail", "count"):
        table.add_column(column, justify="right" if column == "count" else "left")
    table.add_row("selected", "", str(report.selected))
    previous = Counter(r.outcome.value for r in report.crossed)
    table.add_row(verb, ", ".join(f"was {k}: {v}" for k, v in previous.items()),
                  str(len(report.crossed)))
    table.add_row("stay held", "", str(len(report.still_held)))
    for why, count in Counter(why for _, _, why in report.still_held).items():
        table.add_row("", why[:80], str(count))
    table.add_row("already released", ", ".join(sorted({rid for _, rid in report.already})),
                  str(len(report.already)))
    table.add_row("pending (batch not committed yet)", "", str(len(report.pending)))
    for r, why in report.refused:
        table.add_row("cannot be re-run", f"{r.lineage}: {why}", "1")
    if report.without_source:
        table.add_row("re-run without their source record",
                      "source expired: held time as timestamp, no park headers",
                      str(report.without_source))
    console.print(table)
    if report.crossed:
        console.print(f"{verb}: {', '.join(ranges(r.lineage for r in report.crossed)[:SHOWN])}")
    console.print(f"by {rel.by} as {rel.principal}, reason: {rel.reason}, policy {rel.policy}")


def _principal(name: str) -> Any:
    return runner_principal(name, corridor_log.get_logger("corridor.held"))


def _record_doc(r: HeldRecord, marker: Marker | None) -> dict[str, Any]:
    return {"lineage": str(r.lineage), "outcome": r.outcome.value, "reason": r.reason,
            "held_at": _when(r.held_at_ms), "held_at_ms": r.held_at_ms, "bytes": r.size,
            "released": marker.release if marker else None}


def _text(value: bytes | None) -> str | None:
    if value is None:
        return None
    try:
        return value.decode("utf-8")
    except UnicodeDecodeError:
        return "hex:" + value.hex()
