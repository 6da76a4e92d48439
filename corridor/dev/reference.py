"""The per-record reference pipeline: same semantics as ``corridor.core.pipeline.process``,
written the obvious way (one record at a time, plain Python), for tests and the bench.

``decoder="strict"`` (tests) checks each body with the codec's strict per-record
decoder, so decode reasons are the pipeline's exactly, then reads the values with
fastavro. ``decoder="fastavro"`` (bench) is the naive path: fastavro only,
reasons are fastavro's exception text (and fastavro is lenient: it ignores bytes
after a datum).

Arrow format: same outcomes and per-partition Deliveries with the same offsets;
a field encrypted as a whole column is left out of the reference batch (the
real column ciphertext needs the whole column, which is not per record).
Tombstones (null values) cross or stay home as in the pipeline (``core.policy.tombstone``).
"""

from __future__ import annotations

import copy
import io
from collections.abc import Sequence
from functools import lru_cache
from typing import Any

import fastavro
import pyarrow as pa

from corridor.core.codec import to_ipc
from corridor.core.codec.avro_strict import Malformed, compile_reader, decode_body
from corridor.core.config import KeyTreatment, RecordKind, Transform, WireFormat
from corridor.core.crypto.values import encode_values
from corridor.core.model import Lineage, RawMessage
from corridor.core.pipeline import BatchResult, Delivery, SideRecord
from corridor.core.plan import CorridorPlan, DatasetPlan
from corridor.core.policy.classify import is_important
from corridor.core.policy.key import KEY_FIELD, allowed_headers
from corridor.core.policy.tag import lineage_range, record_headers
from corridor.core.policy.tombstone import tombstone_headers, tombstone_reason
from corridor.core.policy.values import mask_value, pseudonym
from corridor.core.policy.withhold import class_reason, validate_reason, withhold_reason
from corridor.core.schema import (
    AvroSchema,
    SchemaStore,
    arrow_type,
    frame,
    header_problem,
    union_branches,
)
from corridor.core.wire import (
    KEY_COLUMN,
    LINEAGE,
    LINEAGE_OFFSET,
    META_KEY,
    META_LINEAGE,
    TIMESTAMP_COLUMN,
    batch_key,
)


def process_reference(
    messages: Sequence[RawMessage],
    plan: CorridorPlan,
    dp: DatasetPlan,
    now_ms: int,
    decoder: str = "strict",
) -> BatchResult:
    """Per-record twin of ``process``; see the module docstring."""
    delivered: list[tuple[RawMessage, dict[str, Any] | None]] = []  # None: a tombstone
    withheld: list[SideRecord] = []
    quarantined: list[SideRecord] = []
    for m in messages:
        if m.value is None:  # a tombstone: crosses, or withheld with its side record empty
            why = tombstone_reason(m, plan, dp, now_ms)
            if why is None:
                delivered.append((m, None))
            else:
                withheld.append(SideRecord(m.lineage, m.key, b"", why))
            continue
        record, reason = _decode(m.value, plan.store, dp.schema, decoder)
        if record is not None:
            reason = _invalid(record, dp)
        if record is None or reason is not None:
            quarantined.append(SideRecord(m.lineage, m.key, m.value, reason or "decode"))
            continue
        held = _withhold(record, plan, dp)
        if held is not None:
            withheld.append(SideRecord(m.lineage, m.key, m.value, held))
            continue
        delivered.append((m, transform_record(record, plan, dp)))
    if plan.format is WireFormat.ARROW:  # a tombstone never crosses an arrow corridor
        deliveries = _arrow([(m, rec) for m, rec in delivered if rec is not None], plan, dp)
    else:
        deliveries = [_avro(m, rec, plan, dp) if rec is not None else _tombstone(m, plan, dp)
                      for m, rec in delivered]
    return BatchResult(
        dataset=dp.dataset,
        delivered=deliveries,
        withheld=withheld,
        quarantined=quarantined,
        egress_schemas_used=(dp.egress,) if deliveries else (),
        processed_at_ms=now_ms,
        inputs=len(messages),
    )


def _decode(
    value: bytes | None, store: SchemaStore, schema: AvroSchema, decoder: str
) -> tuple[dict[str, Any] | None, str | None]:
    problem = header_problem(value)
    if problem is None:
        assert value is not None
        fp = bytes(value[2:10])
        if fp != schema.fingerprint:
            other = store.get(fp)
            problem = (
                f"schema {other.name} ({fp.hex()}) is not dataset {schema.name}"
                if other is not None
                else f"unknown schema fingerprint {fp.hex()}"
            )
    if problem is not None:
        return None, f"decode: {problem}"
    assert value is not None
    body = value[10:]
    if decoder == "strict":
        try:
            decode_body(_reader(schema), body)
        except Malformed as exc:
            return None, f"decode: {exc.reason}"
    try:
        decoded: dict[str, Any] = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)  # type: ignore[assignment]
        return decoded, None
    except Exception as exc:  # noqa: BLE001 - the naive path: any failure quarantines
        return None, f"decode: {exc}"


@lru_cache(maxsize=64)
def _reader(schema: AvroSchema) -> Any:
    return compile_reader(schema.expanded)


def _invalid(record: dict[str, Any], dp: DatasetPlan) -> str | None:
    for rule in dp.validate:
        if rule.evaluate(record) is not True:
            return validate_reason(rule)
    return None


def _withhold(record: dict[str, Any], plan: CorridorPlan, dp: DatasetPlan) -> str | None:
    if dp.withhold is not None:
        result = dp.withhold.evaluate(record)
        if result is not False:
            return withhold_reason(dp.withhold, result)
    important = dp.important_when is not None and is_important(dp.important_when.evaluate(record))
    kind = RecordKind.IMPORTANT if important else RecordKind.NORMAL
    return None if kind in plan.admit else class_reason(kind, plan.name)


def transform_record(record: dict[str, Any], plan: CorridorPlan, dp: DatasetPlan) -> dict[str, Any]:
    """A transformed copy of one decoded record (sealed arrow columns are removed)."""
    out = copy.deepcopy(record)
    for path, transform in dp.transforms.items():
        *parents, name = path.split(".")
        node: Any = out
        for p in parents:
            node = node.get(p) if isinstance(node, dict) else None
        if not isinstance(node, dict) or name not in node:
            continue
        if transform is Transform.DROP or (
            transform is Transform.ENCRYPT and plan.format is WireFormat.ARROW
        ):
            del node[name]
        else:
            node[name] = _value(node[name], path, transform, plan, dp)
    return out


def _value(v: Any, path: str, transform: Transform, plan: CorridorPlan, dp: DatasetPlan) -> Any:
    if v is None:
        return None
    if transform is Transform.MASK:
        return mask_value(v)
    avro_type = dp.schema.field_type(path)
    if transform is Transform.PSEUDONYMIZE:
        assert plan.pseudonym_key is not None
        return pseudonym(_plaintext(v, avro_type), plan.pseudonym_key.reveal())
    assert plan.cipher is not None
    branch = union_branches(avro_type)[1] if isinstance(avro_type, list) else avro_type
    if isinstance(branch, dict) and branch["type"] in ("record", "array", "map"):
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, fastavro.parse_schema(copy.deepcopy(branch)), v)
        column = pa.array([buf.getvalue()], pa.binary())
    else:
        column = pa.array([v], _value_type(avro_type))
    deterministic = transform is Transform.ENCRYPT_DETERMINISTIC
    return plan.cipher.encrypt_column(
        column, corridor=plan.name, dataset=dp.dataset, field=path, deterministic=deterministic
    )[0].as_py()


def _value_type(avro_type: Any) -> pa.DataType:
    t = arrow_type(avro_type)
    return t.value_type if pa.types.is_dictionary(t) else t


def _plaintext(v: Any, avro_type: Any) -> bytes:
    if isinstance(v, str):
        return v.encode("utf-8")
    return bytes(encode_values(pa.array([v], _value_type(avro_type)))[0])  # type: ignore[arg-type]


def _key(key: bytes | None, plan: CorridorPlan, dp: DatasetPlan) -> bytes | None:
    """One record key under the key policy (the per-record reference of policy.key)."""
    if key is None or dp.key is KeyTreatment.KEEP:
        return key
    if dp.key is KeyTreatment.DROP:
        return None
    if dp.key is KeyTreatment.PSEUDONYMIZE:
        assert plan.pseudonym_key is not None
        return pseudonym(key, plan.pseudonym_key.reveal()).encode()
    assert plan.cipher is not None
    out: bytes = plan.cipher.encrypt_column(
        pa.array([key], pa.binary()), corridor=plan.name, dataset=dp.dataset, field=KEY_FIELD,
        deterministic=True)[0].as_py()
    return out


def _avro(m: RawMessage, record: dict[str, Any], plan: CorridorPlan,
          dp: DatasetPlan) -> Delivery:
    buf = io.BytesIO()
    fastavro.schemaless_writer(buf, dp.egress.parsed, record)
    value = frame(dp.egress.fingerprint, buf.getvalue())
    headers = record_headers(dp.headers, m.lineage)
    headers += allowed_headers(m.headers, plan.allowed_headers)
    return Delivery(value, _key(m.key, plan, dp), headers, m.lineage, (), (), m.timestamp_ms)


def _tombstone(m: RawMessage, plan: CorridorPlan, dp: DatasetPlan) -> Delivery:
    return Delivery(None, _key(m.key, plan, dp), tombstone_headers(m, plan, dp), m.lineage,
                    (), (), m.timestamp_ms)


def _arrow(delivered: list[tuple[RawMessage, dict[str, Any]]], plan: CorridorPlan,
           dp: DatasetPlan) -> list[Delivery]:
    groups: dict[tuple[str, int], list[tuple[RawMessage, dict[str, Any]]]] = {}
    for m, rec in delivered:
        groups.setdefault((m.lineage.topic, m.lineage.partition), []).append((m, rec))
    out = []
    for (topic, partition), items in sorted(groups.items()):
        offsets = tuple(m.lineage.offset for m, _ in items)
        span = lineage_range(topic, partition, offsets)
        names = [n for n in dp.egress.arrow.names if n in items[0][1]]
        schema = pa.schema([dp.egress.arrow.field(n) for n in names])
        batch = pa.RecordBatch.from_pylist([{n: rec[n] for n in names} for _, rec in items], schema)
        batch = batch.append_column(LINEAGE_OFFSET, pa.array(offsets, pa.int64()))
        batch = batch.append_column(
            KEY_COLUMN, pa.array([_key(m.key, plan, dp) for m, _ in items], pa.binary()))
        stamps = [m.timestamp_ms for m, _ in items]
        batch = batch.append_column(TIMESTAMP_COLUMN,
                                    pa.array(stamps, pa.timestamp("ms", tz="UTC")))
        batch = batch.replace_schema_metadata({
            META_LINEAGE: span.encode(), META_KEY: dp.key.value.encode()})
        headers = [*dp.headers, (LINEAGE, span.encode())]
        first = Lineage(topic, partition, offsets[0])
        known = [t for t in stamps if t is not None]
        out.append(Delivery(to_ipc(batch), batch_key(topic, partition), headers, first,
                            offsets, (), max(known) if known else None))
    return out
