"""`corridor report`: what crossed where, under which instrument, from the audit events;
and `corridor report --records-of-processing`: the register of the configured transfers.

Reading is ``corridor.kafka.evidence.read_log`` (as the zone's auditor by default, ``--as``);
everything else is ``corridor.core.report``.
"""

from __future__ import annotations

import datetime as dt
import json
import sys
import time
from pathlib import Path
from typing import Any

import click
from rich.console import Console

from corridor.commands.options import config_option, emit_json, who_option
from corridor.core import topics
from corridor.core.config import Config, load_config
from corridor.core.errors import ConfigError
from corridor.core.report import (
    Layout,
    Window,
    build_report,
    chain_statuses,
    html_page,
    markdown,
    records_of_processing,
    register_document,
    register_layout,
    report_document,
    report_layout,
    split_log,
)
from corridor.kafka.evidence import read_log
from corridor.processor.resolve import acting_principal, endpoints_for

FORMATS = ("md", "json", "html")


def parse_time(text: str, option: str) -> int:
    """Epoch milliseconds from digits (epoch ms) or ISO-8601 (a date is its midnight; a
    time without an offset is UTC)."""
    value = text.strip()
    if value.isdigit():
        return int(value)
    try:
        moment = dt.datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"{text!r} is neither epoch milliseconds nor ISO-8601 "
                                 "(2024-05-01, 2024-05-01T12:00:00Z)", param_hint=option) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=dt.UTC)
    return int(moment.timestamp() * 1000)


def _selection(config: Config, name: str | None, zone: str | None) -> tuple[list[str], list[str]]:
    """(corridors, origin zones whose audit topics to read)."""
    if name is not None:
        if name not in config.corridors:
            raise ConfigError(str(config.path), None, f"corridors.{name}", "no such corridor")
        return [name], [config.corridors[name].origin]
    if zone is not None:
        if zone not in config.zones:
            raise ConfigError(str(config.path), None, f"zones.{zone}", "no such zone")
        return sorted(n for n, c in config.corridors.items() if c.origin == zone), [zone]
    return sorted(config.corridors), sorted({c.origin for c in config.corridors.values()})


def _write(text: str, out: str | None) -> None:
    if out is None:
        click.echo(text, nl=False)
    else:
        Path(out).write_text(text, encoding="utf-8")
        click.echo(f"wrote {out}", err=True)


@click.command()
@click.option("--from", "from_", metavar="T", help="Window start (inclusive): ISO-8601 "
              "(2024-05-01, 2024-05-01T08:00:00Z; no offset means UTC) or epoch ms.")
@click.option("--to", "to", metavar="T", help="Window end (exclusive), same forms.")
@click.option("--corridor", "name", help="Only this corridor (reads its origin's audit topic).")
@click.option("--zone", help="Only the corridors leaving this zone.")
@click.option("--records-of-processing", "register", is_flag=True,
              help="Print the register of the configured transfers instead (no Kafka).")
@who_option
@config_option
@click.option("-o", "--output", type=click.Choice(FORMATS), default="md", show_default=True,
              help="md for terminals and docs; json (stable keys) for scripts; html: one "
                   "self-contained page that prints well.")
@click.option("--out", "out", type=click.Path(dir_okay=False),
              help="Write to this file instead of stdout.")
def report(from_: str | None, to: str | None, name: str | None, zone: str | None,
           register: bool, who: str | None, config_path: str, output: str,
           out: str | None) -> None:
    """What crossed where, under which transfer instrument, in a time window.

    Reads the hash-chained audit events of the origin zones (<zone>.audit) and reports
    per corridor and instrument: records delivered, withheld and quarantined by reason,
    the fields that crossed under each protection (dropped, masked, pseudonymized,
    encrypted), the data keys (and epochs) used, the policy versions in force, each
    audit chain's verification and the source offsets it covers. A batch replayed after
    an aborted transaction is counted once. The window [--from, --to) applies to the
    events' times.

    Reconciliation: per chain, the events must cover contiguous source offsets and their
    outcome counts must add up to the offsets covered (gap events cover offsets retention
    removed before they crossed). The totals are in the terms of `corridor verify`
    (source, delivered, withheld, quarantined, withheld_by_reason, quarantined_by_reason):
    for a window covering a corridor's whole history they equal `corridor verify
    --corridor NAME -o json`'s.

    \b
    -o json keys: kind, window {from_ms, to_ms, from, to}, generated_ms, generated, ok,
    reconciles, verified, events, replays, conflicts, outside_window, undecodable,
    totals, corridors [{corridor, origin, destination, configured_instrument,
    reconciles, verified, totals, instruments [{instrument, kind, reference, expires,
    legal_basis, events, totals, protections {protection: {field: delivered records}}}],
    policies [{policy_hash, first_ms, last_ms, first, last, events}],
    keys [{key_id, epoch, first_ms, last_ms, first, last, events}],
    chains [{topic, partition, events, replays, conflicts, first_seq, last_seq,
    offset_ranges, gaps, offsets, gap_offsets, records, contiguous, reconciles,
    discontinuities, mismatches, verification {status, verified, replays, first_seq,
    head_seq, break}}]}]; totals: {source, delivered, withheld, quarantined,
    withheld_by_reason, quarantined_by_reason}.

    \b
    --records-of-processing (-o md|json|html; json: kind, config, date, corridors
    [{corridor, exporter {zone, jurisdiction}, recipient {zone, jurisdiction,
    principals}, purpose, retention_days, legal_basis, instrument {id, kind, reference,
    parties, signed, expires, state}, datasets [{dataset, categories {public, internal,
    personal, sensitive}, key {class, treatment}, safeguards {field: transform},
    unprotected}]}]): the GDPR Art. 30 style register, from the corridor file alone.

    \b
    Exit codes: 0 the report was written and its totals reconcile and every chain
    verifies (always 0 for --records-of-processing); 1 it was written but does not
    reconcile or a chain is broken; 2 bad options, a bad corridor file or an
    unreachable cluster.
    """
    config = load_config(config_path)
    if register:
        today = dt.datetime.now(dt.UTC).date()
        doc = register_document(records_of_processing(config, today), config_path, today)
        _render(doc, register_layout(doc), output, out)
        return
    if from_ is None or to is None:
        raise click.UsageError("--from and --to are required (or --records-of-processing)")
    if name is not None and zone is not None:
        raise click.UsageError("--corridor and --zone exclude each other")
    start, end = parse_time(from_, "--from"), parse_time(to, "--to")
    if end <= start:
        raise click.BadParameter(f"{to!r} is not after --from {from_!r}", param_hint="--to")
    corridors, zones = _selection(config, name, zone)
    values: list[bytes] = []
    where = endpoints_for(config, zones)
    with Console(stderr=True).status("reading audit events") as status:
        for z in zones:
            status.update(f"reading {z}/{topics.audit(z)}")
            read = read_log(where[z], acting_principal(z, who), topics.audit(z))
            values += [r.value or b"" for r in read.records]
    log = split_log(values)
    chains = {c: events for c, events in log.chains.items() if c.corridor in corridors}
    built = build_report(log.events, config, Window(start, end), corridors=corridors,
                         statuses=chain_statuses(chains), undecodable=log.undecodable,
                         generated_ms=int(time.time() * 1000))
    doc = report_document(built)
    _render(doc, report_layout(doc), output, out)
    sys.exit(0 if built.reconciles and built.verified else 1)


def _render(doc: dict[str, Any], laid: Layout, output: str, out: str | None) -> None:
    if output == "json" and out is None:
        emit_json(doc)
    elif output == "json":
        _write(json.dumps(doc, sort_keys=True, indent=2) + "\n", out)
    else:
        _write(markdown(laid) if output == "md" else html_page(laid), out)
