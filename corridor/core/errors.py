"""One error tree for corridor.

Every error carries the structured fields that say *where* and *what*, and
builds its message from them, so that a log line or a CLI error can show both
a human sentence and machine-readable fields. Secrets never go into an error:
callers pass key ids, never key bytes.
"""

from __future__ import annotations


class CorridorError(Exception):
    """Root of every error corridor raises on purpose."""

    def fields(self) -> dict[str, object]:
        """Structured fields of this error, for logs."""
        return {}


class ConfigError(CorridorError):
    """A corridor file, or a file it names, is invalid.

    ``file`` and ``line`` locate the problem (line is 1-based, or None when the
    whole file is at fault); ``field`` is the dotted path of the offending key
    (``corridors.hk-eu.transform.contact_email``).
    """

    def __init__(self, file: str, line: int | None, field: str, message: str) -> None:
        self.file = file
        self.line = line
        self.field = field
        self.message = message
        super().__init__(self.render())

    def render(self) -> str:
        where = f"{self.file}:{self.line}" if self.line is not None else self.file
        return f"{where}: {self.field}: {self.message}"

    def fields(self) -> dict[str, object]:
        return {"file": self.file, "line": self.line, "field": self.field}


class ConfigErrors(CorridorError):
    """Several ConfigErrors found in one load; all are reported at once."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = list(errors)
        super().__init__("\n".join(e.render() for e in self.errors))


class RuleError(CorridorError):
    """A rule expression is malformed or names something that does not exist.

    ``column`` is the 1-based position in the rule text where parsing failed,
    when known. Config loading wraps this into a ConfigError with file/line.
    """

    def __init__(self, rule: str, message: str, column: int | None = None) -> None:
        self.rule = rule
        self.message = message
        self.column = column
        at = f" at column {column}" if column is not None else ""
        super().__init__(f"{message}{at} in rule {rule!r}")


class SchemaError(CorridorError):
    """An Avro schema is invalid or cannot be used as asked."""


class DecodeError(CorridorError):
    """One message could not be decoded. Usually carried as a value (quarantine)."""

    def __init__(
        self,
        reason: str,
        topic: str | None = None,
        partition: int | None = None,
        offset: int | None = None,
    ) -> None:
        self.reason = reason
        self.topic = topic
        self.partition = partition
        self.offset = offset
        where = f"{topic}/{partition}/{offset}: " if topic is not None else ""
        super().__init__(f"{where}{reason}")

    def fields(self) -> dict[str, object]:
        return {"topic": self.topic, "partition": self.partition, "offset": self.offset}


class CryptoError(CorridorError):
    """Encryption or decryption failed. Never carries key material."""


class KeyNotFound(CryptoError):
    """No key is known for this key id (retired, never published, other zone)."""


class WrongKey(CryptoError):
    """The key exists but is not the one this ciphertext was made for."""


class TamperedCiphertext(CryptoError):
    """The ciphertext, or the context it is bound to, was altered."""


class ContextMismatch(CryptoError):
    """The ciphertext was moved to another field, dataset or corridor."""


class KeyProviderUnavailable(CryptoError):
    """The KMS or kek_provider cannot be reached; the corridor must pause, not leak."""


class KeyUsageExhausted(CryptoError):
    """A data key reached its encryption limit; the caller must rotate to a new epoch."""

    def __init__(self, key_id: str, limit: int, used: int) -> None:
        self.key_id = key_id
        self.limit = limit
        self.used = used
        super().__init__(
            f"data key {key_id} has done {used} of its {limit} encryptions; rotate the key"
        )

    def fields(self) -> dict[str, object]:
        return {"key_id": self.key_id, "limit": self.limit, "used": self.used}


class KeyFileError(CryptoError):
    """A key file or keyring folder is missing, already there, or too widely readable."""

    def __init__(self, path: str, message: str, mode: int | None = None) -> None:
        self.path = path
        self.message = message
        self.mode = mode
        super().__init__(f"{path}: {message}")

    def fields(self) -> dict[str, object]:
        return {"path": self.path, "mode": None if self.mode is None else oct(self.mode)}


class ZoneError(CorridorError):
    """A local zone (Kafka cluster) could not be started, stopped or reached."""

    def __init__(self, zone: str, message: str) -> None:
        self.zone = zone
        self.message = message
        super().__init__(f"zone {zone}: {message}")

    def fields(self) -> dict[str, object]:
        return {"zone": self.zone}


class KafkaUnavailable(CorridorError):
    """A cluster did not answer in time, or refused a request.

    ``code`` is the Kafka error's name when one is known (``KafkaError.name()``:
    ``'TOPIC_AUTHORIZATION_FAILED'``, ``'_TRANSPORT'``, ...), None otherwise. Callers that
    decide whether to retry look at the code, never at the message's words.
    """

    def __init__(self, message: str, code: str | None = None) -> None:
        self.message = message
        self.code = code
        super().__init__(message)

    def fields(self) -> dict[str, object]:
        return {"code": self.code}


class PlanError(CorridorError):
    """A corridor cannot be planned: it would leak, or it lacks a key it needs.

    Raised at start-up, before any record is read: a policy that would leak is
    refused, not run.
    """

    def __init__(self, corridor: str, message: str) -> None:
        self.corridor = corridor
        self.message = message
        super().__init__(f"corridor {corridor}: {message}")

    def fields(self) -> dict[str, object]:
        return {"corridor": self.corridor}


class SourceRecreated(CorridorError):
    """A corridor's source topic was deleted and recreated under the same name: its offsets
    restart, so its records would reuse lineages that already crossed. The processor
    refuses to read it (nothing of the new topic is processed)."""

    def __init__(self, corridor: str, topic: str, stored_id: str, current_id: str) -> None:
        self.corridor, self.topic = corridor, topic
        self.stored_id, self.current_id = stored_id, current_id
        super().__init__(
            f"corridor {corridor}: source topic {topic} was deleted and recreated (topic id "
            f"{stored_id} when its records crossed, {current_id} now): its offsets start "
            f"again, and its records would reuse source lineages that already crossed. "
            f"Nothing of the new topic was read. Restore the original topic, or retire "
            f"this corridor's outcome topics and stored offsets before carrying the new one")

    def fields(self) -> dict[str, object]:
        return {"corridor": self.corridor, "topic": self.topic, "stored_topic_id": self.stored_id,
                "current_topic_id": self.current_id}


class RegistryError(CorridorError):
    """A schema registry refused a request: ``status`` is the HTTP status (404: no such
    schema id or subject, 409: incompatible, 422: invalid schema), ``code`` the registry's own
    error code when it sent one (Confluent API: 40403 = schema not found). Not retried: the
    request itself is wrong. A registry that does not answer is RegistryUnavailable."""

    def __init__(self, url: str, status: int, message: str, code: int | None = None) -> None:
        self.url, self.status, self.code, self.message = url, status, code, message
        super().__init__(f"schema registry {url}: HTTP {status}: {message}")

    def fields(self) -> dict[str, object]:
        return {"url": self.url, "status": self.status, "code": self.code}


class RegistryUnavailable(CorridorError):
    """A schema registry did not answer, or answered that it cannot now (HTTP 5xx, 408, 429).

    Not a RegistryError on purpose: a caller that quarantines on RegistryError must not
    quarantine on this; it waits and asks again. ``status`` is None when nothing answered."""

    def __init__(self, url: str, message: str, status: int | None = None) -> None:
        self.url, self.status, self.message = url, status, message
        super().__init__(f"schema registry {url} unavailable: {message}")

    def fields(self) -> dict[str, object]:
        return {"url": self.url, "status": self.status}


class ConsentRecordError(CorridorError):
    """A consent record's value is malformed (``corridor.core.consent``). Carried as a value
    by the consent view: the subject's records are withheld ``consent_invalid``."""

    def __init__(self, reason: str) -> None:
        self.reason = reason
        super().__init__(f"malformed consent record: {reason}")


class Erased(CorridorError):
    """A value was encrypted under a per-subject key that was destroyed (``corridor erase``):
    the subject was erased. Not a CryptoError: nothing is wrong with the ciphertext, and the
    rest of the record (and every other subject's values) still reads. ``key_id`` is the
    subject key's id (it names no one), ``field`` the field's dotted path when known."""

    def __init__(self, key_id: str, field: str | None = None, erased_at_ms: int | None = None
                 ) -> None:
        self.key_id, self.field, self.erased_at_ms = key_id, field, erased_at_ms
        where = f"field {field}: " if field is not None else ""
        super().__init__(f"{where}the value was encrypted under subject key {key_id}, which was "
                         "destroyed: its subject was erased")

    def fields(self) -> dict[str, object]:
        return {"key_id": self.key_id, "field": self.field, "erased_at_ms": self.erased_at_ms}
