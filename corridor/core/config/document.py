"""YAML reading for the corridor file: parse with line numbers, collect problems.

The round-trip loader of ruamel.yaml keeps, on every mapping and sequence, the
line and column of each key, value and item (``.lc``); :class:`MapView` wraps a
mapping with its dotted path so a check can report ``file:line: field: message``
without threading positions by hand. Nothing here raises for a bad file except
:func:`parse_yaml` when the text is not YAML at all: every other problem is
added to a :class:`Problems` collector, so one load reports every error.
"""

from __future__ import annotations

import difflib
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.constructor import RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError

from corridor.core.errors import ConfigError, ConfigErrors


@dataclass
class Problems:
    """Every error found in one file, in the order found."""

    file: str
    errors: list[ConfigError] = field(default_factory=list)

    def add(self, line: int | None, field_path: str, message: str) -> None:
        self.errors.append(ConfigError(self.file, line, field_path, message))

    def raise_if_any(self) -> None:
        """Raise ConfigErrors (sorted by line) if anything was added."""
        if self.errors:
            ordered = sorted(self.errors, key=lambda e: (e.line or 0, e.field))
            raise ConfigErrors(ordered)


class _RecordingConstructor(RoundTripConstructor):
    """Round-trip constructor that records duplicate keys instead of stopping at the first.

    Keeping the first value and carrying on lets one load report every
    duplicate and every other error of the file.
    """

    def check_mapping_key(
        self, node: Any, key_node: Any, mapping: Any, key: Any, value: Any
    ) -> bool:
        if key in mapping:
            found = self.__dict__.setdefault("duplicates", [])
            found.append(
                (node.start_mark.line, node.start_mark.column, key_node.start_mark.line, key)
            )
            return False
        return True


def parse_yaml(path: Path, problems: Problems) -> Any:
    """Read and parse *path*; return the document, or None after adding a problem.

    Duplicate keys are reported (with the dotted path of their mapping) and the
    first occurrence is kept.
    """
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        problems.add(None, "file", f"cannot read the corridor file: {exc.strerror or exc}")
        return None
    yaml = YAML(typ="rt")
    yaml.Constructor = _RecordingConstructor
    try:
        doc = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else None
        problems.add(line, "yaml", f"not valid YAML: {exc.problem or exc.context}")
        return None
    except YAMLError as exc:
        problems.add(None, "yaml", f"not valid YAML: {exc}")
        return None
    _report_duplicates(doc, getattr(yaml.constructor, "duplicates", []), problems)
    return doc


def _report_duplicates(
    doc: Any, found: list[tuple[int, int, int, Any]], problems: Problems
) -> None:
    if not found:
        return
    paths = _mapping_paths(doc, "")
    for map_line, map_col, key_line, key in found:
        parent = paths.get((map_line, map_col), "")
        where = f"{parent}.{key}" if parent else str(key)
        problems.add(
            key_line + 1, where, f"duplicate key '{key}' (the first one is kept; remove one)"
        )


def _mapping_paths(node: Any, path: str) -> dict[tuple[int, int], str]:
    """Position of every mapping in the document -> its dotted path."""
    out: dict[tuple[int, int], str] = {}
    if isinstance(node, CommentedMap):
        out[(node.lc.line, node.lc.col)] = path
        for key, value in node.items():
            out.update(_mapping_paths(value, f"{path}.{key}" if path else str(key)))
    elif isinstance(node, CommentedSeq):
        for i, item in enumerate(node):
            out.update(_mapping_paths(item, f"{path}[{i}]"))
    return out


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the closest choice, or an empty string."""
    close = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def describe(value: Any) -> str:
    """A short name for the YAML type of *value*, for 'expected X, got Y' messages."""
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return f"a boolean ({str(value).lower()})"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, (int, float)):
        return f"a number ({value})"
    return f"'{value}'"


@dataclass(frozen=True)
class MapView:
    """A YAML mapping with its dotted path, giving 1-based lines of its keys and values."""

    data: CommentedMap
    path: str
    line: int | None

    def child(self, key: str) -> str:
        return f"{self.path}.{key}" if self.path else key

    def key_line(self, key: Any) -> int | None:
        try:
            return int(self.data.lc.key(key)[0]) + 1
        except (KeyError, TypeError, AttributeError):
            return self.line

    def value_line(self, key: Any) -> int | None:
        try:
            return int(self.data.lc.value(key)[0]) + 1
        except (KeyError, TypeError, AttributeError):
            return self.key_line(key)

    def sub(self, key: str) -> MapView:
        """View of the mapping under *key* (caller checked it is a mapping)."""
        value = self.data[key]
        return MapView(value, self.child(key), self.key_line(key))

    def check_keys(self, allowed: Iterable[str], problems: Problems) -> None:
        """Refuse keys outside *allowed*, suggesting the closest allowed key."""
        allowed = list(allowed)
        for key in self.data:
            if str(key) not in allowed:
                hint = (
                    did_you_mean(str(key), allowed) or f" (expected one of: {', '.join(allowed)})"
                )
                problems.add(self.key_line(key), self.child(str(key)), f"unknown key '{key}'{hint}")


def as_map(
    value: Any, path: str, line: int | None, what: str, problems: Problems
) -> MapView | None:
    """*value* as a MapView, or None after reporting that a mapping was expected."""
    if isinstance(value, CommentedMap):
        return MapView(value, path, line)
    problems.add(line, path, f"expected {what}, got {describe(value)}")
    return None


def item_line(seq: CommentedSeq, index: int, default: int | None) -> int | None:
    """1-based line of item *index* of a YAML sequence."""
    try:
        return int(seq.lc.item(index)[0]) + 1
    except (KeyError, TypeError, AttributeError, IndexError):
        return default


def text_value(view: MapView, key: str, problems: Problems, what: str) -> str | None:
    """A required non-empty string value, or None after reporting what was expected."""
    if key not in view.data:
        problems.add(view.line, view.child(key), f"missing key '{key}' ({what})")
        return None
    value = view.data[key]
    if isinstance(value, str) and value.strip():
        return str(value).strip()
    problems.add(view.value_line(key), view.child(key), f"expected {what}, got {describe(value)}")
    return None


def int_value(view: MapView, key: str, default: int, minimum: int, problems: Problems) -> int:
    """An optional integer >= minimum; the default if absent or invalid (invalid is reported)."""
    if key not in view.data:
        return default
    value = view.data[key]
    if isinstance(value, int) and not isinstance(value, bool) and value >= minimum:
        return int(value)
    problems.add(
        view.value_line(key),
        view.child(key),
        f"expected an integer >= {minimum}, got {describe(value)}",
    )
    return default


def load_document(path: Path) -> tuple[MapView | None, Problems]:
    """Parse *path* and return its top-level mapping (or None) and the problem list."""
    problems = Problems(str(path))
    doc = parse_yaml(path, problems)
    if doc is None and not problems.errors:
        problems.add(
            None, "file", "the corridor file is empty (expected zones, datasets, corridors)"
        )
    if doc is None:
        return None, problems
    return as_map(doc, "", 1, "a mapping with zones, datasets and corridors", problems), problems
