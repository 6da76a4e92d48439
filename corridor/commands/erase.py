"""`corridor erase`: erase one data subject everywhere their erasable data went, by destroying
their keys (GDPR Art. 17 and 19, PIPL Art. 47).

For each origin zone of the file's corridors with ``erasable`` fields (or ``--zone``):

1. the subject id of the raw id under the zone's subject secret (``core.subjects``), and
   per corridor the subject's *tag*, which every key record of theirs carries
   (``core.crypto.subject_keys``);
2. where they went: every destination zone of those corridors is scanned, its
   ``_corridor.subject_keys`` read to its end for key records with the tag (this finds
   the keys even for data that crossed before the ledger existed); the destinations the
   origin's volume ledger (``<origin>.subjects``, in the origin zone) names are reported
   beside, and a destination the ledger names where no key was found is flagged;
3. unless ``--dry-run``: an erasure marker over every live key id (same record key, so
   compaction removes the wrapped key and only the marker, with no key material,
   remains), acknowledged; then one announcement per corridor on the destination's
   ``_corridor.control`` (running processors drop the keys; the subject's next data gets
   a new key); then one event per origin zone on ``<zone>.audit``:
   ``{"event": "erase", ...}`` with who, when, why, the recipients (corridor and zone)
   and how many keys. This event is not part of the batches' hash chains.

Erasing twice: the second run finds only markers and says "already erased" (writes
nothing). Keys drawn after an erasure (the subject's data crossed again) are erased by the
next run. Exit status: 0 (erased, already erased, or nothing found); 2 when the file is
invalid or a cluster does not answer. Acts as the zones' admin.
"""

from __future__ import annotations

import getpass
import json
import os
import time
import uuid
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import click

from corridor.commands.options import config_option, emit_json, output_option
from corridor.core import topics
from corridor.core.config import Config
from corridor.core.crypto.secret import SecretBytes
from corridor.core.crypto.subject_keys import (
    ErasureAnnouncement,
    ErasureMarker,
    SubjectKeyBook,
    SubjectKeyRecord,
    erasure_records,
    key_id_secret,
    subject_tag,
)
from corridor.core.errors import KafkaUnavailable
from corridor.core.subjects import LedgerState, subject_id


@dataclass(frozen=True)
class Recipient:
    """One corridor the subject's erasable data crossed, and what its destination holds."""

    corridor: str
    origin: str
    zone: str
    tag: str
    live: tuple[SubjectKeyRecord, ...]
    erased: tuple[ErasureMarker, ...]

    def as_dict(self) -> dict[str, Any]:
        return {"corridor": self.corridor, "zone": self.zone, "keys": len(self.live),
                "already_erased": len(self.erased)}


@dataclass
class ErasurePlan:
    """What erasing one raw id means for one origin zone."""

    origin: str
    subject: str
    recipients: list[Recipient] = field(default_factory=list)
    ledger: list[str] | None = None  # the ledger's destinations; None: no ledger

    @property
    def live(self) -> int:
        return sum(len(r.live) for r in self.recipients)

    @property
    def unreached(self) -> list[str]:
        """Destinations the ledger names where no key of the subject was found."""
        found = {r.zone for r in self.recipients}
        return sorted(set(self.ledger or ()) - found)


def plan_erasure(config: Config, raw: str, origin: str, subject_key: SecretBytes,
                 books: Mapping[str, SubjectKeyBook], ledger: LedgerState | None
                 ) -> ErasurePlan:
    """The recipients of *raw*'s erasable data out of *origin* (values in, values out):
    *books* by destination zone, *ledger* the origin's (None: not present)."""
    return plan_subject(config, subject_id(raw, subject_key), origin, subject_key, books,
                        ledger)


def plan_subject(config: Config, subject: str, origin: str, subject_key: SecretBytes,
                 books: Mapping[str, SubjectKeyBook], ledger: LedgerState | None,
                 corridors: Collection[str] | None = None) -> ErasurePlan:
    """:func:`plan_erasure` of a subject id, over *corridors* only (None: every erasable
    corridor out of *origin*)."""
    secret = key_id_secret(subject_key)
    plan = ErasurePlan(origin, subject, ledger=None if ledger is None else
                       sorted(ledger.destinations_of(origin, subject)))
    for corridor in erasable_corridors(config, origin):
        if corridors is not None and corridor.name not in corridors:
            continue
        book = books[corridor.destination]
        tag = subject_tag(secret, corridor.name, subject)
        live, gone = tuple(book.keys_of(tag)), tuple(book.markers_of(tag))
        if live or gone:
            plan.recipients.append(Recipient(corridor.name, origin, corridor.destination, tag,
                                             live, gone))
    return plan


def erasable_corridors(config: Config, origin: str | None = None) -> list[Any]:
    """The corridors with erasable fields (out of *origin*), by name."""
    return sorted((c for c in config.corridors.values() if any(c.erasable.values())
                   and (origin is None or c.origin == origin)), key=lambda c: c.name)


def audit_event(plan: ErasurePlan, erasure_id: str, reason: str, operator: str,
                principal: str, at_ms: int, trigger: Mapping[str, Any] | None = None
                ) -> tuple[bytes, bytes]:
    """(key, value) of the erasure's audit record on the origin's audit topic; *trigger*:
    what set it off when not an operator's command (a consent withdrawal)."""
    event: dict[str, Any] = {"event": "erase", "erasure_id": erasure_id, "zone": plan.origin,
             "subject": plan.subject, "reason": reason, "operator": operator,
             "principal": principal, "ts_ms": at_ms,
             "recipients": [{"corridor": r.corridor, "zone": r.zone, "keys": len(r.live)}
                            for r in plan.recipients if r.live],
             "keys": plan.live, "ledger_destinations": plan.ledger}
    if trigger is not None:
        event["trigger"] = dict(trigger)
    return f"erase|{erasure_id}".encode(), json.dumps(event, sort_keys=True).encode()


def _operator() -> str:
    return os.environ.get("CORRIDOR_OPERATOR") or getpass.getuser()


@click.command("erase")
@click.option("--subject", "raw", required=True,
              help="The subject's raw id, as the dataset's subject field holds it.")
@click.option("--reason", required=True, help="Why (recorded in the audit), e.g. a ticket.")
@click.option("--zone", default=None, help="Origin zone of the subject (default: every origin "
                                           "with erasable corridors).")
@click.option("--dry-run", is_flag=True, help="Say what would be erased; change nothing.")
@config_option
@output_option
def erase(raw: str, reason: str, zone: str | None, dry_run: bool, config_path: str,
          output: str) -> None:
    """Erase a data subject's erasable fields in every zone they reached, by destroying the
    subject's keys: consumers then get Erased for those fields (and still read the rest).

    Writes an erasure marker over each of the subject's keys in each destination's
    `_corridor.subject_keys`, announces it on `_corridor.control`, and records who, when,
    why and the recipients in the origin's audit. Exit status: 0 done (also when already
    erased or nothing was found); 2 bad file or a cluster does not answer.
    """
    from corridor.core.config import load_config

    config = load_config(Path(config_path))
    if zone is not None and zone not in config.zones:
        raise click.BadParameter(f"unknown zone {zone!r}; known: {', '.join(config.zones)}",
                                 param_hint="--zone")
    say = (lambda text: click.echo(text, err=True)) if output == "json" else click.echo
    plans = _plans(config, raw, zone, say)
    erasure_id, at_ms = uuid.uuid4().hex[:12], int(time.time() * 1000)
    if not dry_run and any(p.live for p in plans):
        apply_erasure(config, plans, erasure_id, reason, at_ms, say, _operator())
    _report(plans, erasure_id, dry_run, output)


def _plans(config: Config, raw: str, zone: str | None, say: Any) -> list[ErasurePlan]:
    from corridor.core.subjects import subject_key
    from corridor.processor.resolve import subject_secret

    corridors = erasable_corridors(config, zone)
    books = read_books(config, corridors, say)
    plans = []
    for origin in sorted({c.origin for c in corridors}):
        key = subject_key(origin, subject_secret(config, origin))
        plans.append(plan_erasure(config, raw, origin, key, books, origin_ledger(config, origin,
                                                                                 say)))
    return plans


def read_books(config: Config, corridors: Iterable[Any], say: Any) -> dict[str, SubjectKeyBook]:
    """The subject key topic of each destination of *corridors*, as it is now (as admin)."""
    from corridor.kafka.subject_keys_topic import read_subject_keys
    from corridor.processor.resolve import admin, endpoints_for

    destinations = sorted({c.destination for c in corridors})
    where = endpoints_for(config, destinations)
    books = {}
    for dest in destinations:
        say(f"reading {topics.SUBJECT_KEYS} in {dest}")
        books[dest] = read_subject_keys(where[dest], admin())
    return books


def origin_ledger(config: Config, origin: str, say: Any) -> LedgerState | None:
    """The origin's volume ledger (which destinations a subject reached); None: no ledger."""
    from corridor.kafka.ledger import read_ledger
    from corridor.processor.resolve import admin, zone_endpoint

    say(f"reading {topics.subject_ledger(origin)} in {origin}")
    try:
        ledger, _ = read_ledger(zone_endpoint(config, origin), admin(), origin)
    except KafkaUnavailable as exc:
        if "does not exist" not in str(exc):
            raise
        return None
    return ledger


def apply_erasure(config: Config, plans: Iterable[ErasurePlan], erasure_id: str, reason: str,
                  at_ms: int, say: Any, operator: str,
                  trigger: Mapping[str, Any] | None = None) -> None:
    """Markers over each plan's live keys, the announcements, then the origin's audit event
    (as admin; see the module docstring)."""
    from corridor.kafka.io import PlainProducer
    from corridor.kafka.subject_keys_topic import announce, write_records
    from corridor.processor.resolve import admin, zone_endpoint

    who = admin()
    for plan in plans:
        if not plan.live:
            continue
        for r in (r for r in plan.recipients if r.live):
            endpoint = zone_endpoint(config, r.zone)
            book = SubjectKeyBook()
            for record in r.live:
                book.apply(record.key_id.encode(), record.to_json())
            written = write_records(endpoint, who, erasure_records(book, r.tag, erasure_id,
                                                                   at_ms))
            announce(endpoint, who, ErasureAnnouncement(
                r.corridor, erasure_id, tuple(k.key_id for k in r.live), at_ms))
            say(f"erased {written} key(s) of corridor {r.corridor} in {r.zone}")
        key, value = audit_event(plan, erasure_id, reason, operator, who.username, at_ms,
                                 trigger)
        producer = PlainProducer(zone_endpoint(config, plan.origin), who)
        producer.produce(topics.audit(plan.origin), value, key)
        producer.flush(30)
        say(f"recorded erasure {erasure_id} in {topics.audit(plan.origin)}")


def _status(plan: ErasurePlan, dry_run: bool) -> str:
    if plan.live:
        return "would erase" if dry_run else "erased"
    return "already erased" if plan.recipients else "nothing found"


def _report(plans: list[ErasurePlan], erasure_id: str, dry_run: bool, output: str) -> None:
    doc = {"erasure_id": erasure_id if any(p.live for p in plans) and not dry_run else None,
           "dry_run": dry_run,
           "origins": [{"zone": p.origin, "subject": p.subject, "status": _status(p, dry_run),
                        "recipients": [r.as_dict() for r in p.recipients],
                        "keys": p.live, "ledger_destinations": p.ledger,
                        "ledger_without_keys": p.unreached} for p in plans]}
    if output == "json":
        emit_json(doc)
        return
    if not plans:
        click.echo("no corridor of this file has erasable fields: nothing to erase")
    for p in plans:
        places = ", ".join(f"{r.corridor} -> {r.zone} ({len(r.live)} keys)"
                           for r in p.recipients) or "none"
        click.echo(f"{p.origin}: subject {p.subject}: {_status(p, dry_run)}; recipients: "
                   f"{places}")
        ledger = "not present" if p.ledger is None else ", ".join(p.ledger) or "none"
        click.echo(f"  ledger destinations: {ledger}")
        for missing in p.unreached:
            click.echo(f"  warning: the ledger says the subject reached {missing}, where no "
                       "erasable key of theirs was found (their data there is not erasable)")
    if doc["erasure_id"]:
        click.echo(f"erasure {erasure_id}: consumers now get Erased for these fields")
