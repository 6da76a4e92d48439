"""Config + schemas + rules + keys -> a runnable corridor plan. Refuses a plan that would leak.

``build_plan(config, corridor_name, ciphers, pseudonym_secret)`` resolves once
everything the pipeline needs per batch: topics, the dataset and egress schemas,
the compiled rules, the transforms, the per-corridor pseudonym key and the
constant residency headers (docs/DESIGN.md section 6), built once per plan and epoch.

Choices a caller must know:

- ``corridor-classification`` is the highest class of the fields still present
  after the transforms. Only ``drop`` removes a field's class: an encrypted,
  pseudonymized or masked field still *is* data of its class, protected (its
  protection is told by the egress schema's ``corridor.transform`` attribute).
  So a corridor that encrypts a sensitive field says ``sensitive``.
- ``corridor-jurisdiction`` is the ORIGIN zone's jurisdiction: the law that
  governs the data wherever it travels.
- Pseudonym key: HKDF-SHA256 of the corridor's pseudonym secret (resolved by the
  caller from ``Corridor.pseudonym_key``), with the corridor's ``pseudonym_key``
  name in the info. Default names are ``<corridor>.pseudonym``, so pseudonyms differ
  across corridors even under one master secret; two corridors configured with the
  same ``pseudonym_key`` name and secret share pseudonyms (joinable) on purpose.
- A corridor that encrypts needs a cipher, one that pseudonymizes needs a secret:
  without them the plan is refused (PlanError), never run half-protected.
- The record key (docs/DESIGN.md section 6): ``DatasetPlan.key`` says what happens to it
  (pseudonymize unless the corridor says otherwise); pseudonymizing it needs the
  pseudonym secret and encrypting it a cipher, like a field. Park headers cross
  only when ``allowed_headers`` names them.
- ``wire: confluent``: ``DatasetPlan.egress_id`` is the egress schema's id in the
  destination's registry, set by the processor (``plan.with_egress_ids``) once registered.
- On key rotation, ``plan.with_cipher(new)`` gives the next epoch's plan (new
  ``corridor-key`` header); nothing else changes.
- A corridor that names a transfer instrument carries its id on every record
  (``corridor-instrument``); once the instrument has expired (``instrument_expiry_ms``:
  the end of its ``expires`` day, UTC) the pipeline withholds every record.
- ``DatasetPlan.protections``: the dotted paths under each protection (dropped, masked,
  pseudonymized, encrypted), as the audit events record them.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from types import MappingProxyType

from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from corridor.core import topics, wire
from corridor.core.config import (
    Config,
    Corridor,
    Dataset,
    FieldClass,
    Instrument,
    KeyTreatment,
    RecordKind,
    Transform,
    WireFormat,
)
from corridor.core.config.datasets import field_paths
from corridor.core.config.model import OutputWire, Thresholds
from corridor.core.crypto import DataKeyRing, FieldCipher, SecretBytes
from corridor.core.errors import PlanError
from corridor.core.rules import Rule
from corridor.core.schema import AvroSchema, SchemaStore, egress_schema

CipherSource = FieldCipher | DataKeyRing | None
Headers = tuple[tuple[str, bytes], ...]
_PSEUDONYM_INFO = b"corridor pseudonym key v1\0"
ENCRYPTING = (Transform.ENCRYPT, Transform.ENCRYPT_DETERMINISTIC)
# What the audit events call each transform (core.audit.PROTECTIONS).
PROTECTION = {Transform.DROP: "dropped", Transform.MASK: "masked",
              Transform.PSEUDONYMIZE: "pseudonymized", Transform.ENCRYPT: "encrypted",
              Transform.ENCRYPT_DETERMINISTIC: "encrypted"}


@dataclass(frozen=True)
class DatasetPlan:
    """What the pipeline needs for one dataset of one corridor. ``transforms`` keep file order."""

    dataset: str
    source_topic: str
    destination_topic: str
    schema: AvroSchema
    egress: AvroSchema
    withhold: Rule | None
    validate: tuple[Rule, ...]
    important_when: Rule | None
    transforms: Mapping[str, Transform]
    classification: FieldClass
    headers: Headers  # constant residency headers; the pipeline adds corridor-lineage
    key: KeyTreatment = KeyTreatment.PSEUDONYMIZE  # what happens to the record key
    key_class: FieldClass = FieldClass.PERSONAL
    # ``wire: confluent``: the egress schema's id in the destination zone's schema registry
    # (None until the processor registered it; the pipeline refuses to frame without it).
    egress_id: int | None = None
    # The field naming the record's data subject (None: none) and the fields encrypted under
    # a per-subject key instead of the corridor's data key (corridor.core.crypto.subject_keys).
    subject: str | None = None
    erasable: frozenset[str] = frozenset()

    @property
    def encrypts(self) -> bool:
        return (any(t in ENCRYPTING for t in self.transforms.values())
                or self.key is KeyTreatment.ENCRYPT_DETERMINISTIC)

    @property
    def protections(self) -> dict[str, tuple[str, ...]]:
        """Dotted field paths by protection (``dropped``, ``masked``, ...), sorted."""
        out: dict[str, list[str]] = {}
        for path, transform in self.transforms.items():
            out.setdefault(PROTECTION[transform], []).append(path)
        return {p: tuple(sorted(paths)) for p, paths in out.items()}


@dataclass(frozen=True)
class CorridorPlan:
    """A runnable corridor: per-dataset plans plus what is shared by all of them."""

    name: str
    corridor: Corridor
    origin: str
    destination: str
    jurisdiction: str
    format: WireFormat
    admit: frozenset[RecordKind]
    datasets: Mapping[str, DatasetPlan]
    store: SchemaStore = field(
        repr=False
    )  # every dataset schema of the config: better decode reasons
    cipher: FieldCipher | None = field(repr=False, default=None)
    pseudonym_key: SecretBytes | None = field(repr=False, default=None)
    # Park headers allowed to cross, by exact name (never a corridor-* one).
    allowed_headers: frozenset[str] = frozenset()
    # Purposes the subject's consent must cover (corridor.core.consent); (): no check.
    purposes: tuple[str, ...] = ()
    # The origin zone's yearly ceilings of distinct subjects (corridor.core.subjects).
    thresholds: Thresholds | None = None
    # The transfer instrument the corridor runs under (None: it names none).
    instrument: Instrument | None = None

    @property
    def instrument_expiry_ms(self) -> int | None:
        """Unix ms from which the instrument is expired: the end of its ``expires`` day
        (UTC; the day itself is still valid). None without an instrument."""
        if self.instrument is None:
            return None
        end = dt.datetime.combine(self.instrument.expires + dt.timedelta(days=1), dt.time(),
                                  dt.UTC)
        return int(end.timestamp() * 1000)

    @property
    def withheld_topic(self) -> str:
        return topics.withheld(self.corridor)

    @property
    def quarantine_topic(self) -> str:
        return topics.quarantine(self.corridor)

    @property
    def audit_topic(self) -> str:
        return topics.audit(self.origin)

    def source_topics(self) -> tuple[str, ...]:
        return tuple(d.source_topic for d in self.datasets.values())

    def dataset_for_topic(self, topic: str) -> DatasetPlan:
        """The dataset plan whose source topic is *topic*; PlanError for another topic."""
        for plan in self.datasets.values():
            if plan.source_topic == topic:
                return plan
        raise PlanError(self.name, f"topic {topic} is not a source of this corridor")

    @property
    def confluent(self) -> bool:
        """Records are Confluent-framed (``wire: confluent``; avro format only)."""
        return self.corridor.wire is OutputWire.CONFLUENT and self.format is WireFormat.AVRO

    def with_egress_ids(self, ids: Mapping[str, int]) -> CorridorPlan:
        """The same plan with the registered egress schema ids (dataset -> id) of ``wire:
        confluent``; datasets not in ``ids`` keep theirs."""
        datasets = {name: replace(d, egress_id=ids.get(name, d.egress_id))
                    for name, d in self.datasets.items()}
        return replace(self, datasets=MappingProxyType(datasets))

    def with_cipher(self, cipher: FieldCipher) -> CorridorPlan:
        """The same plan for a new key epoch (the ``corridor-key`` header changes)."""
        datasets = {
            name: replace(d, headers=_headers(self.corridor, self.jurisdiction, d, cipher))
            for name, d in self.datasets.items()
        }
        return replace(self, datasets=MappingProxyType(datasets), cipher=cipher)


def build_plan(
    config: Config,
    corridor_name: str,
    ciphers: CipherSource,
    pseudonym_secret: SecretBytes | bytes | None = None,
) -> CorridorPlan:
    """Plan *corridor_name*; raises PlanError for a leak, a missing cipher or secret.

    ``ciphers``: the current FieldCipher, or a DataKeyRing (its current cipher for
    this corridor is taken), or None when no transform encrypts.
    """
    if corridor_name not in config.corridors:
        raise PlanError(corridor_name, f"no such corridor in {config.path}")
    corridor = config.corridors[corridor_name]
    cipher = ciphers.cipher(corridor_name) if isinstance(ciphers, DataKeyRing) else ciphers
    jurisdiction = config.zones[corridor.origin].jurisdiction
    plans = {}
    for name in corridor.datasets:
        dataset = config.datasets[name]
        transforms = corridor.transform.get(name, {})
        refuse_leaks(corridor.name, dataset, transforms)  # defense in depth: config checks too
        plans[name] = _dataset_plan(corridor, dataset, transforms, jurisdiction, cipher)
    _check_keys(corridor, plans, cipher, pseudonym_secret)
    return CorridorPlan(
        name=corridor.name,
        corridor=corridor,
        origin=corridor.origin,
        destination=corridor.destination,
        jurisdiction=jurisdiction,
        format=corridor.format,
        admit=corridor.admit,
        datasets=MappingProxyType(plans),
        store=SchemaStore([d.schema for d in config.datasets.values()]),
        cipher=cipher,
        pseudonym_key=_pseudonym_key(corridor, pseudonym_secret),
        allowed_headers=frozenset(
            h for h in corridor.headers if not h.lower().startswith(wire.HEADER_PREFIX)),
        purposes=corridor.purposes,
        thresholds=config.zones[corridor.origin].thresholds,
        instrument=config.instruments.get(corridor.instrument or ""),
    )


def refuse_leaks(corridor: str, dataset: Dataset, transforms: Mapping[str, Transform]) -> None:
    """PlanError when a sensitive field (or no enclosing record of it) has no transform."""
    for path in dataset.paths_of_class(FieldClass.SENSITIVE):
        if not any(path == t or path.startswith(t + ".") for t in transforms):
            raise PlanError(
                corridor, f"would leak sensitive field {path} of {dataset.name}: no transform"
            )


def _dataset_plan(
    corridor: Corridor,
    dataset: Dataset,
    transforms: Mapping[str, Transform],
    jurisdiction: str,
    cipher: FieldCipher | None,
) -> DatasetPlan:
    key = corridor.key_treatment(dataset.name)
    egress = egress_schema(dataset.schema, {p: t.value for p, t in transforms.items()},
                           key=(dataset.key_class.value, key.value))
    plan = DatasetPlan(
        dataset=dataset.name,
        source_topic=topics.outbound(corridor.origin, dataset.name),
        destination_topic=topics.corridor_topic(corridor.origin, corridor.destination, dataset.name),
        schema=dataset.schema,
        egress=egress,
        withhold=corridor.withhold.get(dataset.name),
        validate=tuple(dataset.validate),
        important_when=dataset.record_class.important_when if dataset.record_class else None,
        transforms=MappingProxyType(dict(transforms)),
        classification=classification(dataset, transforms),
        headers=(),
        key=key,
        key_class=dataset.key_class,
        subject=dataset.subject,
        erasable=corridor.erasable.get(dataset.name, frozenset()),
    )
    return replace(plan, headers=_headers(corridor, jurisdiction, plan, cipher))


def classification(dataset: Dataset, transforms: Mapping[str, Transform]) -> FieldClass:
    """Highest class of the fields left after drops (see the module docstring)."""
    dropped = [p for p, t in transforms.items() if t is Transform.DROP]
    present = [
        p
        for p in field_paths(dataset.schema.raw)
        if not any(p == d or p.startswith(d + ".") for d in dropped)
    ]
    return max(
        (dataset.class_of(p) for p in present), key=lambda c: c.rank, default=FieldClass.PUBLIC
    )


def _headers(
    corridor: Corridor, jurisdiction: str, plan: DatasetPlan, cipher: FieldCipher | None
) -> Headers:
    headers = [
        (wire.ORIGIN, corridor.origin),
        (wire.DESTINATION, corridor.destination),
        (wire.JURISDICTION, jurisdiction),
        (wire.CLASSIFICATION, plan.classification.value),
        (wire.LEGAL_BASIS, corridor.legal_basis),
        (wire.POLICY, corridor.policy_id),
    ]
    if plan.encrypts and cipher is not None:
        headers.append((wire.KEY_ID, cipher.key_id))
    if corridor.instrument is not None:
        headers.append((wire.INSTRUMENT, corridor.instrument))
    return tuple((k, v.encode("utf-8")) for k, v in headers)


def _check_keys(
    corridor: Corridor,
    plans: Mapping[str, DatasetPlan],
    cipher: FieldCipher | None,
    secret: SecretBytes | bytes | None,
) -> None:
    for plan in plans.values():
        if plan.key is KeyTreatment.ENCRYPT_DETERMINISTIC and cipher is None:
            raise PlanError(corridor.name, f"{plan.dataset}'s record key is encrypted but no "
                                           "cipher was given")
        if plan.key is KeyTreatment.PSEUDONYMIZE and secret is None:
            raise PlanError(corridor.name, f"{plan.dataset}'s record key is pseudonymized but "
                                           f"no secret {corridor.pseudonym_key!r} was given")
        for path, transform in plan.transforms.items():
            if transform in ENCRYPTING and cipher is None:
                raise PlanError(
                    corridor.name, f"{plan.dataset}.{path} is encrypted but no cipher was given"
                )
            if transform is Transform.PSEUDONYMIZE and secret is None:
                raise PlanError(
                    corridor.name,
                    f"{plan.dataset}.{path} is pseudonymized but no secret "
                    f"{corridor.pseudonym_key!r} was given",
                )


def _pseudonym_key(corridor: Corridor, secret: SecretBytes | bytes | None) -> SecretBytes | None:
    if secret is None:
        return None
    material = secret.reveal() if isinstance(secret, SecretBytes) else bytes(secret)
    info = _PSEUDONYM_INFO + corridor.pseudonym_key.encode("utf-8")
    return SecretBytes(HKDF(SHA256(), 32, None, info).derive(material))
