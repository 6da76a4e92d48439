"""Public SDK: parks produce into their zone; analytics consume corridor topics.

    producer = ParkProducer(config, "hk", "trade.shipment")
    producer.send({...})                      # validated, single-object Avro
    producer.flush()                          # dialect="confluent" | "json": the others


    with CorridorConsumer(config, "corridor.hk-eu.trade.shipment", kek_provider=LocalKekProvider()) as c:
        for record in c.records(idle_timeout_s=5):
            record.value, record.headers["corridor-jurisdiction"], record.lineage

A consumer reads at read_committed (only what a corridor transaction
committed), resolves egress schemas from ``_corridor.schemas``, reads Arrow
batches as one record per row, and, given the destination zone's key
provider, decrypts encrypted fields with the wrapped data keys of
``_corridor.keys`` (a wrong key or an altered value raises a CryptoError;
without a key provider encrypted fields stay ciphertext bytes, and arrow
whole-column ciphertexts are left out of the rows). Records of a ``wire: confluent``
corridor (``00`` + schema id) are read with the egress schema of that id in the
destination zone's schema registry.

Erasable fields (``erasable:`` in the corridor file) are decrypted with the subject keys of
``_corridor.subject_keys`` (wrapped by the same KEK). When a record's subject was erased
(``corridor erase``), the record is still delivered: its erasable fields are null,
``record.erased`` lists an ``Erased`` per such field, and ``record.value_at(path)`` raises
it; every other field, and every other subject's records, read as before. A running
consumer follows the subject key topic, so it learns of an erasure while it reads.

    try:
        email = record.value_at("contact_email")
    except Erased as exc:       # exc.field, exc.key_id, exc.erased_at_ms
        email = None

A delete at the origin (a tombstone, e.g. Debezium's) crosses an avro corridor as a
tombstone: the consumer yields it as a record whose ``value`` is None and ``deleted`` True,
with its lineage, residency headers, source timestamp and its key as it crossed (the
treatment in ``key_treatment``; decrypted like any key when a key provider is given).

    if record.deleted:
        forget(record.key)
"""

from __future__ import annotations

import base64
import io
import json
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any, Self

import fastavro
import pyarrow as pa
from fastavro.validation import ValidationError, validate

from corridor.core import topics, wire
from corridor.core.codec import encode_avro, from_ipc
from corridor.core.codec.arrow_batches import ipc_messages
from corridor.core.config import Config, KeyTreatment, load_config
from corridor.core.crypto.decrypt import decrypt_column
from corridor.core.errors import (
    ConfigError,
    CorridorError,
    DecodeError,
    Erased,
    SchemaError,
)
from corridor.core.policy.key import KEY_FIELD
from corridor.core.schema import KEY_ATTRIBUTE, AvroSchema, frame, unframe
from corridor.core.wire import (
    HEADERS_COLUMN,
    KEY_COLUMN,
    LINEAGE,
    LINEAGE_OFFSET,
    LINEAGE_ROW,
    META_COLUMNS,
    TIMESTAMP_COLUMN,
)
from corridor.kafka.clients import Endpoint
from corridor.kafka.io import Follower, PlainProducer, Record
from corridor.keys.provider import KekProvider
from corridor.processor.resolve import admin, schema_registry, zone_endpoint
from corridor.registry import SchemaRegistry
from corridor.sdk.catalog import Catalog
from corridor.sdk.decrypt import (
    ErasedRows,
    decrypt_rows,
    encrypted_fields,
    get_path,
    match_egress,
    unseal_rows,
)
from corridor.zones.credentials import Principal


def _admin() -> Principal:
    return admin()


def _config(config: Config | str | Path) -> Config:
    return config if isinstance(config, Config) else load_config(config)


def _key_bytes(key: bytes | str | None) -> bytes | None:
    return key.encode() if isinstance(key, str) else key


DIALECTS = ("single-object", "confluent", "json")


def _jsonable(value: Any) -> Any:
    """A record value in the JSON conventions of ``corridor.core.codec.json_decode``: bytes
    as base64, decimals as strings, timestamps as ISO-8601 UTC, dates as YYYY-MM-DD."""
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, (bytes, bytearray)):
        return base64.b64encode(value).decode("ascii")
    if isinstance(value, Decimal):
        return str(value)
    if isinstance(value, datetime):
        utc = value.astimezone(UTC) if value.tzinfo else value.replace(tzinfo=UTC)
        digits = "milliseconds" if utc.microsecond % 1000 == 0 else "microseconds"
        return utc.isoformat(timespec=digits).replace("+00:00", "Z")
    if isinstance(value, date):
        return value.isoformat()
    return value


class ParkProducer:
    """Produces one dataset's records into ``<zone>.outbound.<dataset>``.

    ``principal`` defaults to the local admin (a park's own principal in production).
    ``dialect``: ``single-object`` Avro (default); ``confluent``: the dataset schema is
    registered under ``<topic>-value`` in the zone's schema registry (``schema_registry:``
    of the zone; RegistryError / RegistryUnavailable raised here) and records are framed
    ``00`` + its id; ``json``: one UTF-8 JSON object per record (``_jsonable``).
    """

    def __init__(self, config: Config | str | Path, zone: str, dataset: str,
                 principal: Principal | None = None, dialect: str = "single-object") -> None:
        cfg = _config(config)
        if dataset not in cfg.datasets:
            raise ConfigError(str(cfg.path), None, f"datasets.{dataset}", "no such dataset")
        if dialect not in DIALECTS:
            raise ConfigError(str(cfg.path), None, "dialect",
                              f"unknown dialect {dialect!r} (expected one of {DIALECTS})")
        self.schema: AvroSchema = cfg.datasets[dataset].schema
        self.topic = topics.outbound(zone, dataset)
        self.dialect, self.schema_id = dialect, None
        if dialect == "confluent":
            registry = schema_registry(cfg, zone)
            if registry is None:
                raise ConfigError(str(cfg.path), None, f"zones.{zone}.schema_registry",
                                  "dialect confluent needs the zone's schema registry")
            self.schema_id = registry.register(wire.registry_subject(self.topic), self.schema)
            registry.close()
        self._out = PlainProducer(zone_endpoint(cfg, zone), principal or _admin())

    def encode(self, record: Mapping[str, Any]) -> bytes:
        """``record`` in the producer's dialect. Raises SchemaError naming what is wrong."""
        try:
            validate(dict(record), self.schema.parsed, raise_errors=True)
        except ValidationError as exc:
            raise SchemaError(f"record is not a valid {self.schema.name}: {exc}") from None
        if self.dialect == "json":
            return json.dumps(_jsonable(dict(record)), separators=(",", ":")).encode()
        body = io.BytesIO()
        fastavro.schemaless_writer(body, self.schema.parsed, dict(record))
        if self.schema_id is not None:
            return wire.confluent_frame(self.schema_id, body.getvalue())
        return frame(self.schema.fingerprint, body.getvalue())

    def send(self, record: Mapping[str, Any], key: bytes | str | None = None) -> None:
        """Validate, encode and queue one record (``flush`` waits for acknowledgements)."""
        self._out.produce(self.topic, self.encode(record), _key_bytes(key))

    def send_batch(self, batch: pa.RecordBatch, keys: Sequence[bytes | None] | None = None) -> None:
        """Encode every row of an Arrow batch (the dataset's Arrow schema) and queue it."""
        values = encode_avro(batch, self.schema)
        for i, value in enumerate(values):
            self._out.produce(self.topic, value, keys[i] if keys is not None else None)

    def send_arrow(self, batch: pa.RecordBatch, key: bytes | str | None = None,
                   max_bytes: int = 1024 * 1024, compression: str | None = "zstd") -> int:
        """Queue an Arrow batch (the dataset's Arrow schema) as Arrow IPC messages of at
        most ``max_bytes`` each: one record per row for the corridor. Returns messages queued.

        Rows are not validated here: the corridor quarantines a row that does not fit
        the dataset (wrong column type, null in a required field) with the reason.
        """
        messages = ipc_messages(batch, max_bytes, compression)
        for message in messages:
            self._out.produce(self.topic, message, _key_bytes(key))
        return len(messages)

    def send_raw(self, value: bytes | None, key: bytes | str | None = None) -> None:
        """Queue bytes as they are (no validation): for connectors and for testing quarantine."""
        self._out.produce(self.topic, value, _key_bytes(key))

    def flush(self, timeout_s: float = 60.0) -> None:
        """Wait for every queued record. Raises KafkaUnavailable if any was not acknowledged."""
        self._out.flush(timeout_s)


@dataclass(frozen=True)
class CorridorRecord:
    """One delivered record: its (decrypted when possible) value and residency tags.

    ``lineage`` is ``topic/partition/offset`` of the source record in its origin.
    ``key`` is the record key as it crossed (pseudonymized by default; decrypted when it
    was encrypted and a key provider was given), ``key_treatment`` what the corridor did
    to it, ``timestamp_ms`` the source record's timestamp. ``park_headers``: the park
    headers the corridor let through (arrow format; avro records carry them as headers).
    ``erased``: an ``Erased`` per erasable field whose subject was erased (value null).
    ``value`` None: a tombstone, the delete of the record of ``key`` (``deleted``).
    """

    value: dict[str, Any] | None
    headers: dict[str, str]
    lineage: str
    key: bytes | None = None
    topic: str = ""
    partition: int = -1
    offset: int = -1
    extra: dict[str, Any] = field(default_factory=dict, repr=False)
    key_treatment: str = ""
    timestamp_ms: int | None = None
    park_headers: tuple[tuple[str, bytes | None], ...] = ()
    erased: tuple[Erased, ...] = ()

    @property
    def deleted(self) -> bool:
        """A tombstone: the record of ``key`` was deleted at the origin (no value)."""
        return self.value is None

    def value_at(self, path: str) -> Any:
        """The value at dotted *path* (None on a tombstone); raises ``Erased`` when its
        subject was erased."""
        for error in self.erased:
            if error.field == path:
                raise error
        return None if self.value is None else get_path(self.value, path)


def _destination(config: Config, topic: str) -> str:
    for c in config.corridors.values():
        if any(topics.corridor_topic(c.origin, c.destination, d) == topic for d in c.datasets):
            return c.destination
    raise ConfigError(str(config.path), None, "corridors",
                      f"no corridor of this file writes topic {topic}")


class CorridorConsumer:
    """Reads a corridor topic. ``source`` is a Config (the topic's zone is looked up) or an
    Endpoint. ``kek_provider`` is the destination zone's KekProvider (e.g. LocalKekProvider).

    Without ``group`` every partition is read from the beginning (or the end);
    with ``group`` the group's committed offsets win (auto-commit).
    """

    def __init__(self, source: Config | Endpoint | str | Path, topic: str,
                 kek_provider: KekProvider | None = None, group: str | None = None,
                 from_beginning: bool = True, principal: Principal | None = None,
                 registry: SchemaRegistry | None = None) -> None:
        """``registry``: the destination zone's schema registry, for ``wire: confluent``
        records (default: the zone's ``schema_registry:`` when ``source`` is a Config)."""
        self.registry = registry
        if isinstance(source, Endpoint):
            endpoint = source
        else:
            cfg = _config(source)
            zone = _destination(cfg, topic)
            endpoint = zone_endpoint(cfg, zone)
            self.registry = registry or schema_registry(cfg, zone)
        principal = principal or _admin()
        self.topic, self.kek_provider = topic, kek_provider
        self.catalog = Catalog(endpoint, principal, kek_provider)
        self._follower = Follower(endpoint, principal, topic, group=group,
                                  from_beginning=from_beginning)

    def poll(self, timeout_s: float = 0.5) -> list[CorridorRecord]:
        """Records that arrived within ``timeout_s`` (maybe none), in partition order."""
        out: list[CorridorRecord] = []
        records = self._follower.poll(timeout_s)
        self.catalog.follow_subject_keys()  # an erasure applies from the next record on
        for rec in records:
            out.extend(self.decode(rec))
        return out

    def records(self, max_records: int | None = None,
                idle_timeout_s: float | None = None) -> Iterator[CorridorRecord]:
        """Yield records; stop after ``max_records``, or once nothing arrived for
        ``idle_timeout_s`` seconds (None: follow forever)."""
        seen, idle_since = 0, time.monotonic()
        while max_records is None or seen < max_records:
            batch = self.poll(0.5)
            if batch:
                idle_since = time.monotonic()
            elif idle_timeout_s is not None and time.monotonic() - idle_since > idle_timeout_s:
                return
            for record in batch[: None if max_records is None else max_records - seen]:
                seen += 1
                yield record

    def __iter__(self) -> Iterator[CorridorRecord]:
        return self.records()

    def decode(self, rec: Record) -> list[CorridorRecord]:
        """The records one corridor message carries (one for avro, one per row for arrow)."""
        headers = {k: v.decode("utf-8", errors="replace") for k, v in rec.headers if v is not None}
        if rec.value is None:
            return [self._tombstone(rec, headers)]
        if rec.value[:2] == wire.AVRO_MAGIC:
            fingerprint, body = unframe(rec.value)
            return [self._avro(rec, headers, self.catalog.schema(fingerprint), body,
                               f"egress schema {fingerprint.hex()} is not in {topics.SCHEMAS}")]
        if rec.value[:1] == wire.CONFLUENT_MAGIC:
            schema_id, body = wire.confluent_unframe(rec.value)
            if self.registry is None:
                raise DecodeError(f"schema id {schema_id}: no schema registry to look it up",
                                  rec.topic, rec.partition, rec.offset)
            return [self._avro(rec, headers, self.registry.schema(schema_id), body, "")]
        return self._arrow(rec, headers)

    def _where(self, headers: Mapping[str, str]) -> tuple[str, str]:
        """(corridor name, dataset) a ciphertext is bound to, from the residency tags."""
        corridor = wire.policy_corridor(headers.get(wire.POLICY, ""))
        prefix = topics.corridor_topic(headers.get(wire.ORIGIN, ""),
                                       headers.get(wire.DESTINATION, ""), "")
        return corridor, self.topic.removeprefix(prefix)

    def _avro(self, rec: Record, headers: dict[str, str], schema: AvroSchema | None,
              body: bytes, missing: str) -> CorridorRecord:
        if schema is None:
            raise DecodeError(missing, rec.topic, rec.partition, rec.offset)
        try:
            value = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
        except (EOFError, ValueError, IndexError) as exc:
            raise DecodeError(f"bad Avro body: {exc}", rec.topic, rec.partition,
                              rec.offset) from None
        assert isinstance(value, dict)
        treatment = str(schema.raw.get(KEY_ATTRIBUTE, {}).get("treatment", ""))
        key, erased = rec.key, {}
        if self.kek_provider is not None:
            corridor, dataset = self._where(headers)
            erased = decrypt_rows([value], encrypted_fields(schema), corridor=corridor,
                                  dataset=dataset, keys=self.catalog)
            key = self._key([key], treatment, corridor, dataset)[0]
        return CorridorRecord(value, headers, headers.get(LINEAGE, ""), key, rec.topic,
                              rec.partition, rec.offset, key_treatment=treatment,
                              timestamp_ms=rec.timestamp_ms, erased=tuple(erased.get(0, ())))

    def _tombstone(self, rec: Record, headers: dict[str, str]) -> CorridorRecord:
        """A delete that crossed: no value; its key (decrypted like any) and its headers."""
        if LINEAGE not in headers:
            raise DecodeError("null value without corridor-lineage: no corridor tombstone",
                              rec.topic, rec.partition, rec.offset)
        treatment = headers.get(wire.KEY_TREATMENT, "")
        key = rec.key
        if self.kek_provider is not None:
            key = self._key([key], treatment, *self._where(headers))[0]
        return CorridorRecord(None, headers, headers[LINEAGE], key, rec.topic, rec.partition,
                              rec.offset, key_treatment=treatment, timestamp_ms=rec.timestamp_ms)

    def _key(self, keys: list[bytes | None], treatment: str, corridor: str,
             dataset: str) -> list[bytes | None]:
        """Keys as they were at the origin when the corridor encrypted them, else as given."""
        if treatment != KeyTreatment.ENCRYPT_DETERMINISTIC.value or all(k is None for k in keys):
            return keys
        plain: list[bytes | None] = decrypt_column(
            pa.array(keys, pa.binary()), pa.binary(), corridor=corridor, dataset=dataset,
            field=KEY_FIELD, keys=self.catalog).to_pylist()
        return plain

    def _arrow(self, rec: Record, headers: dict[str, str]) -> list[CorridorRecord]:
        assert rec.value is not None  # a tombstone is decoded by _tombstone
        batch = from_ipc(rec.value)
        rows = batch.to_pylist()
        offsets = [r.pop(LINEAGE_OFFSET, None) for r in rows]
        source_rows = [r.pop(LINEAGE_ROW, -1) for r in rows]
        keys = [r.pop(KEY_COLUMN, None) for r in rows]
        for r in rows:
            r.pop(TIMESTAMP_COLUMN, None)
        index = batch.schema.get_field_index(TIMESTAMP_COLUMN)
        stamps = (batch.column(index).cast(pa.int64()).to_pylist() if index >= 0
                  else [None] * len(rows))
        parked = [tuple((h["name"], h["value"]) for h in r.pop(HEADERS_COLUMN, None) or ())
                  for r in rows]
        treatment = (batch.schema.metadata or {}).get(wire.META_KEY, b"").decode()
        erased: ErasedRows = {}
        if self.kek_provider is not None:
            erased = self._decrypt_arrow(batch, rows, headers)
            keys = self._key(keys, treatment, *self._where(headers))
        source = headers.get(LINEAGE, "").rsplit("/", 1)[0]
        lineages = [f"{source}/{off}" if r < 0 else f"{source}/{off}#{r}"
                    for off, r in zip(offsets, source_rows, strict=False)]
        return [CorridorRecord(row, headers, lineage, key, rec.topic, rec.partition,
                               rec.offset, key_treatment=treatment,
                               timestamp_ms=stamp, park_headers=park,
                               erased=tuple(erased.get(i, ())))
                for i, (row, lineage, key, stamp, park)
                in enumerate(zip(rows, lineages, keys, stamps, parked, strict=True))]

    def _decrypt_arrow(self, batch: pa.RecordBatch, rows: list[dict[str, Any]],
                       headers: Mapping[str, str]) -> ErasedRows:
        corridor, dataset = self._where(headers)
        sealed = unseal_rows(rows, batch.schema.metadata, corridor=corridor, dataset=dataset,
                             keys=self.catalog)
        egress = match_egress(batch.schema, self._candidates(),
                              ignore=META_COLUMNS)
        if egress is None and not self.catalog.schemas:
            self.catalog.refresh_schemas()
            egress = match_egress(batch.schema, self._candidates(),
                                  ignore=META_COLUMNS)
        if egress is None:
            return {}  # no per-value ciphertexts can be identified without the egress schema
        per_value = [f for f in encrypted_fields(egress) if f.path not in sealed]
        return decrypt_rows(rows, per_value, corridor=corridor, dataset=dataset,
                            keys=self.catalog)

    def _candidates(self) -> list[AvroSchema]:
        return list(self.catalog.schemas.values())

    def close(self) -> None:
        self._follower.close()
        self.catalog.close()
        if self.registry is not None:
            self.registry.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.close()


__all__ = ["Catalog", "CorridorConsumer", "CorridorError", "CorridorRecord", "ParkProducer"]
