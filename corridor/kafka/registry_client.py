"""A schema registry's Confluent-compatible REST API, through confluent-kafka's ``SchemaRegistryClient``.

Owns the HTTP exchange (confluent-kafka's client: basic auth, retries with backoff on
transport errors and on 408/429/5xx) and turns its failures into corridor's errors: an
answer that refuses the request is ``RegistryError`` with the HTTP status and the
registry's error code; no answer, or a 408/429/5xx still there after the client's
retries, is ``RegistryUnavailable``. It does not parse or cache schemas: that is
``corridor.registry``'s (it lives here only because every use of ``confluent_kafka``
does, see ARCHITECTURE.md). Needs ``confluent-kafka[schemaregistry]``.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from confluent_kafka.schema_registry import Schema, SchemaRegistryClient
from confluent_kafka.schema_registry.error import SchemaRegistryError

from corridor.core.errors import RegistryError, RegistryUnavailable

try:  # the HTTP library confluent-kafka's client itself uses (httpx2, else httpx)
    from confluent_kafka.schema_registry.common._httpx_compat import httpx as _http
except ImportError:  # an older confluent-kafka: httpx
    import httpx as _http  # type: ignore[no-redef]

T = TypeVar("T")
RETRIABLE = frozenset({408, 429})  # and every 5xx


class ConfluentRegistryApi:
    """One registry's API. ``url`` is the API's base (``.../apis/ccompat/v7`` on Apicurio).

    ``retries``: how many times the client retries a transport error or a retriable
    status before ``RegistryUnavailable`` (waits from 100 ms, doubling, at most 2 s).
    """

    def __init__(self, url: str, user: str | None = None, password: str | None = None,
                 timeout_s: float = 10.0, retries: int = 2) -> None:
        self.url = url
        conf: dict[str, object] = {
            "url": url, "timeout": timeout_s, "max.retries": retries,
            "retries.wait.ms": 100, "retries.max.wait.ms": 2000,
        }
        if user is not None and password is not None:
            conf["basic.auth.user.info"] = f"{user}:{password}"
        self._client = SchemaRegistryClient(conf)

    def schema(self, schema_id: int) -> tuple[str, str, int]:
        """(schema text, schema type ``AVRO``/``JSON``/``PROTOBUF``, number of references)."""
        found = self._call(lambda: self._client.get_schema(schema_id))
        return found.schema_str or "", found.schema_type or "AVRO", len(found.references or [])

    def register(self, subject: str, schema_text: str, schema_type: str = "AVRO") -> int:
        """Register (or find) the schema under ``subject``; its id."""
        return int(self._call(lambda: self._client.register_schema(
            subject, Schema(schema_text, schema_type))))

    def subjects(self) -> list[str]:
        return list(self._call(self._client.get_subjects))

    def close(self) -> None:
        self._client.close()

    def _call(self, request: Callable[[], T]) -> T:
        try:
            return request()
        except SchemaRegistryError as exc:
            status, message = exc.http_status_code, exc.error_message or str(exc)
            if status in RETRIABLE or status >= 500:
                raise RegistryUnavailable(self.url, f"HTTP {status}: {message}", status) from exc
            code = exc.error_code if exc.error_code != SchemaRegistryError.UNKNOWN else None
            raise RegistryError(self.url, status, message, code) from exc
        except _http.TransportError as exc:  # refused, reset, DNS, timeout
            raise RegistryUnavailable(self.url, f"{type(exc).__name__}: {exc}") from exc
