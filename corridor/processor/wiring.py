"""Wiring for `corridor run`: endpoints, principals, keys and secrets -> running corridors.

Where things are comes from ``corridor.processor.resolve`` (the one resolver, also
used by every command and the SDK); this module builds and starts the runners.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from corridor.core import topics
from corridor.core.acl import corridor_principal
from corridor.core.config import Config, KeyTreatment, Transform
from corridor.core.config.rotation import RotationSchedule, rotation_for
from corridor.core.crypto import DataKeyRing
from corridor.core.crypto.rotation import latest_epoch
from corridor.core.errors import CorridorError, KafkaUnavailable
from corridor.core.plan import CorridorPlan, build_plan
from corridor.core.policy.subjects import ledger_classes
from corridor.core.subjects import subject_key
from corridor.kafka.clients import Endpoint
from corridor.kafka.keys_topic import published_keys
from corridor.kafka.ledger import TopicFeed
from corridor.kafka.subject_keys_topic import ErasureListener, read_subject_keys
from corridor.processor.metrics import CorridorMetrics, Health, RunObserver
from corridor.processor.resolve import (
    audit_signing_key,
    credentials,
    endpoints_for,
    kek_provider,
    pseudonym_secret,
    schema_registry,
    subject_secret,
)
from corridor.processor.runner import CorridorRunner, Log
from corridor.processor.subject_keys import Notify, SubjectKeyKeeper
from corridor.processor.subjects import SubjectGate
from corridor.zones.credentials import Principal


def encrypts(config: Config, corridor_name: str) -> bool:
    """A field or a record key of the corridor is encrypted: it needs a data key."""
    corridor = config.corridors[corridor_name]
    return any(t in (Transform.ENCRYPT, Transform.ENCRYPT_DETERMINISTIC)
               for fields in corridor.transform.values() for t in fields.values()) or any(
        corridor.key_treatment(d) is KeyTreatment.ENCRYPT_DETERMINISTIC
        for d in corridor.datasets)


def pseudonymizes(config: Config, corridor_name: str) -> bool:
    """A field or a record key (the default) of the corridor is pseudonymized."""
    corridor = config.corridors[corridor_name]
    return any(t is Transform.PSEUDONYMIZE
               for fields in corridor.transform.values() for t in fields.values()) or any(
        corridor.key_treatment(d) is KeyTreatment.PSEUDONYMIZE for d in corridor.datasets)


def make_runner(config: Config, name: str, instance: str, logger: Any,
                schedule: RotationSchedule | None = None,
                metrics: CorridorMetrics | None = None,
                health: dict[str, Health] | None = None,
                wall_ms: Callable[[], int] | None = None) -> CorridorRunner:
    """One corridor's runner. Its first data key is drawn here (epoch one past the highest
    published for the corridor) and wrapped when the runner starts (see processor.keys).
    ``schedule`` (the run flags) overrides the corridor's ``rotate`` from the file;
    ``metrics`` and ``health`` (corridor name -> Health, filled here) feed /metrics,
    /healthz and /readyz; ``wall_ms`` replaces the wall clock (Unix ms) of record time,
    audit events and instrument expiry (tests)."""
    corridor = config.corridors[name]
    # The ring rotates only when the publisher asks (processor.keys applies the schedule).
    ring = DataKeyRing() if encrypts(config, name) else None
    provider = kek_provider(config, corridor.destination) if ring is not None else None
    endpoints = endpoints_for(config)
    principal = runner_principal(name, logger)
    if ring is not None:
        ring.rotate(name, at_least=_next_epoch(endpoints[corridor.destination], principal, name,
                                               logger))
    secret = pseudonym_secret(config, name) if pseudonymizes(config, name) else None
    plan = build_plan(config, name, ring, secret)
    observer = RunObserver(name, corridor.destination, metrics)
    if health is not None:
        health[name] = observer.health
    # The origin's registry resolves the writer schemas of Confluent-framed input; the
    # destination's receives the egress schemas of a ``wire: confluent`` corridor.
    egress_registry = (schema_registry(config, corridor.destination) if plan.confluent
                       else None)
    clock = {"wall_ms": wall_ms} if wall_ms is not None else {}
    keeper = (_subject_keys(config, name, endpoints[corridor.destination], principal, provider)
              if provider is not None and any(corridor.erasable.values()) else None)
    subjects = subject_gate(config, plan, endpoints[corridor.origin], principal,
                            logger.bind(corridor=name, instance=instance), observer)
    return CorridorRunner(config, plan, endpoints, principal, logger, instance, data_keys=ring,
                          kek_provider=provider, rotation=rotation_for(corridor, schedule),
                          observer=observer, registry=schema_registry(config, corridor.origin),
                          egress_registry=egress_registry,
                          signer=audit_signing_key(config, corridor.origin),
                          audit=config.audit, subject_keys=keeper, subjects=subjects, **clock)


def _subject_keys(config: Config, name: str, destination: Endpoint, principal: Principal,
                  provider: Any) -> Callable[[Notify, Log], SubjectKeyKeeper]:
    """The maker of the corridor's subject key keeper (erasable fields): the origin zone's
    subject key, the destination's KEK, its subject key topic and control topic."""
    corridor = config.corridors[name]
    key = subject_key(corridor.origin, subject_secret(config, corridor.origin))

    def make(notify: Notify, log: Log) -> SubjectKeyKeeper:
        return SubjectKeyKeeper(
            name, corridor.destination, key, provider,
            lambda: read_subject_keys(destination, principal), notify, log,
            lambda: ErasureListener(destination, principal, name))

    return make


def subject_gate(config: Config, plan: CorridorPlan, origin: Endpoint, principal: Principal,
                 logger: Any, observer: RunObserver) -> SubjectGate | None:
    """The corridor's ledger and consent view (processor.subjects); None when none of its
    datasets names its subject."""
    if all(d.subject is None for d in plan.datasets.values()):
        return None
    key = subject_key(plan.origin, subject_secret(config, plan.origin))
    consent = ((lambda: TopicFeed(origin, principal, topics.consent(plan.origin)))
               if plan.purposes else None)
    return SubjectGate(
        plan, key, ledger_classes(config, plan),
        ledger_feed=lambda: TopicFeed(origin, principal, topics.subject_ledger(plan.origin)),
        consent_feed=consent, log=logger, observer=observer,
        bound_ms=config.corridors[plan.name].consent_staleness_s * 1000)


def _next_epoch(endpoint: Endpoint, principal: Principal, name: str, logger: Any) -> int:
    """One past the corridor's highest published epoch, so epochs count up across restarts
    and instances (``keys retire --before-epoch`` relies on it); 1 if unreadable."""
    try:
        return latest_epoch(published_keys(endpoint, principal, timeout_s=20), name) + 1
    except KafkaUnavailable as exc:
        logger.warning("key_epochs_unknown", corridor=name, error=str(exc))
        return 1


def runner_principal(name: str, logger: Any) -> Principal:
    """The corridor's own principal ``corridor-<name>`` once `corridor provision --acls` made it.

    Before that (a file never provisioned with --acls, as in most tests), the
    admin runs the corridor and a warning says so.
    """
    creds = credentials()
    own = creds.principals.get(corridor_principal(name))
    if own is not None:
        return own
    logger.warning("running_as_admin", corridor=name, principal=creds.admin.username,
                   reason=f"no principal {corridor_principal(name)} in {creds.path}: "
                          "run `corridor provision --acls`")
    return creds.admin


def start_runners(config: Config, names: list[str], instance: str, stop: threading.Event,
                  logger: Any, schedule: RotationSchedule | None = None,
                  metrics: CorridorMetrics | None = None,
                  health: dict[str, Health] | None = None,
                  ) -> tuple[list[CorridorRunner], list[threading.Thread], list[tuple[str, str]]]:
    """Build one runner per corridor (failing fast on bad keys or config), each in a thread.

    ``schedule`` rotates every corridor's data key every N records / T seconds; None: each
    corridor's ``rotate`` from the file (or no scheduled rotation)."""
    runners = [make_runner(config, name, instance, logger, schedule=schedule, metrics=metrics,
                           health=health) for name in names]
    failures: list[tuple[str, str]] = []
    threads = []
    for runner in runners:
        def target(r: CorridorRunner = runner) -> None:
            try:
                r.run(stop)
            except CorridorError as exc:
                failures.append((r.corridor.name, str(exc)))
                logger.error("corridor_failed", corridor=r.corridor.name, error=str(exc))
                stop.set()
            except Exception as exc:
                failures.append((r.corridor.name, repr(exc)))
                logger.exception("corridor_crashed", corridor=r.corridor.name)
                stop.set()
        thread = threading.Thread(target=target, name=f"corridor-{runner.corridor.name}",
                                  daemon=True)
        thread.start()
        threads.append(thread)
    return runners, threads, failures


def caught_up(runners: list[CorridorRunner], idle_ms: int) -> bool:
    """Every runner owns partitions, has nothing left on them, and has been quiet ``idle_ms``."""
    now = time.monotonic()
    for r in runners:
        quiet_since = max(r.stats.last_delivery, r.stats.started)
        if (now - quiet_since) * 1000 < idle_ms or r.stats.lag != 0:
            return False
    return True
