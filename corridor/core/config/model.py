"""corridors.yaml -> a frozen, typed model, validated once at load.

:func:`load_config` reads the file, checks everything it can check without a
broker (keys, zones, schemas, rules, transforms, leaks) and raises
:class:`~corridor.core.errors.ConfigErrors` listing *every* problem, each with file,
line, dotted field path and what was expected. A Config that loads is one the
plan can run: in particular no ``sensitive`` field crosses any corridor
untransformed.

Model (all values frozen):

- ``Config(path, zones, datasets, corridors, instruments, audit)``; ``audit``: the
  ``AuditSettings`` of the optional top-level ``audit:`` section
- ``Instrument(id, kind, reference, parties, signed, expires, purpose, retention_days)``
- ``Zone(name, bootstrap, jurisdiction, keys: KeysConfig, schema_registry:
  SchemaRegistryConfig | None, thresholds: Thresholds | None)``
- ``Dataset(name, schema_path, schema, fields, record_class, validate, key_class, subject)``;
  ``fields`` maps dotted paths to a FieldClass; an unlisted field is
  ``internal``, and a nested field inherits its nearest listed ancestor's class
  (see :meth:`Dataset.class_of`).
- ``Corridor(name, origin, destination, datasets, legal_basis, format,
  withhold, transform, admit, pseudonym_key, batch, policy_hash, rotate, key,
  headers, wire, instrument, purposes, erasable)``; ``key`` is the record key's treatment per dataset, ``headers`` the
  park headers allowed to cross, ``wire`` the framing of avro records (``OutputWire``);
  ``withhold`` and ``transform`` are per dataset, already merged from the
  corridor level and the per-dataset override form.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import Enum
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING

from corridor.core.config.rotation import RotationSchedule
from corridor.core.wire import policy_id

if TYPE_CHECKING:
    from corridor.core.rules import Rule
    from corridor.core.schema import AvroSchema


class FieldClass(str, Enum):
    """Classification of a field, lowest to highest (see :attr:`rank`)."""

    PUBLIC = "public"
    INTERNAL = "internal"
    PERSONAL = "personal"
    SENSITIVE = "sensitive"

    @property
    def rank(self) -> int:
        return list(FieldClass).index(self)


class Transform(str, Enum):
    """What a corridor does to a field before it crosses."""

    DROP = "drop"
    MASK = "mask"
    PSEUDONYMIZE = "pseudonymize"
    ENCRYPT = "encrypt"
    ENCRYPT_DETERMINISTIC = "encrypt-deterministic"


class KeyTreatment(str, Enum):
    """What a corridor does to the Kafka record key before it crosses (docs/DESIGN.md section 6).

    ``pseudonymize`` (the default): the HMAC token of the key's bytes under the
    corridor's pseudonym key, as UTF-8 (equal keys stay equal, so per-key order
    and joins survive; a UTF-8 key's token equals the token of the same string in a
    pseudonymized field). ``encrypt-deterministic``: AES-GCM-SIV of the key's
    bytes (equal keys, equal ciphertexts; the consumer SDK decrypts it).
    ``drop``: the key becomes null. ``keep``: the key's bytes as they are, allowed
    only for a key declared ``public`` or ``internal``. A null key stays null.
    """

    KEEP = "keep"
    DROP = "drop"
    PSEUDONYMIZE = "pseudonymize"
    ENCRYPT_DETERMINISTIC = "encrypt-deterministic"


class OnReach(str, Enum):
    """What a zone's volume ledger does at a ceiling (``thresholds: {on_reach: ...}``): ``warn``
    only says so; ``withhold-new-subjects`` withholds the records of subjects not yet counted
    this year (``volume_threshold``) while subjects already counted keep crossing."""

    WARN = "warn"
    WITHHOLD_NEW_SUBJECTS = "withhold-new-subjects"


class RecordKind(str, Enum):
    """Class of a whole record: important when its dataset's record_class rule holds."""

    NORMAL = "normal"
    IMPORTANT = "important"


class WireFormat(str, Enum):
    """Encoding of the corridor's output topic (docs/DESIGN.md section 5)."""

    AVRO = "avro"
    ARROW = "arrow"


class OutputWire(str, Enum):
    """Framing of an avro-format corridor's records (``wire:``): ``single-object`` (Avro's
    ``C3 01`` + fingerprint; the egress schema is in ``_corridor.schemas``) or ``confluent``
    (``00`` + the egress schema's id in the DESTINATION zone's schema registry, where it is
    registered under ``<corridor topic>-value``, for the ecosystem's deserializers)."""

    SINGLE_OBJECT = "single-object"
    CONFLUENT = "confluent"


@dataclass(frozen=True)
class KeysConfig:
    """Where a zone's key encryption key lives.

    ``provider`` is ``local`` (keyring of 0600 files under ``path``) or ``vault``
    (Vault/OpenBao transit: ``addr``, ``mount``, ``transit_key``; the token is
    read from the environment variable named ``token_env``, never from the file).
    """

    provider: str
    path: Path | None = None
    addr: str | None = None
    mount: str = "transit"
    transit_key: str | None = None
    token_env: str = "VAULT_TOKEN"


@dataclass(frozen=True)
class SchemaRegistryConfig:
    """A zone's schema registry, spoken to through the Confluent-compatible REST API.

    ``url`` is that API's base (``http://127.0.0.1:19081/apis/ccompat/v7``), without
    credentials. With basic auth, the user and password are read from the environment
    variables named ``user_env`` and ``password_env`` (both or neither), never from the file.
    Not part of the policy hash: where schemas are looked up does not change what crosses.
    """

    url: str
    user_env: str | None = None
    password_env: str | None = None


@dataclass(frozen=True)
class Thresholds:
    """An origin zone's yearly ceilings of distinct data subjects (``thresholds:``):
    ``personal`` counts the subjects whose personal (or sensitive) data crossed, ``sensitive``
    those whose sensitive data crossed (None: no ceiling for that class). At 80% of a
    ceiling the processor warns; at the ceiling it does what ``on_reach`` says
    (``corridor.core.subjects``). Part of the policy hash of the zone's corridors when
    ``on_reach`` withholds (then it changes what crosses)."""

    personal: int | None
    sensitive: int | None
    on_reach: OnReach = OnReach.WARN

    def ceiling(self, field_class: FieldClass) -> int | None:
        """The ceiling of *field_class* (personal or sensitive), None when it has none."""
        if field_class is FieldClass.SENSITIVE:
            return self.sensitive
        return self.personal if field_class is FieldClass.PERSONAL else None


@dataclass(frozen=True)
class Zone:
    """One Kafka cluster under one jurisdiction. ``bootstrap`` is 'host:port[,host:port...]'.
    ``schema_registry``: where the zone's parks register the schemas of Confluent-framed
    records (None: the zone has none)."""

    name: str
    bootstrap: str
    jurisdiction: str
    keys: KeysConfig
    schema_registry: SchemaRegistryConfig | None = None
    # Yearly ceilings of distinct data subjects exported from this zone; None: none.
    thresholds: Thresholds | None = None


@dataclass(frozen=True)
class RecordClass:
    """How to tell an important record: ``important_when`` holds (null counts as important)."""

    field: str
    important_when: Rule


@dataclass(frozen=True)
class Dataset:
    """A record type parks produce, with its schema and per-field classification."""

    name: str
    schema_path: Path
    schema: AvroSchema
    fields: Mapping[str, FieldClass]
    record_class: RecordClass | None
    validate: tuple[Rule, ...]
    # The Kafka record key's class (``key: {class: ...}``); undeclared keys are personal.
    key_class: FieldClass = FieldClass.PERSONAL
    # The dotted path of the field naming the record's data subject (``subject:``): a
    # personal or sensitive string, int or long field. None: the dataset names none.
    subject: str | None = None

    def class_of(self, path: str) -> FieldClass:
        """Class of dotted *path*: its entry, else its nearest listed ancestor's, else internal."""
        parts = path.split(".")
        for end in range(len(parts), 0, -1):
            found = self.fields.get(".".join(parts[:end]))
            if found is not None:
                return found
        return FieldClass.INTERNAL

    def paths_of_class(self, field_class: FieldClass) -> tuple[str, ...]:
        """Listed paths classed exactly *field_class*, in file order."""
        return tuple(p for p, c in self.fields.items() if c is field_class)


@dataclass(frozen=True)
class Instrument:
    """A transfer instrument (``instruments: {<id>: ...}``): the legal document a corridor
    runs under. ``kind`` is one of ``config.instruments.KINDS``; ``expires`` is the last day
    it is in force; ``retention_days`` how long the destination may keep what crossed."""

    id: str
    kind: str
    reference: str
    parties: tuple[str, ...]
    signed: dt.date
    expires: dt.date
    purpose: str
    retention_days: int


@dataclass(frozen=True)
class BatchSettings:
    """Processor batching: at most ``max_records`` per batch, waiting at most ``max_wait_ms``.

    10000 by measurement (make bench, 200k records, 6 partitions, 2 CPUs): 500 gives
    19k rec/s and cannot keep up with half of that (one transaction per source
    partition per batch dominates); 2000: 37k rec/s, p99 647 ms; 10000: 40k rec/s,
    p99 487 ms, peak RSS 342 MiB.
    """

    max_records: int = 10000
    max_wait_ms: int = 100


@dataclass(frozen=True)
class Corridor:
    """One governed direction between two zones.

    ``withhold[d]`` is the rule for dataset *d* (None: nothing withheld by rule;
    a null result means withhold). ``transform[d]`` maps dotted field paths of
    *d* to a Transform. ``admit`` holds the record kinds allowed to cross; a
    record of another kind is withheld. ``policy_hash`` changes whenever
    anything that changes what crosses changes (rules, transforms, classes,
    schemas, admit, legal basis, zones' jurisdictions, the instrument's id, kind and
    expiry), not with bootstrap
    addresses, batch sizes or ``rotate``. ``rotate`` is the data-key rotation
    schedule of a corridor that encrypts (None: rotate only on request); the
    ``corridor run --rotate-every-*`` flags override it.
    """

    name: str
    origin: str
    destination: str
    datasets: tuple[str, ...]
    legal_basis: str
    format: WireFormat
    withhold: Mapping[str, Rule | None]
    transform: Mapping[str, Mapping[str, Transform]]
    admit: frozenset[RecordKind]
    pseudonym_key: str
    batch: BatchSettings
    policy_hash: str
    rotate: RotationSchedule | None = None
    # Per dataset: what happens to the record key (default pseudonymize).
    key: Mapping[str, KeyTreatment] = field(default_factory=lambda: MappingProxyType({}))
    # Park headers allowed to cross (exact names); never a ``corridor-*`` name.
    headers: tuple[str, ...] = ()
    # How avro-format records are framed (part of the policy hash when not the default).
    wire: OutputWire = OutputWire.SINGLE_OBJECT
    # The id of the transfer instrument it runs under (``Config.instruments``); None: none.
    instrument: str | None = None
    # Purposes of processing the corridor serves (``purposes:``): a record crosses only
    # if its subject's consent covers every one (corridor.core.consent). (): no check.
    purposes: tuple[str, ...] = ()
    # Per dataset: the fields encrypted under a per-subject key (``erasable:``), so one
    # subject's values can be erased by destroying the key (corridor.core.crypto.subject_keys).
    erasable: Mapping[str, frozenset[str]] = field(default_factory=lambda: MappingProxyType({}))
    # The consent view's bound in seconds (``consent_staleness_seconds``, corridor.core.consent).
    consent_staleness_s: int = 30

    def key_treatment(self, dataset: str) -> KeyTreatment:
        """The key treatment of *dataset* on this corridor (pseudonymize unless declared)."""
        return self.key.get(dataset, KeyTreatment.PSEUDONYMIZE)

    @property
    def policy_id(self) -> str:
        """Value of the ``corridor-policy`` header: ``name@hash``."""
        return policy_id(self.name, self.policy_hash)


@dataclass(frozen=True)
class AuditSettings:
    """The top-level ``audit:`` section: how long the audit topics keep events and signed
    checkpoints (``retention_days``, default 3 years), and how often the processor signs a
    chain's head (after ``checkpoint_events`` events or ``checkpoint_seconds`` seconds,
    whichever comes first, and on a clean stop). Not part of any policy hash."""

    retention_days: int = 3 * 365
    checkpoint_events: int = 100
    checkpoint_seconds: int = 60

    @property
    def retention_ms(self) -> int:
        return self.retention_days * 86_400_000


@dataclass(frozen=True)
class Config:
    """A whole corridor file, valid as a whole."""

    path: Path
    zones: Mapping[str, Zone]
    datasets: Mapping[str, Dataset]
    corridors: Mapping[str, Corridor]
    instruments: Mapping[str, Instrument] = field(default_factory=lambda: MappingProxyType({}))
    audit: AuditSettings = field(default_factory=AuditSettings)

    def summary(self) -> str:
        """``corridors.yaml: 3 zones, 3 datasets, 5 corridors``."""
        return (
            f"{self.path}: {len(self.zones)} zones, {len(self.datasets)} datasets, "
            f"{len(self.corridors)} corridors"
        )
