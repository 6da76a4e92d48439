"""The `corridors:` section: zones, legal basis, format, admit, batch, rotate (policy: .policy;
instrument: .instruments)."""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from typing import Any, NamedTuple

from ruamel.yaml.comments import CommentedSeq

from corridor.core.config.document import (
    MapView,
    Problems,
    as_map,
    describe,
    did_you_mean,
    int_value,
    item_line,
    text_value,
)
from corridor.core.config.instruments import (
    carries_personal_data,
    check_instrument,
    corridor_instrument,
)
from corridor.core.config.model import (
    BatchSettings,
    Corridor,
    Dataset,
    Instrument,
    KeyTreatment,
    OutputWire,
    RecordKind,
    Transform,
    WireFormat,
    Zone,
)
from corridor.core.config.policy import CorridorScope, build_policy, policy_hash
from corridor.core.config.rotation import RotationSchedule
from corridor.core.config.subjects import (
    build_consent_staleness,
    build_purposes,
    check_subjects,
)
from corridor.core.wire import HEADER_PREFIX

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
    "rotate",
    "key",
    "headers",
    "wire",
    "instrument",
    "purposes",
    "erasable",
    "consent_staleness_seconds",
    "description",
)
BATCH_KEYS = ("max_records", "max_wait_ms")
ROTATE_KEYS = ("every_records", "every_minutes")
ENCRYPTING = (Transform.ENCRYPT, Transform.ENCRYPT_DETERMINISTIC)
# A corridor name is part of topic names (`hk.withheld.<corridor>`).
CORRIDOR_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
FORMATS = [f.value for f in WireFormat]
WIRES = [w.value for w in OutputWire]
RESERVED_HEADER_PREFIX = HEADER_PREFIX
KINDS = [k.value for k in RecordKind]


def build_corridors(
    section: MapView | None,
    zones: Mapping[str, Zone],
    zone_names: set[str],
    datasets: Mapping[str, Dataset],
    dataset_names: set[str],
    problems: Problems,
    instruments: Mapping[str, Instrument] | None = None,
    instrument_ids: set[str] | None = None,
) -> dict[str, Corridor]:
    """Valid corridors by name; also refuses two corridors writing the same output topic.

    *instrument_ids*: the ids the ``instruments:`` section declares (valid or not), None
    when the file has no such section (then no corridor is required to name one)."""
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
        corridor = _build_corridor(scope, _Instruments(instruments or {}, instrument_ids))
        if corridor is not None:
            _check_shared_topics(corridor, corridors, view, problems)
            corridors[key] = corridor
    return corridors


class _Instruments(NamedTuple):
    valid: Mapping[str, Instrument]
    declared: set[str] | None


def _build_corridor(scope: CorridorScope, known: _Instruments) -> Corridor | None:
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
    out_wire = _wire(view, fmt, problems)
    admit = _admit(view, problems)
    pseudonym_key = (
        text_value(view, "pseudonym_key", problems, "a secret name")
        if "pseudonym_key" in view.data
        else f"{scope.name}.pseudonym"
    )
    batch = _batch(view, problems)
    rotate = _rotate(view, problems)
    headers = _headers(view, problems)
    purposes = build_purposes(view, problems)
    consent_staleness = build_consent_staleness(view, problems)
    policy = build_policy(scope, destination)
    if policy is not None:
        check_subjects(view, scope.zones.get(origin or ""), scope.datasets, policy.transform,
                       policy.key, fmt, policy.erasable, purposes, problems)
    if rotate is not None and policy is not None:
        _check_rotate_encrypts(view, policy.transform, policy.key, problems)
    instrument_id = corridor_instrument(view, known.valid, known.declared, problems)
    instrument = known.valid.get(instrument_id) if instrument_id is not None else None
    if origin and destination and policy is not None:  # both zones valid (see _zone_ref)
        personal = carries_personal_data(scope.datasets, policy.transform, policy.key)
        check_instrument(view, instrument, known.declared is not None,
                         scope.zones[origin], scope.zones[destination], personal, problems)
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
        headers,
        out_wire,
        instrument,
        purposes,
        scope.zones[origin].thresholds,
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
        rotate,
        policy.key,
        headers,
        out_wire,
        instrument_id,
        purposes,
        policy.erasable,
        consent_staleness,
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


def _wire(view: MapView, fmt: WireFormat | None, problems: Problems) -> OutputWire:
    """``wire:`` (avro format only): how records are framed; single-object by default."""
    if "wire" not in view.data:
        return OutputWire.SINGLE_OBJECT
    value, line, where = view.data["wire"], view.value_line("wire"), view.child("wire")
    if value not in WIRES:
        hint = did_you_mean(value, WIRES) if isinstance(value, str) else ""
        problems.add(line, where, f"bad wire {describe(value)}{hint} "
                                  "(expected single-object or confluent)")
        return OutputWire.SINGLE_OBJECT
    if fmt is WireFormat.ARROW:
        problems.add(line, where, "wire applies to avro records only: an arrow corridor "
                                  "writes Arrow IPC batches (remove wire, or use format: avro)")
    return OutputWire(value)


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


def _headers(view: MapView, problems: Problems) -> tuple[str, ...]:
    """Park headers allowed to cross: a list of exact names, never a ``corridor-*`` one (the
    corridor's own tags: a park must not be able to forge them)."""
    if "headers" not in view.data:
        return ()
    value, line, where = view.data["headers"], view.value_line("headers"), view.child("headers")
    if not isinstance(value, list):
        problems.add(line, where, f"expected a list of header names, got {describe(value)}")
        return ()
    names: list[str] = []
    for i, item in enumerate(value):
        at = item_line(value, i, line) if isinstance(value, CommentedSeq) else line
        if not isinstance(item, str) or not item.strip():
            problems.add(at, where, f"expected a header name, got {describe(item)}")
        elif item.lower().startswith(RESERVED_HEADER_PREFIX):
            problems.add(at, where, f"header {item} is reserved: {RESERVED_HEADER_PREFIX}* "
                                    "headers are the corridor's own tags and never cross from "
                                    "a park")
        else:
            names.append(item)
    return tuple(names)


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


def _rotate(view: MapView, problems: Problems) -> RotationSchedule | None:
    """The data-key rotation schedule; None when absent or invalid (invalid is reported)."""
    if "rotate" not in view.data:
        return None
    rotate = as_map(
        view.data["rotate"],
        view.child("rotate"),
        view.key_line("rotate"),
        "{every_records: N, every_minutes: T}",
        problems,
    )
    if rotate is None:
        return None
    before = len(problems.errors)
    rotate.check_keys(ROTATE_KEYS, problems)
    # A misspelled trigger is already reported as an unknown key: say it once.
    if len(problems.errors) == before and not any(key in rotate.data for key in ROTATE_KEYS):
        problems.add(
            rotate.line,
            rotate.path,
            "expected every_records, every_minutes or both (remove rotate to rotate only "
            "on request)",
        )
    records = int_value(rotate, "every_records", 0, 1, problems) or None
    minutes = _minutes(rotate, problems)
    if len(problems.errors) > before:
        return None
    return RotationSchedule(records, None if minutes is None else minutes * 60)


def _minutes(view: MapView, problems: Problems) -> float | None:
    """``every_minutes``: a finite number > 0, or None when absent or invalid (reported)."""
    if "every_minutes" not in view.data:
        return None
    value = view.data["every_minutes"]
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if number and math.isfinite(value) and value > 0:
        return float(value)
    problems.add(
        view.value_line("every_minutes"),
        view.child("every_minutes"),
        f"expected a number > 0, got {describe(value)}",
    )
    return None


def _check_rotate_encrypts(
    view: MapView,
    transform: Mapping[str, Mapping[str, Transform]],
    keys: Mapping[str, KeyTreatment],
    problems: Problems,
) -> None:
    """``rotate`` on a corridor that encrypts nothing is a mistake: it has no data key."""
    if any(t in ENCRYPTING for fields in transform.values() for t in fields.values()):
        return
    if KeyTreatment.ENCRYPT_DETERMINISTIC in keys.values():
        return
    problems.add(
        view.key_line("rotate"),
        view.child("rotate"),
        "this corridor encrypts no field, so it has no data key to rotate "
        "(remove rotate, or encrypt a field)",
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
