"""Topic names (docs/DESIGN.md section 4) and where each topic lives. Pure: no Kafka."""

from __future__ import annotations

from dataclasses import dataclass, field

from corridor.core.config import Config, Corridor, WireFormat

# Each corridor's stored source positions live in its own topic, ``offsets_topic(name)``
# (so one corridor's principal cannot write another's positions); OFFSETS is their prefix.
OFFSETS = "_corridor.offsets"
SCHEMAS = "_corridor.schemas"
KEYS = "_corridor.keys"
# Operator commands to running processors (`corridor keys rotate|retire`); not compacted:
# a processor reads only what arrives after it starts.
CONTROL = "_corridor.control"
CONTROL_CONFIG = {"retention.ms": str(7 * 24 * 3600 * 1000)}
COMPACTED = {"cleanup.policy": "compact", "min.compaction.lag.ms": "60000"}
DAY_MS = 86_400_000
BIG_MESSAGES = {"max.message.bytes": str(8 * 1024 * 1024)}


def offsets_topic(corridor_name: str) -> str:
    """The destination topic of one corridor's stored source positions."""
    return f"{OFFSETS}.{corridor_name}"


def released_topic(corridor_name: str) -> str:
    """The destination topic of one corridor's release markers (`corridor held release`):
    compacted, keyed by lineage; a marker commits with the released record."""
    return f"_corridor.released.{corridor_name}"


def outbound(zone: str, dataset: str) -> str:
    return f"{zone}.outbound.{dataset}"


def corridor_topic(origin: str, destination: str, dataset: str) -> str:
    return f"corridor.{origin}-{destination}.{dataset}"


def withheld(corridor: Corridor) -> str:
    return f"{corridor.origin}.withheld.{corridor.name}"


def quarantine(corridor: Corridor) -> str:
    return f"{corridor.origin}.quarantine.{corridor.name}"


def audit(zone: str) -> str:
    """The origin zone's hash-chained audit events (kept by time, never compacted)."""
    return f"{zone}.audit"


def audit_checkpoints(zone: str) -> str:
    """The origin zone's signed audit checkpoints (kept by time, never compacted)."""
    return f"{zone}.audit.checkpoints"


# The destination's copy of an origin's signed checkpoints: ``checkpoint_copy(origin)``.
CHECKPOINT_COPIES = "_corridor.checkpoints"


def checkpoint_copy(origin: str) -> str:
    """The destination zone's copy of ``origin``'s signed audit checkpoints."""
    return f"{CHECKPOINT_COPIES}.{origin}"


# Data subjects (corridor.core.subjects, corridor.core.consent, corridor.core.crypto.subject_keys).
SUBJECT_KEYS = "_corridor.subject_keys"  # per destination, compacted: per-subject wrapped keys


def subject_ledger(origin: str) -> str:
    """``origin``'s volume ledger (compacted, in the origin zone: subject ids never leave it),
    written by its corridors' processors with each batch's side output."""
    return f"{origin}.subjects"


def consent(zone: str) -> str:
    """The zone's consent records (compacted, in the zone itself), written by the zone's
    consent service (principal ``consent-<zone>``), read by its corridors' processors."""
    return f"{zone}.consent"


def connect_progress(zone: str) -> str:
    """The file sources' progress in ``zone`` (compacted; committed in the records' own
    transactions, see ``connectors/source``)."""
    return f"{zone}.connect.progress"


def connect_transactional_prefix(zone: str, dataset: str) -> str:
    """The transactional ids of the file sources loading ``<zone>.outbound.<dataset>``
    (one per job name)."""
    return f"corridor-connect.{zone}.outbound.{dataset}."


def dataset_of_outbound(topic: str) -> str:
    """``hk.outbound.trade.shipment`` -> ``trade.shipment``."""
    parts = topic.split(".outbound.", 1)
    if len(parts) != 2:
        raise ValueError(f"{topic!r} is not an outbound topic")
    return parts[1]


def zone_of_outbound(topic: str) -> str:
    """``hk.outbound.trade.shipment`` -> ``hk``."""
    parts = topic.split(".outbound.", 1)
    if len(parts) != 2:
        raise ValueError(f"{topic!r} is not an outbound topic")
    return parts[0]


@dataclass(frozen=True, slots=True)
class TopicPlan:
    zone: str
    name: str
    partitions: int
    config: dict[str, str] = field(default_factory=dict)


def kept_for(days: int) -> dict[str, str]:
    """The config of a topic kept by time, never compacted: ``days`` of retention."""
    return {"cleanup.policy": "delete", "retention.ms": str(days * DAY_MS)}


def topic_plan(config: Config, partitions: int = 6) -> list[TopicPlan]:
    """Every topic the corridors of ``config`` use, in the cluster where it lives.

    The audit topics (events, checkpoints and the destination's copy of the checkpoints)
    are kept by time for the file's ``audit: {retention}`` (default 3 years), never
    compacted: an audit chain must keep every event. A corridor with a transfer
    instrument keeps its corridor topics for the instrument's ``retention``."""
    plans: dict[tuple[str, str], TopicPlan] = {}
    audit_config = kept_for(config.audit.retention_days)

    def add(zone: str, name: str, parts: int, conf: dict[str, str] | None = None) -> None:
        plans.setdefault((zone, name), TopicPlan(zone, name, parts, dict(conf or {})))

    for c in config.corridors.values():
        big = BIG_MESSAGES if c.format is WireFormat.ARROW else {}
        instrument = config.instruments.get(c.instrument or "")
        kept = {"retention.ms": str(instrument.retention_days * DAY_MS)} if instrument else {}
        for ds in c.datasets:
            add(c.origin, outbound(c.origin, ds), partitions, big)
            add(c.destination, corridor_topic(c.origin, c.destination, ds), partitions,
                {**big, **kept})
        add(c.origin, connect_progress(c.origin), 1, COMPACTED)
        add(c.origin, withheld(c), partitions, COMPACTED)
        add(c.origin, quarantine(c), partitions, COMPACTED)
        add(c.origin, audit(c.origin), 1, audit_config)
        add(c.origin, audit_checkpoints(c.origin), 1, audit_config)
        add(c.destination, checkpoint_copy(c.origin), 1, audit_config)
        add(c.destination, offsets_topic(c.name), partitions, COMPACTED)
        add(c.destination, released_topic(c.name), 1, COMPACTED)
        for internal in (SCHEMAS, KEYS):
            add(c.destination, internal, 1, COMPACTED)
        add(c.destination, CONTROL, 1, CONTROL_CONFIG)
        if any(c.erasable.values()):
            add(c.destination, SUBJECT_KEYS, 1, COMPACTED)
        if any(config.datasets[d].subject is not None for d in c.datasets):
            add(c.origin, subject_ledger(c.origin), partitions, COMPACTED)
        if c.purposes:
            add(c.origin, consent(c.origin), partitions, COMPACTED)
    return sorted(plans.values(), key=lambda p: (p.zone, p.name))
