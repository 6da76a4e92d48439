"""`corridor audit verify` and `corridor audit public-key`: prove the audit chain intact.

Reads a zone's audit events and signed checkpoints (``corridor.kafka.evidence``) and each
destination's copy of the checkpoints, checks them (``corridor.core.audit_check``) and
prints a summary or the first break. Acts as the zone's auditor principal when the
credentials file has it (``corridor.processor.resolve.acting_principal``).
"""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.markup import escape

from corridor.commands.options import config_option, emit_json, output_option, who_option
from corridor.commands.options import table as new_table
from corridor.core import topics
from corridor.core.audit_check import Break, Evidence, Logged, ZoneCheck, check_zone
from corridor.core.config import Config, load_config
from corridor.core.errors import ConfigError
from corridor.kafka.evidence import TopicLog, read_log
from corridor.keys.signing import public_pem
from corridor.processor.resolve import acting_principal, audit_public_keys, zone_endpoint

SHOWN = 10  # breaks listed; the count is always complete

@click.group()
def audit() -> None:
    """The tamper-evident audit: one hash-chained event per committed batch, per corridor
    and source partition, in <zone>.audit; checkpoints of each chain's head signed with the
    origin zone's Ed25519 key in <zone>.audit.checkpoints, copied to each destination as
    _corridor.checkpoints.<zone>."""


@audit.command("verify")
@click.option("--zone", default=None, help="Origin zone to verify (default: every origin "
              "zone of the file, or of --corridor).")
@click.option("--corridor", "name", default=None, help="Verify only this corridor's chains.")
@who_option
@click.option("--public-key", "key_files", multiple=True,
              type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="PEM public key of the zone (`corridor audit public-key`); repeat for "
                   "older keys. Default: the zone's key in its keys folder. One zone only.")
@click.option("--events-topic", default=None, hidden=True,
              help="Read the events from this topic of the zone (e.g. a copy).")
@click.option("--checkpoints-topic", default=None, hidden=True,
              help="Read the origin's checkpoints from this topic of the zone.")
@click.option("--copy-topic", "copy_topics", multiple=True, hidden=True, metavar="ZONE=TOPIC",
              help="Read destination ZONE's checkpoint copy from TOPIC.")
@config_option
@output_option
def verify(zone: str | None, name: str | None, who: str | None, key_files: tuple[Path, ...],
           events_topic: str | None, checkpoints_topic: str | None,
           copy_topics: tuple[str, ...], config_path: str, output: str) -> None:
    """Prove that the audit of the corridors from --zone is what the processors wrote.

    \b
    What it proves:
    - each chain (corridor + source partition) is intact: no event altered, deleted,
      reordered or inserted, none conflicting with another at its seq (byte-identical
      replays are accepted), from seq 0 (unless retention removed the topic's front);
    - each checkpoint was signed by the origin zone's key and matches the chain at its
      seq: the history before it was not rewritten, the tail up to it not truncated;
    - each destination's copy holds exactly the origin's checkpoints of its corridors,
      so neither side alone can rewrite history.

    \b
    What it does not prove:
    - anything after a chain's last checkpoint: the hashes need no secret, so whoever
      can write the audit topic can drop or recompute the tail after it;
    - that the events describe what crossed: `corridor verify` checks the accounting;
    - events that retention removed (checkpoints before them are counted unverifiable);
    - a checkpoint written in the last moments of a running corridor may not have reached
      its copy yet (copy-missing): run again, or verify a quiet corridor.

    Exit codes: 0 intact; 1 a break (the first is named: chain, seq, kind, topic and
    offset); 2 an operator error (unreachable cluster, denied or missing topic, no key).
    """
    config = load_config(config_path)
    zones = _zones(config, zone, name)
    overrides = (events_topic, checkpoints_topic, copy_topics, key_files)
    if len(zones) != 1 and any(overrides):
        raise click.UsageError("--public-key and the topic options need exactly one zone "
                               "(--zone)")
    console = Console(stderr=output == "json")
    results: list[tuple[dict[str, Any], ZoneCheck]] = []
    with console.status("reading the audit") as status:
        for z in zones:
            keys = audit_public_keys(config, z, key_files)  # no key: fail before reading
            evidence, where = _read(config, z, name, who, events_topic, checkpoints_topic,
                                    dict(_pair(c) for c in copy_topics), status.update)
            where["signers"] = sorted(keys)
            results.append((where, check_zone(evidence, keys, _destinations(config, z, name),
                                              name)))
    doc = as_json(results)
    if output == "json":
        emit_json(doc)
    else:
        show(console, doc)
    sys.exit(0 if doc["ok"] else 1)


@audit.command("public-key")
@click.option("--zone", required=True, help="The origin zone whose key to print.")
@config_option
def public_key(zone: str, config_path: str) -> None:
    """Print ZONE's audit public key (PEM): what an auditor passes to `verify --public-key`."""
    config = load_config(config_path)
    _zones(config, zone, None)
    for key in audit_public_keys(config, zone).values():
        click.echo(public_pem(key).decode("ascii"), nl=False)


def _zones(config: Config, zone: str | None, name: str | None) -> list[str]:
    if name is not None and name not in config.corridors:
        raise ConfigError(str(config.path), None, f"corridors.{name}", "no such corridor")
    origins = sorted({c.origin for c in config.corridors.values() if name in (None, c.name)})
    if zone is None:
        return origins
    if zone not in config.zones:
        raise ConfigError(str(config.path), None, f"zones.{zone}", "no such zone")
    if zone not in origins:
        raise click.UsageError(f"zone {zone} is the origin of no corridor"
                               + (f" named {name}" if name else ""))
    return [zone]


def _destinations(config: Config, zone: str, name: str | None) -> dict[str, str]:
    return {c.name: c.destination for c in config.corridors.values()
            if c.origin == zone and name in (None, c.name)}


def _pair(text: str) -> tuple[str, str]:
    zone, sep, topic = text.partition("=")
    if not sep or not zone or not topic:
        raise click.BadParameter(f"{text!r} is not ZONE=TOPIC", param_hint="--copy-topic")
    return zone, topic


def _logged(log: TopicLog) -> list[Logged]:
    return [Logged(r.topic, r.partition, r.offset, r.value) for r in log.records]


def _read(config: Config, zone: str, name: str | None, who: str | None,
          events_topic: str | None, checkpoints_topic: str | None,
          copy_topics: dict[str, str], progress: Any) -> tuple[Evidence, dict[str, Any]]:
    """Read ``zone``'s evidence; returns it and where it was read (for the output)."""
    def read(z: str, topic: str) -> TopicLog:
        progress(f"reading {z}/{topic}")
        return read_log(zone_endpoint(config, z), acting_principal(z, who), topic)

    events = read(zone, events_topic or topics.audit(zone))
    checkpoints = read(zone, checkpoints_topic or topics.audit_checkpoints(zone))
    dests = sorted(set(_destinations(config, zone, name).values()) | set(copy_topics))
    copies = {d: read(d, copy_topics.get(d) or topics.checkpoint_copy(zone)) for d in dests}
    evidence = Evidence(zone, _logged(events), _logged(checkpoints),
                        {d: _logged(log) for d, log in copies.items()},
                        from_genesis=events.log_start == 0)
    where = {"zone": zone, "events_topic": events.topic, "events_log_start": events.log_start,
             "checkpoints_topic": checkpoints.topic,
             "copies": {d: {"topic": log.topic} for d, log in copies.items()}}
    return evidence, where


def _break_doc(b: Break) -> dict[str, Any]:
    chain = None if b.chain is None else {"corridor": b.chain.corridor, "topic": b.chain.topic,
                                          "partition": b.chain.partition}
    return {"zone": b.zone, "kind": b.kind, "chain": chain, "seq": b.seq, "topic": b.topic,
            "partition": b.partition, "offset": b.offset, "detail": b.detail}


def as_json(results: list[tuple[dict[str, Any], ZoneCheck]]) -> dict[str, Any]:
    """The result as one document with stable keys (breaks: the first SHOWN, first first)."""
    corridors: dict[str, dict[str, int]] = {}
    chains, breaks, zones = [], [], []
    for where, check in results:
        for d, count in check.copies.items():
            where["copies"][d]["checkpoints_equal"] = count
        zones.append(where)
        breaks.extend(check.breaks)
        for s in check.chains:
            per = corridors.setdefault(s.chain.corridor, dict.fromkeys(
                ("chains", "events", "replays", "checkpoints", "unverifiable"), 0))
            for k, v in (("chains", 1), ("events", s.events), ("replays", s.replays),
                         ("checkpoints", s.checkpoints), ("unverifiable", s.unverifiable)):
                per[k] += v
            chains.append({"zone": check.zone, "corridor": s.chain.corridor,
                           "topic": s.chain.topic, "partition": s.chain.partition,
                           "events": s.events, "replays": s.replays, "first_seq": s.first_seq,
                           "head_seq": s.head_seq, "checkpoints": s.checkpoints,
                           "unverifiable": s.unverifiable})
    return {"ok": not breaks, "zones": zones, "corridors": corridors, "chains": chains,
            "first_break": _break_doc(breaks[0]) if breaks else None,
            "breaks": [_break_doc(b) for b in breaks[:SHOWN]], "breaks_count": len(breaks)}


def describe_break(b: dict[str, Any]) -> str:
    """``altered: chain hk-eu hk.outbound.x/0 seq 3, at hk.audit partition 0 offset 3: ...``."""
    chain = b["chain"]
    where = "an undecodable record" if chain is None else \
        f"chain {chain['corridor']} {chain['topic']}/{chain['partition']} seq {b['seq']}"
    return (f"{b['kind']}: {where}, at {b['topic']} partition {b['partition']} offset "
            f"{b['offset']}: {b['detail']}")


def show(console: Console, doc: dict[str, Any]) -> None:
    for z in doc["zones"]:
        copies = ", ".join(f"{d} {c['topic']} ({c.get('checkpoints_equal', 0)} equal)"
                           for d, c in z["copies"].items()) or "none"
        console.print(f"zone {z['zone']}: events {z['events_topic']} (from offset "
                      f"{z['events_log_start']}), checkpoints {z['checkpoints_topic']}, "
                      f"signers {', '.join(z['signers'])}; copies: {copies}")
    table = new_table("audit chains per corridor")
    for column in ("corridor", "chains", "events", "replays", "checkpoints", "unverifiable"):
        table.add_column(column, justify="left" if column == "corridor" else "right")
    for corridor, per in sorted(doc["corridors"].items()):
        table.add_row(corridor, *(str(per[k]) for k in ("chains", "events", "replays",
                                                        "checkpoints", "unverifiable")))
    console.print(table)
    if doc["ok"]:
        totals = {k: sum(p[k] for p in doc["corridors"].values())
                  for k in ("chains", "events", "checkpoints")}
        console.print(f"[green]OK[/green]: {totals['chains']} chains, {totals['events']} "
                      f"events and {totals['checkpoints']} checkpoints verified; every copy "
                      "matches its origin")
        return
    console.print(f"[red]BROKEN[/red]: first break: {escape(describe_break(doc['first_break']))}",
                  soft_wrap=True)
    for b in doc["breaks"][1:]:
        console.print(f"  then {escape(describe_break(b))}", soft_wrap=True)
    if doc["breaks_count"] > SHOWN:
        console.print(f"  ... {doc['breaks_count'] - SHOWN} more breaks")
