"""The record of processing activities (GDPR Art. 30 style) of the configured transfers.

Owns: :func:`records_of_processing` (the corridor file + a date -> one :class:`Entry` per
corridor) and its JSON document (:func:`register_document`). Built from the corridor file
alone: what the configuration says crosses, not what did (that is the report). Does not
own rendering to markdown (``render_md``). Pure: *today* comes in (it decides each
instrument's state).

Per corridor: the exporter (origin zone and jurisdiction, the controller's side), the
recipients (destination zone, its jurisdiction and the analytics principal that reads
the corridor topics there), the purpose and retention (from the instrument), the legal
basis, the instrument, and per dataset the categories of data by field class (the
schema's top-level fields and every listed path, each with its class; an unlisted field
is internal), the record key's class and treatment, and the safeguard of each
transformed field (an ``erasable`` one: under a per-subject key), the dataset's subject
field, and the consent the corridor requires (its purposes and the consent view's bound).
``unprotected`` lists personal fields that cross as they are (no
transform on them nor on an enclosing record): lawful when the instrument covers them,
and worth a reader's eye.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from corridor.core.acl import analytics_principal
from corridor.core.config import (
    Config,
    Corridor,
    Dataset,
    FieldClass,
    Instrument,
    InstrumentState,
    Transform,
    instrument_state,
)


@dataclass(frozen=True)
class DatasetEntry:
    """One dataset as a corridor carries it."""

    name: str
    categories: dict[str, tuple[str, ...]]  # field class -> field paths
    key_class: str
    key_treatment: str
    safeguards: dict[str, str]  # field path -> transform
    unprotected: tuple[str, ...]
    subject: str | None = None  # the field naming the data subject
    erasable: tuple[str, ...] = ()  # fields under a per-subject key


@dataclass(frozen=True)
class Entry:
    """One corridor's transfer, as the register states it."""

    corridor: str
    exporter_zone: str
    exporter_jurisdiction: str
    recipient_zone: str
    recipient_jurisdiction: str
    recipients: tuple[str, ...]
    legal_basis: str
    instrument: Instrument | None
    instrument_state: InstrumentState | None
    datasets: tuple[DatasetEntry, ...]
    purposes: tuple[str, ...] = ()  # the consent a record's subject must have given
    consent_staleness_s: int | None = None  # the consent view's bound (with purposes)

    @property
    def purpose(self) -> str | None:
        return self.instrument.purpose if self.instrument else None

    @property
    def retention_days(self) -> int | None:
        return self.instrument.retention_days if self.instrument else None


def records_of_processing(config: Config, today: dt.date) -> list[Entry]:
    """One entry per corridor of *config*, in name order."""
    return [_entry(config, c, today) for _, c in sorted(config.corridors.items())]


def _entry(config: Config, c: Corridor, today: dt.date) -> Entry:
    origin, dest = config.zones[c.origin], config.zones[c.destination]
    instrument = config.instruments.get(c.instrument) if c.instrument else None
    return Entry(
        c.name, origin.name, origin.jurisdiction, dest.name, dest.jurisdiction,
        (analytics_principal(dest.name),), c.legal_basis, instrument,
        instrument_state(instrument, today) if instrument else None,
        tuple(_dataset_entry(config.datasets[d], c) for d in c.datasets),
        c.purposes, c.consent_staleness_s if c.purposes else None)


def _dataset_entry(dataset: Dataset, c: Corridor) -> DatasetEntry:
    paths = list(dataset.schema.field_names())
    paths += [p for p in dataset.fields if p not in paths]
    categories = {fc.value: tuple(p for p in paths if dataset.class_of(p) is fc)
                  for fc in FieldClass}
    transforms = c.transform.get(dataset.name, {})
    personal = categories[FieldClass.PERSONAL.value] + categories[FieldClass.SENSITIVE.value]
    return DatasetEntry(
        dataset.name, categories, dataset.key_class.value, c.key_treatment(dataset.name).value,
        {p: t.value for p, t in transforms.items()},
        tuple(p for p in personal if _covering(p, transforms) is None),
        dataset.subject, tuple(sorted(c.erasable.get(dataset.name, ()))))


def _covering(path: str, transforms: Mapping[str, Transform]) -> Transform | None:
    """The transform on *path* or on its nearest enclosing record, or None."""
    parts = path.split(".")
    for end in range(len(parts), 0, -1):
        found = transforms.get(".".join(parts[:end]))
        if found is not None:
            return found
    return None


def register_document(entries: list[Entry], config_path: str, today: dt.date) -> dict[str, Any]:
    """The register as one JSON document with stable keys (see ``corridor report --help``)."""
    return {
        "kind": "records-of-processing", "config": config_path, "date": today.isoformat(),
        "corridors": [_entry_doc(e) for e in entries],
    }


def _entry_doc(e: Entry) -> dict[str, Any]:
    i = e.instrument
    return {
        "corridor": e.corridor,
        "exporter": {"zone": e.exporter_zone, "jurisdiction": e.exporter_jurisdiction},
        "recipient": {"zone": e.recipient_zone, "jurisdiction": e.recipient_jurisdiction,
                      "principals": list(e.recipients)},
        "purpose": e.purpose, "retention_days": e.retention_days,
        "legal_basis": e.legal_basis,
        "consent": None if not e.purposes else {
            "purposes": list(e.purposes), "staleness_seconds": e.consent_staleness_s},
        "instrument": None if i is None else {
            "id": i.id, "kind": i.kind, "reference": i.reference, "parties": list(i.parties),
            "signed": i.signed.isoformat(), "expires": i.expires.isoformat(),
            "state": e.instrument_state},
        "datasets": [{
            "dataset": d.name, "categories": {k: list(v) for k, v in d.categories.items()},
            "key": {"class": d.key_class, "treatment": d.key_treatment},
            "safeguards": dict(d.safeguards), "unprotected": list(d.unprotected),
            "subject": d.subject, "erasable": list(d.erasable),
        } for d in e.datasets],
    }
