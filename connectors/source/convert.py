"""File rows into dataset records (pure): what passed, or which column failed and why.

A row is a mapping of column names to cell values as a reader found them. Nested Avro
records are read either as a nested mapping (JSON, Parquet structs, Avro) or, in flat
formats, as dotted column names (``location.port``). A missing column takes the field's
default; a column the schema does not know is ignored (``unknown_columns`` names them
for the summary). Nothing here raises for a bad row: ``convert`` returns a ``Problem``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from connectors.source.problems import Bad
from connectors.source.scalars import coercer, fill
from corridor.core.schema import AvroSchema

VALUE_EXCERPT = 120  # characters of a bad value kept in its reject


@dataclass(frozen=True, slots=True)
class Problem:
    """Why a row does not fit: the dotted ``column`` (None: the row as a whole), the
    ``reason``, and an excerpt of the offending value."""

    column: str | None
    reason: str
    value: str | None = None


def excerpt(value: Any) -> str | None:
    """A printable excerpt of a bad value (None stays None)."""
    if value is None:
        return None
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= VALUE_EXCERPT else text[:VALUE_EXCERPT] + "..."


def unflatten(row: Mapping[str, Any]) -> dict[str, Any]:
    """``{"location.port": x}`` -> ``{"location": {"port": x}}``; other keys unchanged.
    A dotted name under a name that holds a plain value stays flat (``"a.b"`` beside
    ``"a"``): no value is lost, whatever the order of the columns."""
    out: dict[str, Any] = {name: value for name, value in row.items() if "." not in name}
    for name, value in row.items():
        if "." not in name:
            continue
        *parents, last = name.split(".")
        node = out
        for part in parents:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                node, last = out, name
                break
            node = child
        if isinstance(node.get(last), dict):  # "a.b" after "a.b.c": keep both
            node, last = out, name
        node[last] = value
    return out


class RowConverter:
    """Converts rows to records of ``schema`` (a dataset's Avro record schema).

    ``text``: cells are strings to parse (CSV); otherwise typed values (JSON Lines,
    Parquet, Avro). Raises ValueError at construction for a schema it cannot convert to
    (a union of two non-null types).
    """

    def __init__(self, schema: AvroSchema, text: bool) -> None:
        self.schema, self.text = schema, text
        self._fields = [(f["name"], coercer(f["type"], f["name"], text), f)
                        for f in schema.expanded["fields"]]
        self._top = frozenset(name for name, _, _ in self._fields)

    def convert(self, row: Mapping[str, Any]) -> dict[str, Any] | Problem:
        """The record, or the first Problem found (in schema order)."""
        try:
            return {name: fill(row, name, coerce, f, name) for name, coerce, f in self._fields}
        except Bad as bad:
            return Problem(bad.path, bad.reason, excerpt(bad.value))

    def unknown_columns(self, columns: Iterable[str]) -> list[str]:
        """Columns (dotted names allowed) that no field of the schema reads."""
        return sorted(c for c in columns if not self._known(c))

    def _known(self, column: str) -> bool:
        path = column.split(".")
        if path[0] not in self._top:
            return False
        return len(path) == 1 or self.schema.field_type(column) is not None
