"""``SchemaRegistry``: one registry's writer schemas by id, parsed once and kept.

A registry gives an id to a schema's content once and for all (Confluent API), so a
schema fetched by id is kept for the life of the process; an id the registry does not
know (404) is not kept: it may be registered a moment later.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from corridor.core.errors import RegistryError, SchemaError
from corridor.core.schema import AvroSchema, parse_schema
from corridor.kafka.registry_client import ConfluentRegistryApi

NOT_FOUND = 404


class RegistryApi(Protocol):
    """What ``SchemaRegistry`` asks a registry (``corridor.kafka.registry_client``)."""

    url: str

    def schema(self, schema_id: int) -> tuple[str, str, int]:
        """(schema text, type, number of references); RegistryError / RegistryUnavailable."""
        ...

    def register(self, subject: str, schema_text: str, schema_type: str = "AVRO") -> int: ...

    def subjects(self) -> list[str]: ...

    def close(self) -> None: ...


@dataclass(frozen=True)
class WriterSchemas:
    """The schemas behind a batch's ids. ``found`` is what ``corridor.core.pipeline.process``
    takes as ``writer_schemas``; ``refused`` holds, per id it could not use, why (unknown to
    the registry, not Avro, uses references, not a record corridor can read)."""

    found: Mapping[int, AvroSchema] = field(default_factory=dict)
    refused: Mapping[int, str] = field(default_factory=dict)


class SchemaRegistry:
    """A zone's schema registry, with a cache of parsed schemas by id."""

    def __init__(self, api: RegistryApi) -> None:
        self.api = api
        self.url = api.url
        self._by_id: dict[int, AvroSchema] = {}
        self._unusable: dict[int, str] = {}  # known ids whose schema corridor cannot use

    def schema(self, schema_id: int) -> AvroSchema:
        """The Avro schema with this id. Raises RegistryError (404: unknown id; 422: a schema
        corridor cannot use, the reason says why) or RegistryUnavailable."""
        if schema_id in self._by_id:
            return self._by_id[schema_id]
        if schema_id in self._unusable:
            raise RegistryError(self.url, 422, self._unusable[schema_id])
        text, kind, references = self.api.schema(schema_id)
        problem = _unusable(schema_id, kind, references)
        if problem is None:
            try:
                parsed = parse_schema(json.loads(text), source=f"schema id {schema_id}")
            except (ValueError, SchemaError) as exc:
                problem = f"schema id {schema_id} is not an Avro record corridor can read: {exc}"
            else:
                self._by_id[schema_id] = parsed
                return parsed
        self._unusable[schema_id] = problem
        raise RegistryError(self.url, 422, problem)

    def writer_schemas(self, ids: Iterable[int]) -> WriterSchemas:
        """Every id's schema, fetching the ones not kept yet. Raises RegistryUnavailable
        (nothing is decided: ask again later); any other failure is a ``refused`` reason."""
        found: dict[int, AvroSchema] = {}
        refused: dict[int, str] = {}
        for schema_id in sorted(set(ids)):
            try:
                found[schema_id] = self.schema(schema_id)
            except RegistryError as exc:
                refused[schema_id] = (f"schema id {schema_id} is unknown to the registry"
                                      if exc.status == NOT_FOUND else exc.message)
        return WriterSchemas(found, refused)

    def register(self, subject: str, schema: AvroSchema | Mapping[str, Any] | str) -> int:
        """Register ``schema`` (Avro) under ``subject``; its id (the existing one when the
        subject already has it). Raises RegistryError (409: incompatible with the subject's
        earlier versions; 422: invalid) or RegistryUnavailable."""
        raw = schema.raw if isinstance(schema, AvroSchema) else schema
        text = raw if isinstance(raw, str) else json.dumps(raw, separators=(",", ":"))
        schema_id = self.api.register(subject, text, "AVRO")
        if isinstance(schema, AvroSchema):
            self._by_id.setdefault(schema_id, schema)
        return schema_id

    def subjects(self) -> list[str]:
        return self.api.subjects()

    def close(self) -> None:
        self.api.close()


def _unusable(schema_id: int, kind: str, references: int) -> str | None:
    if kind.upper() != "AVRO":
        return f"schema id {schema_id} is {kind}, not Avro"
    if references:
        return f"schema id {schema_id} uses {references} schema references (not supported)"
    return None


def connect(url: str, user: str | None = None, password: str | None = None,
            timeout_s: float = 10.0, retries: int = 2) -> SchemaRegistry:
    """The registry at ``url`` (the Confluent-compatible API's base), with basic auth when
    ``user`` and ``password`` are given (the caller reads them from the environment
    variables the corridor file names)."""
    return SchemaRegistry(ConfluentRegistryApi(url, user, password, timeout_s, retries))
