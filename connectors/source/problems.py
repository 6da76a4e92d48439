"""The signal a value coercion raises, and the names rejects give value types (pure)."""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

Coerce = Callable[[Any], Any]


class Bad(Exception):
    """One value does not fit: ``path`` (dotted column) and ``reason``. Internal signal."""

    def __init__(self, path: str, reason: str, value: Any = None) -> None:
        super().__init__(f"{path}: {reason}")
        self.path, self.reason, self.value = path, reason, value


def kind_of(value: Any) -> str:
    """The name a reject gives a value's type (``string``, ``integer``, ``list``...)."""
    names = {str: "string", bool: "boolean", int: "integer", float: "number", bytes: "bytes",
             dict: "object", list: "list", datetime: "timestamp", date: "date"}
    for python_type, name in names.items():
        if isinstance(value, python_type):
            return name
    return type(value).__name__
