"""A corridor's per-dataset policy: withhold rules, transforms, leak refusal, policy hash.

Corridor-level ``withhold`` and ``transform`` apply to every dataset of the
corridor (a transform on a field only some datasets have applies to those);
the per-dataset form ``datasets: {name: {withhold: ..., transform: {...}}}``
overrides them: its ``withhold`` replaces the corridor's rule for that dataset,
its ``transform`` entries are merged over the corridor's, field by field.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from corridor.core.config.datasets import check_path, compile_at, field_paths
from corridor.core.config.document import (
    MapView,
    Problems,
    as_map,
    describe,
    did_you_mean,
    item_line,
)
from corridor.core.config.model import (
    Dataset,
    FieldClass,
    Instrument,
    KeyTreatment,
    OnReach,
    OutputWire,
    RecordKind,
    Thresholds,
    Transform,
    WireFormat,
    Zone,
)
from corridor.core.config.subjects import check_common_erasable, erasable_fields
from corridor.core.rules import Rule

OVERRIDE_KEYS = ("withhold", "transform", "key", "erasable")
TRANSFORMS = [t.value for t in Transform]
KEY_TREATMENTS = [t.value for t in KeyTreatment]
# Key classes a corridor may let cross as they are (``key: keep``).
KEEPABLE = (FieldClass.PUBLIC, FieldClass.INTERNAL)
# A located transform entry: (transform, line, dotted config path).
Located = tuple[Transform, int | None, str]


@dataclass(frozen=True)
class CorridorScope:
    """What building one corridor needs: its YAML, the valid zones/datasets, the declared names."""

    name: str
    view: MapView
    zones: Mapping[str, Zone]
    zone_names: set[str]
    datasets: Mapping[str, Dataset]
    dataset_names: set[str]
    problems: Problems


@dataclass(frozen=True)
class Policy:
    """Per-dataset withhold rule and transforms of one corridor, merged."""

    datasets: tuple[str, ...]
    withhold: Mapping[str, Rule | None]
    transform: Mapping[str, Mapping[str, Transform]]
    key: Mapping[str, KeyTreatment]
    # Per dataset: its erasable fields (config.subjects).
    erasable: Mapping[str, frozenset[str]] = dataclasses.field(
        default_factory=lambda: MappingProxyType({}))


@dataclass(frozen=True)
class _Entry:
    name: str
    line: int | None
    override: MapView | None


def build_policy(scope: CorridorScope, destination: str | None) -> Policy | None:
    """The merged policy, or None after reporting every problem (including leaks)."""
    problems = scope.problems
    entries = _entries(scope)
    if entries is None:
        return None
    before = len(problems.errors)
    common = _transform_map(scope.view, problems)
    valid = [e for e in entries if e.name in scope.datasets]
    if len(valid) == len(entries):
        _check_common_fields(common, [scope.datasets[e.name] for e in valid], problems)
        carried = [scope.datasets[e.name] for e in valid]
        every = {p: t for d in carried for p, t in field_paths(d.schema.raw).items()}
        check_common_erasable(scope.view, carried, every, problems)
    withhold: dict[str, Rule | None] = {}
    transform: dict[str, Mapping[str, Transform]] = {}
    keys: dict[str, KeyTreatment] = {}
    erasable: dict[str, frozenset[str]] = {}
    for entry in valid:
        dataset = scope.datasets[entry.name]
        withhold[entry.name] = _withhold(scope, entry, dataset, multi=len(entries) > 1)
        merged = _merge_transforms(entry, dataset, common, problems)
        _check_leaks(scope, entry, dataset, merged, destination)
        transform[entry.name] = MappingProxyType({f: t for f, (t, _, _) in merged.items()})
        keys[entry.name] = _key_treatment(scope, entry, dataset)
        erasable[entry.name] = erasable_fields(scope.view, entry.override, dataset,
                                               field_paths(dataset.schema.raw),
                                               transform[entry.name], problems)
    if len(problems.errors) > before or len(valid) < len(entries):
        return None
    return Policy(
        tuple(e.name for e in entries),
        MappingProxyType(withhold),
        MappingProxyType(transform),
        MappingProxyType(keys),
        MappingProxyType(erasable),
    )


def _key_treatment(scope: CorridorScope, entry: _Entry, dataset: Dataset) -> KeyTreatment:
    """The record key's treatment for *dataset*: its entry's ``key``, else the corridor's,
    else pseudonymize. ``keep`` of a personal or sensitive key is refused like a leak."""
    if entry.override is not None and "key" in entry.override.data:
        view = entry.override
    elif "key" in scope.view.data:
        view = scope.view
    else:
        return KeyTreatment.PSEUDONYMIZE
    value, line, where = view.data["key"], view.value_line("key"), view.child("key")
    if value not in KEY_TREATMENTS:
        hint = did_you_mean(value, KEY_TREATMENTS) if isinstance(value, str) else ""
        scope.problems.add(line, where, f"unknown key treatment {describe(value)}{hint} "
                                        f"(expected one of: {', '.join(KEY_TREATMENTS)})")
        return KeyTreatment.PSEUDONYMIZE
    treatment = KeyTreatment(value)
    if treatment is KeyTreatment.KEEP and dataset.key_class not in KEEPABLE:
        scope.problems.add(
            line, where,
            f"would leak the record key of {dataset.name}, a {dataset.key_class.value} key "
            "(a dataset that does not declare its key has a personal one) to the destination; "
            "keep is only for a key declared public or internal (key: {class: ...}); "
            "use pseudonymize, encrypt-deterministic or drop")
    return treatment


def _entries(scope: CorridorScope) -> list[_Entry] | None:
    """The carried datasets, from the list form or the per-dataset mapping form."""
    view, problems = scope.view, scope.problems
    if "datasets" not in view.data:
        problems.add(
            view.line, view.child("datasets"), "missing key 'datasets' (the datasets it carries)"
        )
        return None
    value, where = view.data["datasets"], view.child("datasets")
    if isinstance(value, CommentedSeq):
        raw = [
            (item, item_line(value, i, view.value_line("datasets")), None)
            for i, item in enumerate(value)
        ]
    elif isinstance(value, CommentedMap):
        raw = [(key, MapView(value, where, None).key_line(key), value[key]) for key in value]
    else:
        problems.add(
            view.value_line("datasets"),
            where,
            f"expected a list of dataset names or a mapping of dataset to overrides, "
            f"got {describe(value)}",
        )
        return None
    if not raw:
        problems.add(view.value_line("datasets"), where, "a corridor carries at least one dataset")
        return None
    entries = [_entry(scope, name, line, override) for name, line, override in raw]
    if None in entries:
        return None
    valid = [e for e in entries if e is not None]
    seen: set[str] = set()
    for entry in valid:
        if entry.name in seen:
            problems.add(entry.line, where, f"dataset {entry.name} is listed twice")
            return None
        seen.add(entry.name)
    return valid


def _entry(scope: CorridorScope, name: Any, line: int | None, override: Any) -> _Entry | None:
    problems, where = scope.problems, scope.view.child("datasets")
    if not isinstance(name, str) or name not in scope.dataset_names:
        hint = did_you_mean(name, scope.dataset_names) if isinstance(name, str) else ""
        declared = ", ".join(sorted(scope.dataset_names)) or "none"
        problems.add(
            line, where, f"unknown dataset {describe(name)}{hint} (declared datasets: {declared})"
        )
        return None
    if override is None:
        return _Entry(name, line, None)
    view = as_map(override, f"{where}.{name}", line, "overrides {withhold, transform}", problems)
    if view is None:
        return None
    view.check_keys(OVERRIDE_KEYS, problems)
    return _Entry(name, line, view)


def _transform_map(view: MapView, problems: Problems) -> dict[str, Located]:
    """The ``transform`` mapping of *view* (field -> located Transform); bad entries reported."""
    if "transform" not in view.data:
        return {}
    section = as_map(
        view.data["transform"],
        view.child("transform"),
        view.key_line("transform"),
        "a mapping of field to transform (drop, mask, pseudonymize, encrypt, ...)",
        problems,
    )
    if section is None:
        return {}
    out: dict[str, Located] = {}
    for field in section.data:
        value, line, where = (
            section.data[field],
            section.value_line(field),
            section.child(str(field)),
        )
        if value not in TRANSFORMS:
            hint = did_you_mean(value, TRANSFORMS) if isinstance(value, str) else ""
            problems.add(
                line,
                where,
                f"unknown transform {describe(value)}{hint} "
                f"(expected one of: {', '.join(TRANSFORMS)})",
            )
            continue
        out[str(field)] = (Transform(value), line, where)
    return out


def _check_common_fields(
    common: dict[str, Located], datasets: list[Dataset], problems: Problems
) -> None:
    every = {p: t for d in datasets for p, t in field_paths(d.schema.raw).items()}
    names = ", ".join(d.name for d in datasets)
    for field, (_, line, where) in common.items():
        check_path(field, every, line, where, f"any dataset of this corridor ({names})", problems)


def _withhold(scope: CorridorScope, entry: _Entry, dataset: Dataset, multi: bool) -> Rule | None:
    if entry.override is not None and "withhold" in entry.override.data:
        view, context = entry.override, ""
    elif "withhold" in scope.view.data:
        view, context = scope.view, f" for dataset {dataset.name}" if multi else ""
    else:
        return None
    return compile_at(
        view.data["withhold"],
        dataset.schema,
        view.value_line("withhold"),
        view.child("withhold"),
        scope.problems,
        context,
    )


def _merge_transforms(
    entry: _Entry, dataset: Dataset, common: dict[str, Located], problems: Problems
) -> dict[str, Located]:
    paths = field_paths(dataset.schema.raw)
    merged = {f: located for f, located in common.items() if f in paths}
    if entry.override is not None:
        for field, located in _transform_map(entry.override, problems).items():
            if check_path(
                field, paths, located[1], located[2], f"dataset {dataset.name}", problems
            ):
                merged[field] = located
    for field, (transform, line, where) in merged.items():
        problem = _type_problem(transform, paths[field])
        if problem:
            problems.add(
                line, where, f"cannot {transform.value} {field} of {dataset.name}: {problem}"
            )
        for other in merged:
            if field.startswith(other + "."):
                problems.add(line, where, f"transform on {field} overlaps the transform on {other}")
    return merged


def _type_problem(transform: Transform, avro_type: Any) -> str | None:
    """Why *transform* cannot apply to a field of *avro_type*, or None."""
    branches = avro_type if isinstance(avro_type, list) else [avro_type]
    bases = {b.get("type") if isinstance(b, dict) else b for b in branches} - {"null"}
    if transform is Transform.MASK and bases != {"string"}:
        return f"mask needs a string field, this one is {'/'.join(sorted(map(str, bases)))}"
    if transform is Transform.PSEUDONYMIZE and bases & {"record", "array", "map"}:
        return "pseudonymize needs a scalar field (use drop or encrypt for a record, array or map)"
    return None


def _check_leaks(
    scope: CorridorScope,
    entry: _Entry,
    dataset: Dataset,
    merged: Mapping[str, Located],
    destination: str | None,
) -> None:
    """A sensitive field must be transformed (itself or an enclosing record) on every corridor."""
    # A field named with a bad transform is already reported; do not call it a leak too.
    named = set(merged) | _raw_transform_keys(scope.view) | _raw_transform_keys(entry.override)
    for path in dataset.paths_of_class(FieldClass.SENSITIVE):
        if any(path == t or path.startswith(t + ".") for t in named):
            continue
        if entry.override is not None and "transform" in entry.override.data:
            line, where = entry.override.key_line("transform"), entry.override.child("transform")
        elif "transform" in scope.view.data:
            line, where = scope.view.key_line("transform"), scope.view.child("transform")
        else:
            line, where = scope.view.line, scope.view.child("transform")
        scope.problems.add(
            line,
            f"{where}.{path}",
            f"would leak sensitive field {path} of {dataset.name} to "
            f"{destination or 'the destination'}; add a transform "
            f"({', '.join(TRANSFORMS)})",
        )


def _raw_transform_keys(view: MapView | None) -> set[str]:
    section = view.data.get("transform") if view is not None else None
    return set(map(str, section)) if isinstance(section, CommentedMap) else set()


def policy_hash(
    name: str,
    origin: Zone,
    destination: Zone,
    legal_basis: str,
    fmt: WireFormat,
    admit: frozenset[RecordKind],
    pseudonym_key: str,
    policy: Policy,
    datasets: Mapping[str, Dataset],
    headers: tuple[str, ...] = (),
    out_wire: OutputWire = OutputWire.SINGLE_OBJECT,
    instrument: Instrument | None = None,
    purposes: tuple[str, ...] = (),
    thresholds: Thresholds | None = None,
) -> str:
    """12 hex chars of SHA-256 over the normalised policy and the schemas' fingerprints.

    Independent of key order, dataset order, YAML layout and comments, bootstrap
    addresses and batch settings: only what changes what crosses. ``wire`` enters only
    when it is not the default, so the hashes of corridors that never set it stay as they were;
    so does ``instrument`` (its id, kind and expiry: a renewed instrument is a new policy).
    Data subjects enter the same way, each only when set: a dataset's ``subject`` and
    ``erasable`` fields, the corridor's ``purposes`` (in their order: the first one not
    consented is the reason given), the origin's ``thresholds`` when they withhold (``warn``
    changes nothing that crosses).
    """
    doc: dict[str, Any] = {
        "corridor": name,
        "from": [origin.name, origin.jurisdiction],
        "to": [destination.name, destination.jurisdiction],
        "legal_basis": legal_basis,
        "format": fmt.value,
        "admit": sorted(k.value for k in admit),
        "pseudonym_key": pseudonym_key,
        "headers": sorted(headers),
        "datasets": [
            _dataset_doc(datasets[d], policy.withhold[d], policy.transform[d], policy.key[d],
                         policy.erasable.get(d, frozenset()))
            for d in sorted(policy.datasets)
        ],
    }
    if purposes:
        doc["purposes"] = list(purposes)
    if thresholds is not None and thresholds.on_reach is OnReach.WITHHOLD_NEW_SUBJECTS:
        doc["thresholds"] = [thresholds.personal, thresholds.sensitive, thresholds.on_reach.value]
    if out_wire is not OutputWire.SINGLE_OBJECT:
        doc["wire"] = out_wire.value
    if instrument is not None:
        doc["instrument"] = [instrument.id, instrument.kind, instrument.expires.isoformat()]
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:12]


def _dataset_doc(
    dataset: Dataset,
    withhold: Rule | None,
    transform: Mapping[str, Transform],
    key: KeyTreatment,
    erasable: frozenset[str] = frozenset(),
) -> dict[str, Any]:
    rc = dataset.record_class
    doc: dict[str, Any] = {
        "name": dataset.name,
        "schema": dataset.schema.fingerprint.hex(),
        "fields": {p: c.value for p, c in dataset.fields.items()},
        "record_class": [rc.field, rc.important_when.text] if rc else None,
        "validate": [r.text for r in dataset.validate],
        "withhold": withhold.text if withhold is not None else None,
        "transform": {f: t.value for f, t in transform.items()},
        "key": [dataset.key_class.value, key.value],
    }
    if dataset.subject is not None:
        doc["subject"] = dataset.subject
    if erasable:
        doc["erasable"] = sorted(erasable)
    return doc
