"""The `corridors:` section: zones, legal basis, format, admit, batch (policy: config_policy)."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from ruamel.yaml.comments import CommentedSeq

from corridor.config import BatchSettings, Corridor, Dataset, RecordKind, WireFormat, Zone
from corridor.config_policy import CorridorScope, build_policy, policy_hash
from corridor.config_yaml import (
    MapView,
    Problems,
    as_map,
    describe,
    did_you_mean,
    int_value,
    item_line,
    text_value,
)

CORRIDOR_KEYS = (
    "from",
    "to",
    "datasets",
    "legal_basis",
    "format",
    "withhold",
    "admit",
    "transform",
    "pseudonym_key",
    "batch",
    "description",
)
BATCH_KEYS = ("max_records", "max_wait_ms")
# A corridor name is part of topic names (`hk.withheld.<corridor>`).
CORRIDOR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
FORMATS = [f.value for f in WireFormat]
KINDS = [k.value for k in RecordKind]


def build_corridors(
    section: MapView | None,
    zones: Mapping[str, Zone],
    zone_names: set[str],
    datasets: Mapping[str, Dataset],
    dataset_names: set[str],
    problems: Problems,
) -> dict[str, Corridor]:
    """Valid corridors by name; also refuses two corridors writing the same output topic."""
    corridors: dict[str, Corridor] = {}
    if section is None:
        return corridors
    for name in section.data:
        key = str(name)
        if not CORRIDOR_NAME.match(key):
            problems.add(
                section.key_line(name),
                section.child(key),
                f"bad corridor name '{key}' (expected lowercase letters, digits, '-', '_')",
            )
        view = as_map(
            section.data[name],
            section.child(key),
            section.key_line(name),
            "corridor settings {from, to, datasets, legal_basis, ...}",
            problems,
        )
        if view is None:
            continue
        scope = CorridorScope(key, view, zones, zone_names, datasets, dataset_names, problems)
        corridor = _build_corridor(scope)
        if corridor is not None:
            _check_shared_topics(corridor, corridors, view, problems)
            corridors[key] = corridor
    return corridors


def _build_corridor(scope: CorridorScope) -> Corridor | None:
    view, problems = scope.view, scope.problems
    before = len(problems.errors)
    view.check_keys(CORRIDOR_KEYS, problems)
    origin = _zone_ref(scope, "from")
    destination = _zone_ref(scope, "to")
    if origin is not None and origin == destination:
        problems.add(
            view.value_line("to"),
            view.child("to"),
            f"a corridor from zone {origin} to itself crosses no border "
            "(expected two different zones)",
        )
    legal_basis = text_value(
        view,
        "legal_basis",
        problems,
        "the legal basis of the transfer, such as GDPR-SCC, DEPA, PDPA, CBPR",
    )
    fmt = _format(view, problems)
    admit = _admit(view, problems)
    pseudonym_key = (
        text_value(view, "pseudonym_key", problems, "a secret name")
        if "pseudonym_key" in view.data
        else f"{scope.name}.pseudonym"
    )
    batch = _batch(view, problems)
    policy = build_policy(scope, destination)
    if len(problems.errors) > before or None in (
        origin,
        destination,
        legal_basis,
        fmt,
        admit,
        pseudonym_key,
        policy,
    ):
        return None
    assert origin and destination and legal_basis and fmt and admit and pseudonym_key and policy
    digest = policy_hash(
        scope.name,
        scope.zones[origin],
        scope.zones[destination],
        legal_basis,
        fmt,
        admit,
        pseudonym_key,
        policy,
        scope.datasets,
    )
    return Corridor(
        scope.name,
        origin,
        destination,
        policy.datasets,
        legal_basis,
        fmt,
        policy.withhold,
        policy.transform,
        admit,
        pseudonym_key,
        batch,
        digest,
    )


def _zone_ref(scope: CorridorScope, key: str) -> str | None:
    view, problems = scope.view, scope.problems
    what = "origin zone" if key == "from" else "destination zone"
    name = text_value(view, key, problems, f"the name of the {what}")
    if name is None:
        return None
    if name not in scope.zone_names:
        declared = ", ".join(sorted(scope.zone_names)) or "none"
        problems.add(
            view.value_line(key),
            view.child(key),
            f"unknown zone '{name}'{did_you_mean(name, scope.zone_names)} "
            f"(declared zones: {declared})",
        )
        return None
    return name if name in scope.zones else None  # declared but invalid: already reported


def _format(view: MapView, problems: Problems) -> WireFormat | None:
    value = view.data.get("format", "avro")
    if value in FORMATS:
        return WireFormat(value)
    hint = did_you_mean(value, FORMATS) if isinstance(value, str) else ""
    problems.add(
        view.value_line("format"),
        view.child("format"),
        f"bad format {describe(value)}{hint} (expected avro or arrow)",
    )
    return None


def _admit(view: MapView, problems: Problems) -> frozenset[RecordKind] | None:
    """Record kinds allowed to cross; default: both."""
    if "admit" not in view.data:
        return frozenset(RecordKind)
    value, line, where = view.data["admit"], view.value_line("admit"), view.child("admit")
    items: list[Any] = [value] if isinstance(value, str) else value
    if not isinstance(items, list) or not items:
        problems.add(
            line,
            where,
            f"expected a list of record kinds (normal, important), got {describe(value)}",
        )
        return None
    kinds: set[RecordKind] = set()
    for i, item in enumerate(items):
        if item not in KINDS:
            at = item_line(value, i, line) if isinstance(value, CommentedSeq) else line
            problems.add(
                at, where, f"unknown record kind {describe(item)} (expected normal or important)"
            )
            continue
        kinds.add(RecordKind(item))
    return frozenset(kinds) if len(kinds) == len(items) else None


def _batch(view: MapView, problems: Problems) -> BatchSettings:
    if "batch" not in view.data:
        return BatchSettings()
    batch = as_map(
        view.data["batch"],
        view.child("batch"),
        view.key_line("batch"),
        "{max_records: N, max_wait_ms: N}",
        problems,
    )
    if batch is None:
        return BatchSettings()
    batch.check_keys(BATCH_KEYS, problems)
    default = BatchSettings()
    return BatchSettings(
        int_value(batch, "max_records", default.max_records, 1, problems),
        int_value(batch, "max_wait_ms", default.max_wait_ms, 0, problems),
    )


def _check_shared_topics(
    new: Corridor, earlier: Mapping[str, Corridor], view: MapView, problems: Problems
) -> None:
    """Two corridors on the same zone pair must not carry the same dataset (one output topic)."""
    for other in earlier.values():
        if (other.origin, other.destination) != (new.origin, new.destination):
            continue
        for dataset in set(other.datasets) & set(new.datasets):
            problems.add(
                view.value_line("datasets"),
                view.child("datasets"),
                f"corridor {other.name} already carries {dataset} from {new.origin} to "
                f"{new.destination}; both would write corridor.{new.origin}-"
                f"{new.destination}.{dataset}",
            )
