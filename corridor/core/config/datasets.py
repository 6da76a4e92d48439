"""The `datasets:` section: schemas, field classes, record class, validation rules."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path
from types import MappingProxyType
from typing import Any

from ruamel.yaml.comments import CommentedSeq

from corridor.core.config.document import (
    MapView,
    Problems,
    as_map,
    describe,
    did_you_mean,
    item_line,
    text_value,
)
from corridor.core.config.model import Dataset, FieldClass, RecordClass
from corridor.core.config.subjects import build_subject
from corridor.core.errors import RuleError, SchemaError
from corridor.core.rules import Rule, compile_rule
from corridor.core.schema import AvroSchema, load_schema

DATASET_KEYS = ("schema", "fields", "record_class", "validate", "key", "subject", "description")
KEY_KEYS = ("class",)
RECORD_CLASS_KEYS = ("field", "important_when")
# A dataset name is part of topic names: lowercase words joined by dots.
DATASET_NAME = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z][a-z0-9_]*)*$")
CLASSES = [c.value for c in FieldClass]


def build_datasets(
    section: MapView | None, base: Path, problems: Problems
) -> tuple[dict[str, Dataset], set[str]]:
    """Valid datasets by name, and every declared name (valid or not)."""
    datasets: dict[str, Dataset] = {}
    if section is None:
        return datasets, set()
    for name in section.data:
        key = str(name)
        if not DATASET_NAME.match(key):
            problems.add(
                section.key_line(name),
                section.child(key),
                f"bad dataset name '{key}' (expected lowercase words joined by dots)",
            )
        view = as_map(
            section.data[name],
            section.child(key),
            section.key_line(name),
            "dataset settings {schema, fields, ...}",
            problems,
        )
        dataset = _build_dataset(key, view, base, problems) if view is not None else None
        if dataset is not None:
            datasets[key] = dataset
    return datasets, set(map(str, section.data))


def _build_dataset(name: str, view: MapView, base: Path, problems: Problems) -> Dataset | None:
    before = len(problems.errors)
    view.check_keys(DATASET_KEYS, problems)
    loaded = _load_schema(view, base, problems)
    if loaded is None:
        return None
    schema_path, schema = loaded
    paths = field_paths(schema.raw)
    fields = _build_fields(view, paths, problems)
    record_class = _build_record_class(view, schema, paths, problems)
    validate = _build_validate(view, schema, problems)
    key_class = _build_key_class(view, problems)
    dataset = Dataset(name, schema_path, schema, MappingProxyType(fields), record_class, validate,
                      key_class)
    subject = build_subject(view, dataset, paths, problems)
    if len(problems.errors) > before:
        return None
    return replace(dataset, subject=subject)


def _build_key_class(view: MapView, problems: Problems) -> FieldClass:
    """``key: {class: public|internal|personal|sensitive}``; undeclared: personal."""
    if "key" not in view.data:
        return FieldClass.PERSONAL
    key = as_map(view.data["key"], view.child("key"), view.key_line("key"),
                 "{class: public | internal | personal | sensitive}", problems)
    if key is None:
        return FieldClass.PERSONAL
    key.check_keys(KEY_KEYS, problems)
    value = key.data.get("class")
    if value in CLASSES:
        return FieldClass(value)
    hint = did_you_mean(value, CLASSES) if isinstance(value, str) else ""
    problems.add(key.value_line("class") if "class" in key.data else key.line, key.child("class"),
                 f"bad key class {describe(value)}{hint} (expected one of: {', '.join(CLASSES)})")
    return FieldClass.PERSONAL


def _load_schema(view: MapView, base: Path, problems: Problems) -> tuple[Path, AvroSchema] | None:
    text = text_value(view, "schema", problems, "the path of an Avro schema file (.avsc)")
    if text is None:
        return None
    line, where = view.value_line("schema"), view.child("schema")
    path = base / text
    if not path.is_file():
        problems.add(line, where, f"schema file not found: {path}")
        return None
    try:
        return path, load_schema(path)
    except SchemaError as exc:
        problems.add(line, where, f"invalid schema {path}: {exc}")
        return None


def field_paths(raw: Any) -> dict[str, Any]:
    """Every dotted field path of an Avro record schema -> its Avro type (named types resolved).

    Only records nest paths; an array or map field is one path.
    """
    names: dict[str, Any] = {}
    out: dict[str, Any] = {}
    _walk(raw, "", raw.get("namespace", ""), names, out)
    return out


def _walk(
    record: dict[str, Any], prefix: str, namespace: str, names: dict[str, Any], out: dict[str, Any]
) -> None:
    namespace = record.get("namespace", namespace)
    for f in record.get("fields", []):
        path = f"{prefix}{f['name']}"
        ftype = _resolve(f["type"], namespace, names)
        out[path] = ftype
        for branch in ftype if isinstance(ftype, list) else [ftype]:
            branch = _resolve(branch, namespace, names)
            if isinstance(branch, dict) and branch.get("type") == "record":
                _walk(branch, f"{path}.", namespace, names, out)


def _resolve(t: Any, namespace: str, names: dict[str, Any]) -> Any:
    """Register named types on first sight; replace a later reference by its definition."""
    if isinstance(t, dict) and t.get("type") in ("record", "enum", "fixed") and "name" in t:
        ns = t.get("namespace", namespace)
        full = t["name"] if "." in t["name"] or not ns else f"{ns}.{t['name']}"
        names[full] = names[t["name"]] = t
    if isinstance(t, str):
        return names.get(t, names.get(f"{namespace}.{t}", t))
    return t


def check_path(
    path: str, paths: dict[str, Any], line: int | None, where: str, what: str, problems: Problems
) -> bool:
    """Report a dotted *path* absent from *paths*; True when present."""
    if path in paths:
        return True
    problems.add(line, where, f"field '{path}' is not in {what}{did_you_mean(path, paths)}")
    return False


def _build_fields(
    view: MapView, paths: dict[str, Any], problems: Problems
) -> dict[str, FieldClass]:
    fields: dict[str, FieldClass] = {}
    if "fields" not in view.data:
        return fields
    section = as_map(
        view.data["fields"],
        view.child("fields"),
        view.key_line("fields"),
        "a mapping of field path to class (public, internal, personal, sensitive)",
        problems,
    )
    if section is None:
        return fields
    for path in section.data:
        key, value = str(path), section.data[path]
        check_path(key, paths, section.key_line(path), section.child(key), "the schema", problems)
        if value not in CLASSES:
            hint = did_you_mean(str(value), CLASSES) if isinstance(value, str) else ""
            problems.add(
                section.value_line(path),
                section.child(key),
                f"unknown field class {describe(value)}{hint} (expected one of: "
                f"{', '.join(CLASSES)})",
            )
            continue
        fields[key] = FieldClass(value)
    return fields


def compile_at(
    value: Any,
    schema: AvroSchema,
    line: int | None,
    where: str,
    problems: Problems,
    context: str = "",
) -> Rule | None:
    """Compile rule *value* against *schema*; a RuleError becomes a located ConfigError."""
    if not isinstance(value, str) or not value.strip():
        problems.add(
            line, where, f'expected a rule such as "consent == false", got {describe(value)}'
        )
        return None
    try:
        return compile_rule(str(value).strip(), schema.arrow)
    except RuleError as exc:
        at = f" at column {exc.column}" if exc.column is not None else ""
        problems.add(line, where, f'bad rule "{str(value).strip()}"{context}: {exc.message}{at}')
        return None


def _build_record_class(
    view: MapView, schema: AvroSchema, paths: dict[str, Any], problems: Problems
) -> RecordClass | None:
    if "record_class" not in view.data:
        return None
    rc = as_map(
        view.data["record_class"],
        view.child("record_class"),
        view.key_line("record_class"),
        '{field: ..., important_when: "rule"}',
        problems,
    )
    if rc is None:
        return None
    rc.check_keys(RECORD_CLASS_KEYS, problems)
    field = text_value(rc, "field", problems, "the field that makes a record important")
    if field is not None:
        check_path(field, paths, rc.value_line("field"), rc.child("field"), "the schema", problems)
    if "important_when" not in rc.data:
        problems.add(rc.line, rc.child("important_when"), "missing key 'important_when' (a rule)")
        return None
    rule = compile_at(
        rc.data["important_when"],
        schema,
        rc.value_line("important_when"),
        rc.child("important_when"),
        problems,
    )
    return RecordClass(field, rule) if field is not None and rule is not None else None


def _build_validate(view: MapView, schema: AvroSchema, problems: Problems) -> tuple[Rule, ...]:
    if "validate" not in view.data:
        return ()
    value, where = view.data["validate"], view.child("validate")
    if isinstance(value, str):
        rule = compile_at(value, schema, view.value_line("validate"), where, problems)
        return (rule,) if rule is not None else ()
    if not isinstance(value, CommentedSeq):
        problems.add(
            view.value_line("validate"),
            where,
            f"expected a rule or a list of rules, got {describe(value)}",
        )
        return ()
    rules = [
        compile_at(
            item, schema, item_line(value, i, view.key_line("validate")), f"{where}[{i}]", problems
        )
        for i, item in enumerate(value)
    ]
    return tuple(r for r in rules if r is not None)
