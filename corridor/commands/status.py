"""`corridor status`: is each corridor keeping up? Read from the clusters, no processor needed.

Per corridor: the consumer group's state and members (and what each owns), the lag per
source partition (high watermark minus the position committed in the destination), the
age of the last commit (the newest record of ``_corridor.offsets.<name>``), the outcome
counts of every batch in the origin's audit topic, the newest data-key epoch published,
and the policy hash of the file. A corridor with lag whose last commit is older than
``--stall-after`` seconds (or that never committed) is STALLED: the exit status is 1.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import click
from rich.console import Console

from corridor.commands.options import config_option, emit_json, output_option
from corridor.commands.options import table as new_table
from corridor.core import topics
from corridor.core.acl import consumer_group
from corridor.core.audit import AuditDecodeError, AuditEvent, ChainId, decode_event
from corridor.core.config import Config, Corridor, load_config
from corridor.core.crypto.rotation import latest_epoch
from corridor.core.errors import ConfigError
from corridor.kafka.clients import Endpoint
from corridor.kafka.groups import describe_group
from corridor.kafka.io import read_to_end, watermarks
from corridor.kafka.keys_topic import published_keys
from corridor.kafka.offsets import OffsetReader
from corridor.processor.resolve import admin, endpoints_for
from corridor.zones.credentials import Principal


def corridor_status(config: Config, corridor: Corridor, stall_after_s: float,
                    now: float | None = None) -> dict[str, Any]:
    """The status document of one corridor (the keys ``-o json`` prints)."""
    now = time.time() if now is None else now
    where = endpoints_for(config, [corridor.origin, corridor.destination])
    origin, dest, who = where[corridor.origin], where[corridor.destination], admin()
    sources = [topics.outbound(corridor.origin, d) for d in corridor.datasets]
    marks = {t: watermarks(origin, who, t) for t in sources}
    reader = OffsetReader(dest, who, corridor.name)
    pairs = [(t, p) for t in sources for p in marks[t]]
    stored = reader.read(pairs, reader.partitions())
    partitions = []
    for topic, part in pairs:
        low, high = marks[topic][part]
        position = stored.get((topic, part), low)
        partitions.append({"topic": topic, "partition": part, "committed": position,
                           "end": high, "lag": max(0, high - position)})
    lag = sum(p["lag"] for p in partitions)
    last = _last_commit_s(dest, who, reader.topic)
    age = None if last is None else round(now - last, 1)
    stalled = lag > 0 and (age is None or age > stall_after_s)
    group = describe_group(origin, who, consumer_group(corridor.name))
    return {
        "corridor": corridor.name, "policy": corridor.policy_id,
        "origin": corridor.origin, "destination": corridor.destination,
        "group": {"name": group.group, "state": group.state, "members": [
            {"client_id": m.client_id, "host": m.host,
             "partitions": [f"{t}/{p}" for t, p in m.partitions]} for m in group.members]},
        "partitions": partitions, "lag": lag,
        "last_commit_age_s": age, "stalled": stalled,
        "outcomes": _outcomes(origin, who, corridor),
        "key_epoch": latest_epoch(published_keys(dest, who), corridor.name),
    }


def _last_commit_s(dest: Endpoint, who: Principal, topic: str) -> float | None:
    stamps = [r.timestamp_ms for r in read_to_end(dest, who, topic) if r.timestamp_ms]
    return max(stamps) / 1000.0 if stamps else None


def _outcomes(origin: Endpoint, who: Principal, corridor: Corridor) -> dict[str, int]:
    """Totals of the chained audit events of ``corridor`` (one per committed batch; an event
    written again by a new owner is the same (chain, seq) and counts once)."""
    events: dict[tuple[ChainId, int], AuditEvent] = {}
    for rec in read_to_end(origin, who, topics.audit(corridor.origin)):
        try:
            event = decode_event(rec.value or b"")
        except AuditDecodeError:
            continue  # an operator's notice, or garbage: `corridor audit verify` names it
        if event.corridor == corridor.name and event.summary.kind == "batch":
            events[(event.chain, event.seq)] = event
    return {k: sum(e.summary.outcomes.get(k, 0) for e in events.values())
            for k in ("delivered", "withheld", "quarantined")}


@click.command()
@config_option
@click.option("--corridor", "names", multiple=True, metavar="NAME",
              help="Only this corridor (repeatable). Default: every corridor of the file.")
@click.option("--stall-after", default=300.0, show_default=True, type=click.FloatRange(min=0),
              help="Seconds without a commit, while records wait, that count as stalled.")
@output_option
def status(config_path: str, names: tuple[str, ...], stall_after: float, output: str) -> None:
    """Show whether each corridor keeps up; exit 1 when one has lag and is not committing.

    Reads the clusters only (works while processors are down): group members and their
    partitions, lag, age of the last commit, outcome counts from the audit topic, key
    epoch, policy hash.
    """
    config = load_config(config_path)
    chosen = list(names) or list(config.corridors)
    for name in chosen:
        if name not in config.corridors:
            raise ConfigError(config_path, None, f"corridors.{name}", "no such corridor")
    docs = [corridor_status(config, config.corridors[n], stall_after) for n in chosen]
    if output == "json":
        emit_json({"corridors": docs, "stalled": [d["corridor"] for d in docs if d["stalled"]]})
    else:
        _show(docs)
    sys.exit(1 if any(d["stalled"] for d in docs) else 0)


def _show(docs: list[dict[str, Any]]) -> None:
    table = new_table("corridor status")
    for column in ("corridor", "group", "lag", "last commit", "delivered / withheld / "
                   "quarantined", "key epoch", "policy", "state"):
        table.add_column(column)
    for d in docs:
        members = ", ".join(f"{m['client_id']}@{m['host']} ({len(m['partitions'])} partitions)"
                            for m in d["group"]["members"]) or "no members"
        o = d["outcomes"]
        age = "never" if d["last_commit_age_s"] is None else f"{d['last_commit_age_s']:.0f}s ago"
        table.add_row(d["corridor"], f"{d['group']['state']}: {members}", str(d["lag"]), age,
                      f"{o['delivered']} / {o['withheld']} / {o['quarantined']}",
                      str(d["key_epoch"]), d["policy"],
                      "[red]STALLED[/red]" if d["stalled"] else "ok")
    Console().print(table)
