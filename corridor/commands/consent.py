"""`corridor consent follow`: act on consent withdrawals, erasing what crossed if asked.

Follows ``<zone>.consent`` of each origin zone of the file's corridors with ``purposes``
(``--zone``: one) with :class:`corridor.processor.withdrawals.WithdrawalFollower`. A
withdrawal of a purpose of corridor C is due once C's ``consent_staleness_seconds`` (the
largest of the origin's corridors) has passed since it was seen, so every processor already
withholds the subject's records (``consent_withdrawn: <purpose>``). Then:

- ``--on-withdraw report`` (default): one line (``-o json``: one JSON object) per due
  withdrawal: the zone, the subject id (never the raw id), the purposes, the corridors whose
  purposes they are;
- ``--on-withdraw erase``: the same, and the subject's erasable data that crossed through
  those corridors is erased as ``corridor erase`` does (``corridor.commands.erase``: markers
  over the subject's keys, an announcement on each destination's control topic, and one
  ``{"event": "erase"}`` on the origin's audit topic whose reason names the withdrawal and
  whose ``trigger`` says ``consent_withdrawn`` with the purposes and when it was seen).
  Only the corridors whose purposes were withdrawn: a subject who withdraws ``marketing``
  keeps the data that crossed for ``order-fulfilment``. Idempotent: a subject already
  erased is reported ``already erased`` and nothing is written.

On start the view is rebuilt from the topic and every subject whose latest record withdraws
a watched purpose is queued again (a restart misses nothing; acting again is a no-op).
``--once``: act on what the topics hold now, once due, and exit. A failed erase (a cluster
does not answer) is logged and retried 10 s later. SIGTERM or Ctrl-C stops it. Acts as the
zones' admin, as ``corridor erase`` does. Exit status: 0; 2 when the file is invalid, names
no corridor with purposes, or (``erase``) no erasable field on them.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import click

from corridor import log as corridor_log
from corridor.commands.options import config_option, output_option
from corridor.core.config import Config
from corridor.core.consent import Withdrawal
from corridor.core.errors import KafkaUnavailable

RETRY_MS = 10_000
OPERATOR = "consent-follow"


@click.group("consent")
def consent() -> None:
    """Consent: follow the origin zones' consent topics and act on withdrawals."""


@consent.command("follow")
@click.option("--on-withdraw", "action", type=click.Choice(["report", "erase"]),
              default="report", show_default=True,
              help="What to do with a due withdrawal: report it, or also erase the subject's "
                   "erasable data in the corridors whose purposes it withdrew.")
@click.option("--zone", default=None, help="Follow this origin zone only (default: every "
                                           "origin of a corridor with purposes).")
@click.option("--once", is_flag=True,
              help="Act on the withdrawals the topics hold now, once due, then exit.")
@config_option
@output_option
def follow(action: str, zone: str | None, once: bool, config_path: str, output: str) -> None:
    """Follow consent withdrawals; with --on-withdraw erase, erase what crossed.

    A withdrawal is acted on once the corridor's consent_staleness_seconds have
    passed since it was seen (every processor withholds the subject by then).
    Erasing destroys the subject's keys of the corridors whose purposes were
    withdrawn, announces it, and records it in the origin's audit with the
    withdrawal as its trigger; erasing twice writes nothing. Exit status: 0;
    2 when the file is invalid or nothing in it can be followed.
    """
    from corridor.core.config import load_config

    config = load_config(Path(config_path))
    watched = watched_corridors(config, zone)
    if not watched:
        raise click.UsageError("no corridor of this file (out of --zone) declares purposes: "
                               "there is no consent to follow")
    if action == "erase" and not any(any(c.erasable.values()) for c in watched):
        raise click.UsageError("--on-withdraw erase: no corridor with purposes has erasable "
                               "fields, so nothing could be erased")
    from corridor.commands.run import install_signals

    stop = threading.Event()
    install_signals(stop)
    log = corridor_log.get_logger("corridor.consent")
    followers = _followers(config, watched, log)
    act = _Actor(config, watched, action, output, log)
    try:
        for f in followers:
            if not f.start(stop):
                return
            log.info("consent_follow_started", zone=f.zone, subjects=len(f.view),
                     waiting=len(f.queue), bound_ms=f.queue.bound_ms, on_withdraw=action)
        while not stop.is_set():
            for f in followers:
                for w in f.poll():
                    if not act(f.zone, w):
                        f.retry_later(w, RETRY_MS)
            if once and not any(len(f.queue) for f in followers):
                break
            stop.wait(0.5)
    finally:
        for f in followers:
            f.close()


def watched_corridors(config: Config, zone: str | None) -> list[Any]:
    """The corridors with purposes (out of *zone*), by name."""
    if zone is not None and zone not in config.zones:
        raise click.BadParameter(f"unknown zone {zone!r}; known: {', '.join(config.zones)}",
                                 param_hint="--zone")
    return sorted((c for c in config.corridors.values() if c.purposes
                   and (zone is None or c.origin == zone)), key=lambda c: c.name)


def concerned(corridors: list[Any], origin: str, purposes: frozenset[str],
              erasable: bool = False) -> list[str]:
    """Names of *origin*'s corridors one of whose purposes is in *purposes* (and, if
    *erasable*, with erasable fields)."""
    return [c.name for c in corridors if c.origin == origin and purposes & set(c.purposes)
            and (not erasable or any(c.erasable.values()))]


def _followers(config: Config, watched: list[Any], log: Any) -> list[Any]:
    from corridor.core import topics
    from corridor.core.subjects import subject_key
    from corridor.kafka.ledger import TopicFeed
    from corridor.processor.resolve import admin, zone_endpoint
    from corridor.processor.withdrawals import WithdrawalFollower

    def notify(event: str, fields: dict[str, Any]) -> None:
        (log.warning if event == "origin_unavailable" else log.info)(event, **fields)

    def feed(origin: str) -> Callable[[], TopicFeed]:
        endpoint = zone_endpoint(config, origin)
        return lambda: TopicFeed(endpoint, admin(), topics.consent(origin))

    out = []
    for origin in sorted({c.origin for c in watched}):
        mine = [c for c in watched if c.origin == origin]
        out.append(WithdrawalFollower(
            origin, subject_key(origin, _secret(config, origin)),
            {p for c in mine for p in c.purposes},
            max(c.consent_staleness_s for c in mine) * 1000, feed(origin), notify))
    return out


def _secret(config: Config, origin: str) -> Any:
    from corridor.processor.resolve import subject_secret

    return subject_secret(config, origin)


class _Actor:
    """What is done with one due withdrawal: reported, and erased if asked. Returns False
    when it must be tried again (a cluster did not answer)."""

    def __init__(self, config: Config, watched: list[Any], action: str, output: str,
                 log: Any) -> None:
        self.config, self.watched, self.action, self.log = config, watched, action, log
        self.emit: Callable[[Mapping[str, Any]], None] = (
            (lambda doc: click.echo(json.dumps(doc, sort_keys=True))) if output == "json"
            else (lambda doc: click.echo(_text(doc))))

    def __call__(self, origin: str, w: Withdrawal) -> bool:
        doc: dict[str, Any] = {"zone": origin, "subject": w.subject,
                               "purposes": sorted(w.purposes), "seen_ms": w.seen_ms,
                               "corridors": concerned(self.watched, origin, w.purposes)}
        if self.action == "erase":
            try:
                doc.update(self._erase(origin, w))
            except KafkaUnavailable as exc:
                self.log.warning("withdrawal_erase_failed", zone=origin, subject=w.subject,
                                 error=str(exc), retry_in_ms=RETRY_MS)
                return False
        else:
            doc["action"] = "reported"
        self.log.info("consent_withdrawal_due", **doc)
        self.emit(doc)
        return True

    def _erase(self, origin: str, w: Withdrawal) -> dict[str, Any]:
        from corridor.commands.erase import (
            apply_erasure,
            origin_ledger,
            plan_subject,
            read_books,
        )
        from corridor.core.subjects import subject_key

        names = concerned(self.watched, origin, w.purposes, erasable=True)
        if not names:
            return {"action": "nothing erasable", "erased": []}
        quiet: Callable[[str], None] = lambda _text: None  # noqa: E731
        corridors = [self.config.corridors[n] for n in names]
        key = subject_key(origin, _secret(self.config, origin))
        plan = plan_subject(self.config, w.subject, origin, key,
                            read_books(self.config, corridors, quiet),
                            origin_ledger(self.config, origin, quiet), names)
        status = "erased" if plan.live else ("already erased" if plan.recipients
                                             else "nothing found")
        erasure_id = None
        if plan.live:
            erasure_id = uuid.uuid4().hex[:12]
            purposes = ", ".join(sorted(w.purposes))
            apply_erasure(self.config, [plan], erasure_id, f"consent withdrawn: {purposes}",
                          int(time.time() * 1000), quiet, OPERATOR,
                          {"consent_withdrawn": sorted(w.purposes), "seen_ms": w.seen_ms})
        return {"action": status, "erasure_id": erasure_id, "keys": plan.live,
                "erased": [{"corridor": r.corridor, "zone": r.zone, "keys": len(r.live)}
                           for r in plan.recipients if r.live]}


def _text(doc: Mapping[str, Any]) -> str:
    where = ", ".join(doc["corridors"]) or "no corridor"
    line = (f"{doc['zone']}: subject {doc['subject']} withdrew {', '.join(doc['purposes'])} "
            f"({where}): {doc['action']}")
    if doc.get("erasure_id"):
        places = ", ".join(f"{e['corridor']} -> {e['zone']}" for e in doc["erased"])
        line += f" {doc['keys']} key(s) in {places} (erasure {doc['erasure_id']})"
    return line
