"""Who may do what: the principals of a corridor file and their least rights. Pure: no Kafka.

One SCRAM principal per role (docs/DESIGN.md section 11):

- ``park-<zone>-<dataset>``: one per dataset a zone sends out (zone names have
  no ``-``, so the name is unambiguous). Writes only ``<zone>.outbound.<dataset>``, and,
  for the file sources (``corridor connect source file``), reads and writes the zone's
  ``<zone>.connect.progress`` under transactional ids
  ``corridor-connect.<zone>.outbound.<dataset>.*``.
- ``corridor-<name>``: the corridor's processor. In the origin: reads its
  source topics as group ``corridor.<name>``, writes its withheld and
  quarantine topics and the zone's audit topics (events and signed checkpoints). In the
  destination: writes its corridor topics, its own ``_corridor.offsets.<name>``, the
  shared ``_corridor.schemas|keys`` (and ``_corridor.subject_keys`` when it has erasable
  fields, which it also reads back) and the copy of its origin's checkpoints
  ``_corridor.checkpoints.<origin>`` under transactional ids ``corridor.<name>.*``, and
  reads its ``_corridor.offsets.<name>`` back (with the
  OffsetReader's random ``corridor-offset-reader-*`` group), the published data
  keys of ``_corridor.keys`` and the operator's ``_corridor.control`` commands. For
  `corridor held release`: reads its withheld and quarantine topics, and reads and
  writes its ``_corridor.released.<name>``.
- ``analytics-<zone>``: consumers in a destination zone. Reads the corridor
  topics that arrive in its zone, plus ``_corridor.schemas`` and
  ``_corridor.keys`` (the SDK needs the egress schemas, and the data keys are
  wrapped by the zone's own KEK; ``_corridor.subject_keys`` too where a corridor into the
  zone has erasable fields), in groups ``analytics-<zone>*`` or the SDK's
  random ``corridor-reader-*`` readers. Never withheld, quarantine, audit or
  any ``_corridor.offsets.*``.
- ``auditor-<zone>``: one per zone of the corridors; reads the zone's evidence and no
  data. As an origin: ``<zone>.audit`` and ``<zone>.audit.checkpoints``; as a
  destination: the copies of the origins' checkpoints (``_corridor.checkpoints.*``) and
  the schema catalog ``_corridor.schemas``. No group: it reads by assignment and
  commits nothing. Never a data, withheld, quarantine or offsets topic; never a write.
- ``consent-<zone>``: the consent service of an origin zone whose corridors declare
  ``purposes:``. Writes only ``<zone>.consent`` (subject -> purposes; the corridors' processors
  read it). A principal of its own rather than the parks': a park writes its dataset and
  nothing else, and the consent service is the one party that may change a consent.

Data subjects: a corridor whose datasets name their subject also reads and writes its origin
zone's volume ledger ``<zone>.subjects``, and one with ``purposes:`` reads ``<zone>.consent``,
both by assignment, in the random reader groups ``corridor-reader-*`` (librdkafka asks a
group's coordinator even for an assigned reader; nothing is committed).

Each ``ZoneGrant`` names the zone whose cluster holds the resource. READ and
WRITE imply DESCRIBE in Kafka; DESCRIBE is still granted explicitly so that
the table says what each principal may see. Since KIP-679 an idempotent
producer needs WRITE on its topics, not IDEMPOTENT_WRITE on the cluster.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol, TypeVar

from corridor.core import topics
from corridor.core.config import Config, Corridor

PARK, CORRIDOR, ANALYTICS, AUDITOR = "park", "corridor", "analytics", "auditor"
CONSENT = "consent"
OFFSET_READER_GROUPS = "corridor-offset-reader-"
SDK_READER_GROUPS = "corridor-reader-"
# The operator's commands to running processors (corridor/kafka/keys_topic.py): read by
# every processor of the destination with a random group id.
CONTROL_TOPIC = "_corridor.control"
CONTROL_GROUPS = "corridor-control-"


class _HasPrincipal(Protocol):
    @property
    def principal(self) -> str: ...

    def __hash__(self) -> int: ...


_G = TypeVar("_G", bound=_HasPrincipal)


@dataclass(frozen=True, slots=True, order=True)
class ZoneGrant:
    """ALLOW ``operation`` on a resource to ``principal``, in ``zone``'s cluster.

    ``resource`` is "topic", "group" or "transactional_id"; ``prefixed`` makes
    ``name`` a prefix pattern.
    """

    zone: str
    principal: str
    operation: str
    resource: str
    name: str
    prefixed: bool = False

    @property
    def pattern(self) -> str:
        return f"{self.name}*" if self.prefixed else self.name


@dataclass(frozen=True, slots=True)
class PrincipalSpec:
    """One principal of the file: its name, role and the zone or corridor it serves."""

    name: str
    role: str
    serves: str


def park_principal(zone: str, dataset: str) -> str:
    return f"park-{zone}-{dataset}"


def corridor_principal(corridor: str) -> str:
    return f"corridor-{corridor}"


def analytics_principal(zone: str) -> str:
    return f"analytics-{zone}"


def auditor_principal(zone: str) -> str:
    return f"auditor-{zone}"


def consent_principal(zone: str) -> str:
    return f"consent-{zone}"


def transactional_prefix(corridor: str) -> str:
    """Every transactional id of corridor ``corridor`` starts with this (see processor)."""
    return f"corridor.{corridor}."


def consumer_group(corridor: str) -> str:
    return f"corridor.{corridor}"


def principals(config: Config) -> list[PrincipalSpec]:
    """Every principal the file needs, sorted by role then name."""
    found: dict[str, PrincipalSpec] = {}
    for c in config.corridors.values():
        for ds in c.datasets:
            name = park_principal(c.origin, ds)
            found[name] = PrincipalSpec(name, PARK, f"{c.origin}:{ds}")
        found[corridor_principal(c.name)] = PrincipalSpec(corridor_principal(c.name), CORRIDOR,
                                                          c.name)
        found[analytics_principal(c.destination)] = PrincipalSpec(
            analytics_principal(c.destination), ANALYTICS, c.destination)
        for zone in (c.origin, c.destination):
            found[auditor_principal(zone)] = PrincipalSpec(auditor_principal(zone), AUDITOR,
                                                           zone)
        if c.purposes:
            found[consent_principal(c.origin)] = PrincipalSpec(consent_principal(c.origin),
                                                               CONSENT, c.origin)
    order = {PARK: 0, CORRIDOR: 1, ANALYTICS: 2, AUDITOR: 3, CONSENT: 4}
    return sorted(found.values(), key=lambda p: (order[p.role], p.name))


def grants(config: Config) -> list[ZoneGrant]:
    """The least rights of every principal of the file, sorted and without duplicates."""
    out: set[ZoneGrant] = set()
    for c in config.corridors.values():
        out |= _park_grants(c)
        out |= _corridor_grants(c)
        out |= _analytics_grants(c)
        out |= _auditor_grants(c)
        out |= _subject_grants(c, any(config.datasets[d].subject is not None
                                      for d in c.datasets))
    return sorted(out)


def _topic(zone: str, who: str, name: str, *operations: str) -> set[ZoneGrant]:
    return {ZoneGrant(zone, who, op, "topic", name) for op in operations}


def _park_grants(c: Corridor) -> set[ZoneGrant]:
    out: set[ZoneGrant] = set()
    for ds in c.datasets:
        who = park_principal(c.origin, ds)
        out |= _topic(c.origin, who, topics.outbound(c.origin, ds), "write", "describe")
        # `corridor connect source file` as the park: its progress, in its own transactions.
        out |= _topic(c.origin, who, topics.connect_progress(c.origin), "read", "write",
                      "describe")
        out |= {ZoneGrant(c.origin, who, op, "transactional_id",
                          topics.connect_transactional_prefix(c.origin, ds), prefixed=True)
                for op in ("write", "describe")}
    return out


def _corridor_grants(c: Corridor) -> set[ZoneGrant]:
    who, origin, dest = corridor_principal(c.name), c.origin, c.destination
    out: set[ZoneGrant] = set()
    # Origin: read the sources in the corridor's own group; write side outputs.
    for ds in c.datasets:
        out |= _topic(origin, who, topics.outbound(origin, ds), "read", "describe")
    out.add(ZoneGrant(origin, who, "read", "group", consumer_group(c.name)))
    for side in (topics.withheld(c), topics.quarantine(c), topics.audit(origin),
                 topics.audit_checkpoints(origin)):
        out |= _topic(origin, who, side, "write", "describe")
    # Destination: transactional writes of the corridor topics and the catalog.
    for ds in c.datasets:
        out |= _topic(dest, who, topics.corridor_topic(origin, dest, ds), "write", "describe")
    for internal in (topics.offsets_topic(c.name), topics.SCHEMAS, topics.KEYS,
                     topics.checkpoint_copy(origin)):
        out |= _topic(dest, who, internal, "write", "describe")
    # Read back: its stored offsets, the published data keys (key epochs), operator commands.
    out |= _topic(dest, who, topics.offsets_topic(c.name), "read")
    out |= _topic(dest, who, topics.KEYS, "read")
    out |= _topic(dest, who, CONTROL_TOPIC, "read", "describe")
    if any(c.erasable.values()):  # per-subject keys: written with the batches, read back
        out |= _topic(dest, who, topics.SUBJECT_KEYS, "write", "read", "describe")
    for prefix in (OFFSET_READER_GROUPS, SDK_READER_GROUPS, CONTROL_GROUPS):
        out.add(ZoneGrant(dest, who, "read", "group", prefix, prefixed=True))
    # `corridor held release` runs as this principal: it reads what the corridor held back
    # (with the random ``corridor-reader-*`` readers) and reads and writes its release markers.
    for side in (topics.withheld(c), topics.quarantine(c)):
        out |= _topic(origin, who, side, "read")
    out.add(ZoneGrant(origin, who, "read", "group", SDK_READER_GROUPS, prefixed=True))
    out |= _topic(dest, who, topics.released_topic(c.name), "read", "write", "describe")
    for op in ("write", "describe"):
        out.add(ZoneGrant(dest, who, op, "transactional_id", transactional_prefix(c.name),
                          prefixed=True))
    return out


def _analytics_grants(c: Corridor) -> set[ZoneGrant]:
    dest = c.destination
    who = analytics_principal(dest)
    out: set[ZoneGrant] = set()
    for ds in c.datasets:
        out |= _topic(dest, who, topics.corridor_topic(c.origin, dest, ds), "read", "describe")
    for catalog in (topics.SCHEMAS, topics.KEYS):
        out |= _topic(dest, who, catalog, "read", "describe")
    if any(c.erasable.values()):  # per-subject keys, wrapped by the zone's own KEK
        out |= _topic(dest, who, topics.SUBJECT_KEYS, "read", "describe")
    for prefix in (f"{who}", SDK_READER_GROUPS):
        out.add(ZoneGrant(dest, who, "read", "group", prefix, prefixed=True))
    return out


def _auditor_grants(c: Corridor) -> set[ZoneGrant]:
    origin, dest = c.origin, c.destination
    out: set[ZoneGrant] = set()
    for evidence in (topics.audit(origin), topics.audit_checkpoints(origin)):
        out |= _topic(origin, auditor_principal(origin), evidence, "read", "describe")
    who = auditor_principal(dest)
    out |= {ZoneGrant(dest, who, op, "topic", f"{topics.CHECKPOINT_COPIES}.", prefixed=True)
            for op in ("read", "describe")}
    out |= _topic(dest, who, topics.SCHEMAS, "read", "describe")
    return out


def _subject_grants(c: Corridor, counts: bool) -> set[ZoneGrant]:
    """The origin's ledger for a corridor whose datasets name their subject (*counts*); its
    consent topic for one with purposes, and the zone's consent service writing it."""
    out: set[ZoneGrant] = set()
    who, origin = corridor_principal(c.name), c.origin
    if counts or c.purposes:
        out.add(ZoneGrant(origin, who, "read", "group", SDK_READER_GROUPS, prefixed=True))
    if counts:
        out |= _topic(origin, who, topics.subject_ledger(origin), "read", "write", "describe")
    if c.purposes:
        out |= _topic(origin, who, topics.consent(origin), "read", "describe")
        out |= _topic(origin, consent_principal(origin), topics.consent(origin), "write",
                      "describe")
    return out


def by_principal(granted: Iterable[ZoneGrant]) -> dict[str, list[ZoneGrant]]:
    """Grants grouped by principal (each list sorted)."""
    out: dict[str, list[ZoneGrant]] = defaultdict(list)
    for g in sorted(granted):
        out[g.principal].append(g)
    return dict(out)


def describe(grant: ZoneGrant) -> str:
    """``write topic hk.outbound.trade.shipment`` (a prefix ends in ``*``)."""
    return f"{grant.operation} {grant.resource} {grant.pattern}"


def changes(desired: Iterable[_G], existing: Iterable[_G],
            managed: Iterable[str]) -> tuple[list[_G], list[_G]]:
    """(to add, to remove) to turn ``existing`` into ``desired`` for ``managed`` principals.

    Grants of principals this file does not manage (other files, operators,
    tests) are never removed.
    """
    want, have, ours = set(desired), set(existing), set(managed)
    add = sorted(want - have, key=repr)
    remove = sorted((g for g in have - want if g.principal in ours), key=repr)
    return add, remove
