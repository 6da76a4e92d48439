"""Data subjects in the corridor file: a dataset's ``subject:``, a zone's ``thresholds:``, a
corridor's ``purposes:`` and ``erasable:``.

::

    zones:
      hk:
        thresholds: {personal: 100000, sensitive: 10000, on_reach: withhold-new-subjects}
    datasets:
      trade.shipment:
        subject: contact_email        # a personal or sensitive string, int or long field
    corridors:
      hk-eu:
        purposes: [order-fulfilment]  # the subject's consent must cover each one
        consent_staleness_seconds: 30 # no batch is decided with an older consent view
        erasable: [contact_email]     # encrypted under a per-subject key; also per dataset
        transform: {contact_email: encrypt}

Checks (each refusal names file, line and field):

- ``subject``: a field of the dataset's schema, classed personal or sensitive (a subject
  is a person), of Avro type string, int or long (optionally nullable: a null subject is
  withheld ``subject_missing``). An int subject and a string subject with the same digits
  name the same person (``corridor.core.subjects``).
- ``thresholds``: ``personal`` and/or ``sensitive``, integers >= 1; ``on_reach`` ``warn``
  (the default) or ``withhold-new-subjects``. When the zone has thresholds, every dataset
  whose personal data a corridor carries out of it must name its subject: a record
  without one could not be counted.
- ``purposes``: a non-empty list of distinct lowercase names; every dataset of the corridor
  must name its subject (consent is per subject).
- ``consent_staleness_seconds``: the consent view's bound, whole seconds from 1 to 300
  (default 30); only with ``purposes``. A withdrawal written at W holds back every batch
  decided after W + bound, and ``corridor consent follow --on-withdraw erase`` erases a
  bound after it saw the withdrawal.
- ``erasable``: fields of the corridor's datasets (a corridor-level entry applies to each
  dataset that has the field, a per-dataset one to that dataset; both lists add up). Each
  must be transformed ``encrypt`` itself (the per-subject key replaces the corridor's data
  key for it), its dataset must name its subject, and the corridor's format must be avro
  (arrow encrypts a whole column under one key). The destination learns which erasable
  values belong to one subject (their key id), as a ``pseudonymize`` of the subject would
  tell it.

What is not here: the ledger, consent and per-subject keys themselves
(``corridor.core.subjects``, ``corridor.core.consent``, ``corridor.core.crypto.subject_keys``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedSeq

from corridor.core.config.document import (
    MapView,
    Problems,
    as_map,
    describe,
    did_you_mean,
    item_line,
)
from corridor.core.config.instruments import carries_personal_data
from corridor.core.config.model import (
    Dataset,
    FieldClass,
    KeyTreatment,
    OnReach,
    Thresholds,
    Transform,
    WireFormat,
    Zone,
)

THRESHOLD_KEYS = ("personal", "sensitive", "on_reach")
ON_REACH = [o.value for o in OnReach]
SUBJECT_TYPES = ("string", "int", "long")
PERSON = (FieldClass.PERSONAL, FieldClass.SENSITIVE)
PURPOSE = re.compile(r"^[a-z0-9][a-z0-9_.-]*$")
DEFAULT_CONSENT_STALENESS_S = 30
MAX_CONSENT_STALENESS_S = 300


def build_thresholds(zone: MapView, problems: Problems) -> Thresholds | None:
    """The zone's ``thresholds``; None when absent or invalid (invalid is reported)."""
    if "thresholds" not in zone.data:
        return None
    view = as_map(zone.data["thresholds"], zone.child("thresholds"), zone.key_line("thresholds"),
                  "{personal: N, sensitive: M, on_reach: warn | withhold-new-subjects}", problems)
    if view is None:
        return None
    before = len(problems.errors)
    view.check_keys(THRESHOLD_KEYS, problems)
    ceilings: dict[str, int | None] = {}
    for key in ("personal", "sensitive"):
        value = view.data.get(key)
        ceilings[key] = value if isinstance(value, int) and not isinstance(value, bool) else None
        if key in view.data and (ceilings[key] is None or value < 1):
            problems.add(view.value_line(key), view.child(key),
                         f"expected a number of subjects >= 1, got {describe(value)}")
    if len(problems.errors) == before and ceilings["personal"] is ceilings["sensitive"] is None:
        problems.add(view.line, view.path, "expected personal, sensitive or both "
                                           "(ceilings of distinct subjects per year)")
    on_reach = view.data.get("on_reach", OnReach.WARN.value)
    if on_reach not in ON_REACH:
        hint = did_you_mean(on_reach, ON_REACH) if isinstance(on_reach, str) else ""
        problems.add(view.value_line("on_reach"), view.child("on_reach"),
                     f"bad on_reach {describe(on_reach)}{hint} (expected warn or "
                     "withhold-new-subjects)")
    if len(problems.errors) > before:
        return None
    return Thresholds(ceilings["personal"], ceilings["sensitive"], OnReach(on_reach))


def build_subject(
    view: MapView, dataset: Dataset, paths: Mapping[str, Any], problems: Problems
) -> str | None:
    """The dataset's ``subject`` path; None when absent or invalid (invalid is reported)."""
    if "subject" not in view.data:
        return None
    value, line, where = view.data["subject"], view.value_line("subject"), view.child("subject")
    if not isinstance(value, str) or not value.strip():
        problems.add(line, where, f"expected the path of the field naming the data subject, "
                                  f"got {describe(value)}")
        return None
    path = value.strip()
    if path not in paths:
        problems.add(line, where, f"field '{path}' is not in the schema{did_you_mean(path, paths)}")
        return None
    field_class = dataset.class_of(path)
    if field_class not in PERSON:
        problems.add(line, where, f"subject field {path} is {field_class.value}: a subject is "
                                  "a person, so its field must be classed personal or sensitive")
        return None
    branches = paths[path] if isinstance(paths[path], list) else [paths[path]]
    bases = {b.get("type") if isinstance(b, dict) else b for b in branches} - {"null"}
    if len(bases) != 1 or not bases <= set(SUBJECT_TYPES) or any(
            isinstance(b, dict) and "logicalType" in b for b in branches):
        shown = "/".join(sorted(map(str, bases))) or "null"
        problems.add(line, where, f"subject field {path} is {shown}: expected string, int or "
                                  "long (optionally nullable)")
        return None
    return path


def build_purposes(view: MapView, problems: Problems) -> tuple[str, ...]:
    """The corridor's ``purposes``: () when absent or invalid (invalid is reported)."""
    if "purposes" not in view.data:
        return ()
    value, line, where = view.data["purposes"], view.value_line("purposes"), view.child("purposes")
    if not isinstance(value, list) or not value:
        problems.add(line, where, f"expected a list of purposes such as [order-fulfilment], "
                                  f"got {describe(value)}")
        return ()
    names: list[str] = []
    for i, item in enumerate(value):
        at = item_line(value, i, line) if isinstance(value, CommentedSeq) else line
        if not isinstance(item, str) or not PURPOSE.match(item):
            problems.add(at, where, f"bad purpose {describe(item)} (expected lowercase letters, "
                                    "digits, '-', '_', '.')")
        elif item in names:
            problems.add(at, where, f"purpose {item} is listed twice")
        else:
            names.append(item)
    return tuple(names) if len(names) == len(value) else ()


def build_consent_staleness(view: MapView, problems: Problems) -> int:
    """The corridor's ``consent_staleness_seconds`` (the consent view's bound: no batch is
    decided with a view older than this; ``corridor.core.consent``), between 1 and
    :data:`MAX_CONSENT_STALENESS_S` (a pause longer than the consumer's poll interval would
    hand the partitions to another instance). Only on a corridor with purposes."""
    key = "consent_staleness_seconds"
    if key not in view.data:
        return DEFAULT_CONSENT_STALENESS_S
    value = view.data[key]
    if "purposes" not in view.data:
        problems.add(view.key_line(key), view.child(key),
                     "consent_staleness_seconds bounds the consent view of a corridor with "
                     "purposes: declare purposes: or remove it")
    elif (not isinstance(value, int) or isinstance(value, bool)
          or not 1 <= value <= MAX_CONSENT_STALENESS_S):
        problems.add(view.value_line(key), view.child(key),
                     f"expected whole seconds from 1 to {MAX_CONSENT_STALENESS_S}, got "
                     f"{describe(value)}")
    else:
        return value
    return DEFAULT_CONSENT_STALENESS_S


def _erasable_list(view: MapView | None, problems: Problems) -> list[tuple[str, int | None, str]]:
    """The ``erasable`` entries of *view*: (field, line, config path); bad items reported."""
    if view is None or "erasable" not in view.data:
        return []
    value, line, where = view.data["erasable"], view.value_line("erasable"), view.child("erasable")
    if not isinstance(value, list) or not value:
        problems.add(line, where, f"expected a list of field paths, got {describe(value)}")
        return []
    out: list[tuple[str, int | None, str]] = []
    for i, item in enumerate(value):
        at = item_line(value, i, line) if isinstance(value, CommentedSeq) else line
        if isinstance(item, str) and item.strip():
            out.append((item.strip(), at, where))
        else:
            problems.add(at, where, f"expected a field path, got {describe(item)}")
    return out


def check_common_erasable(view: MapView, datasets: list[Dataset], paths: Mapping[str, Any],
                          problems: Problems) -> None:
    """A corridor-level ``erasable`` entry must be a field of at least one of *datasets*
    (*paths*: the union of their field paths)."""
    names = ", ".join(d.name for d in datasets)
    for name, line, where in _erasable_list(view, problems):
        if name not in paths:
            problems.add(line, where, f"field '{name}' is not in any dataset of this corridor "
                                      f"({names}){did_you_mean(name, paths)}")


def erasable_fields(
    corridor: MapView,
    override: MapView | None,
    dataset: Dataset,
    paths: Mapping[str, Any],
    transforms: Mapping[str, Transform],
    problems: Problems,
) -> frozenset[str]:
    """The erasable fields of *dataset* on one corridor: the corridor-level entries it has,
    plus its own entry's (which must all be its fields). Each must be encrypted (itself) and
    the dataset must name its subject; a refusal is reported and the field left out."""
    quiet = Problems(problems.file)  # corridor-level list problems: reported by the common check
    entries = [e for e in _erasable_list(corridor, quiet) if e[0] in paths]
    for name, line, where in _erasable_list(override, problems):
        if name in paths:
            entries.append((name, line, where))
        else:
            problems.add(line, where, f"field '{name}' is not in dataset {dataset.name}"
                                      f"{did_you_mean(name, paths)}")
    out: set[str] = set()
    for name, line, where in entries:
        if transforms.get(name) is not Transform.ENCRYPT:
            problems.add(line, where, f"erasable field {name} of {dataset.name} must be "
                                      f"encrypted: add transform: {{{name}: encrypt}}")
        elif dataset.subject is None:
            problems.add(line, where, f"erasable needs the subject of {dataset.name}: name it "
                                      "in the dataset (subject: <field>)")
        else:
            out.add(name)
    return frozenset(out)


def check_subjects(
    view: MapView,
    origin: Zone | None,
    datasets: Mapping[str, Dataset],
    transform: Mapping[str, Mapping[str, Transform]],
    keys: Mapping[str, KeyTreatment],
    fmt: WireFormat | None,
    erasable: Mapping[str, frozenset[str]],
    purposes: tuple[str, ...],
    problems: Problems,
) -> None:
    """Corridor-wide refusals: a dataset without a subject on a corridor with purposes, or
    whose personal data it carries out of a zone with thresholds; erasable fields on an arrow
    corridor. *transform* has an entry for each dataset the corridor carries."""
    unnamed = [name for name in transform if datasets[name].subject is None]
    for name in unnamed if purposes else ():
        problems.add(view.key_line("purposes"), view.child("purposes"),
                     f"consent is per subject: dataset {name} must name its subject "
                     "(subject: <field>) on a corridor with purposes")
    counted = origin is not None and origin.thresholds is not None
    for name in unnamed if counted else ():
        if carries_personal_data({name: datasets[name]}, {name: transform[name]}, keys):
            problems.add(view.value_line("datasets"), view.child("datasets"),
                         f"zone {origin.name if origin else ''} counts data subjects "
                         f"(thresholds:): dataset {name}, whose personal data this corridor "
                         "carries, must name its subject (subject: <field>)")
    if fmt is WireFormat.ARROW and any(erasable.values()):
        problems.add(view.key_line("erasable") if "erasable" in view.data else view.line,
                     view.child("erasable"), "erasable fields need per-value encryption: use "
                                             "format: avro (arrow encrypts a whole column "
                                             "under one key)")
