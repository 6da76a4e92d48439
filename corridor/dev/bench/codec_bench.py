"""Micro benchmark: decode/encode of shipment-like records, batch path vs per-record fastavro.

Run: ``python -m corridor.dev.bench.codec_bench [--records 100000] [--batch 10000]``.
Uses schemas/trade/shipment.avsc when present, else an embedded shipment-like schema.
Both paths produce the same thing: Arrow batches from single-object values (decode),
single-object values from Arrow batches (encode). Figures are records per second on
one core, best of ``--repeat`` runs. "decode 1% bad" appends a byte to every 100th
value: fastavro (lenient) decodes those silently, corridor reports them as errors.
"""

from __future__ import annotations

import argparse
import io
import random
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import fastavro
import pyarrow as pa

from corridor.core.codec import decode_avro, decode_strategy, encode_avro
from corridor.core.schema import AvroSchema, SchemaStore, frame, load_schema, parse_schema

_SCHEMA_FILE = Path(__file__).resolve().parents[3] / "schemas" / "trade" / "shipment.avsc"

_EMBEDDED: dict[str, Any] = {
    "type": "record", "name": "shipment", "namespace": "bench.trade",
    "fields": [
        {"name": "shipment_id", "type": "string"},
        {"name": "declarant", "type": "string"},
        {"name": "contact_name", "type": "string"},
        {"name": "contact_email", "type": ["null", "string"], "default": None},
        {"name": "national_id", "type": "string"},
        {"name": "hs_code", "type": "string"},
        {"name": "description", "type": "string"},
        {"name": "declared_value", "type": "double"},
        {"name": "currency", "type": {"type": "enum", "name": "Currency",
                                      "symbols": ["HKD", "EUR", "SGD", "USD"]}},
        {"name": "origin_country", "type": "string"},
        {"name": "destination_country", "type": "string"},
        {"name": "location", "type": {"type": "record", "name": "Location", "fields": [
            {"name": "port", "type": "string"}, {"name": "country", "type": "string"}]}},
        {"name": "consent", "type": "boolean"},
        {"name": "declared_at", "type": {"type": "long", "logicalType": "timestamp-millis"}},
    ],
}


def _schema() -> AvroSchema:
    return load_schema(_SCHEMA_FILE) if _SCHEMA_FILE.exists() else parse_schema(_EMBEDDED)


def _value(t: Any, rng: random.Random, name: str) -> Any:
    if isinstance(t, list):
        branch = next(b for b in t if b != "null")
        return None if rng.random() < 0.2 else _value(branch, rng, name)
    if isinstance(t, dict):
        if t["type"] == "record":
            return {f["name"]: _value(f["type"], rng, f["name"]) for f in t["fields"]}
        if t["type"] == "enum":
            return rng.choice(t["symbols"])
        if t.get("logicalType") == "timestamp-millis":
            return 1_700_000_000_000 + rng.randrange(10**9)
        return _value(t["type"], rng, name)
    if t == "string":
        size = 60 if name == "description" else 14
        return "".join(rng.choice("ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ") for _ in range(size))
    if t == "double":
        return rng.uniform(0, 1e6)
    if t in ("int", "long"):
        return rng.randrange(10**6)
    if t == "boolean":
        return rng.random() < 0.5
    raise ValueError(f"bench generator does not know {t!r}")


def _records(schema: AvroSchema, n: int) -> list[dict[str, Any]]:
    rng = random.Random(7)
    return [_value(schema.expanded, rng, "") for _ in range(n)]


def _fastavro_decode(values: list[bytes], schema: AvroSchema) -> pa.RecordBatch:
    rows = [fastavro.schemaless_reader(io.BytesIO(v[10:]), schema.parsed, None) for v in values]
    return pa.RecordBatch.from_pylist(rows, schema=_pylist_schema(schema))


def _pylist_schema(schema: AvroSchema) -> pa.Schema:
    # from_pylist builds enum dictionaries from strings; same column types otherwise
    return schema.arrow


def _fastavro_encode(batch: pa.RecordBatch, schema: AvroSchema) -> list[bytes]:
    out = []
    for row in batch.to_pylist():
        buf = io.BytesIO()
        fastavro.schemaless_writer(buf, schema.parsed, row)
        out.append(frame(schema.fingerprint, buf.getvalue()))
    return out


def _rate(fn: Callable[[], Any], n: int, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return n / best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    schema = _schema()
    store = SchemaStore([schema])
    values = _fastavro_encode(pa.RecordBatch.from_pylist(_records(schema, args.records)), schema)
    chunks = [values[i : i + args.batch] for i in range(0, len(values), args.batch)]
    decoded = [decode_avro(c, store, schema) for c in chunks]
    assert all(not d.errors for d in decoded), decoded[0].errors[:3]
    batches = [d.batch for d in decoded]
    assert [v for b in batches for v in encode_avro(b, schema)] == values, "encode differs"
    n = len(values)
    # 1% malformed (a trailing byte: the case that misaligns a container reader)
    dirty = [c[:] for c in chunks]
    for c in dirty:
        for i in range(0, len(c), 100):
            c[i] = c[i] + b"\x00"
    rates = {
        "decode 1% bad batch": _rate(
            lambda: [decode_avro(c, store, schema) for c in dirty], n, args.repeat
        ),
        "decode 1% bad fastavro": _rate(
            lambda: [_fastavro_decode(c, schema) for c in dirty], n, args.repeat
        ),
        "decode batch": _rate(lambda: [decode_avro(c, store, schema) for c in chunks], n, args.repeat),
        "decode fastavro": _rate(lambda: [_fastavro_decode(c, schema) for c in chunks], n, args.repeat),
        "encode batch": _rate(lambda: [encode_avro(b, schema) for b in batches], n, args.repeat),
        "encode fastavro": _rate(lambda: [_fastavro_encode(b, schema) for b in batches], n, args.repeat),
    }
    size = sum(map(len, values)) / n
    print(f"{schema.name}: {n} records of ~{size:.0f} bytes, batches of {args.batch}, "
          f"decode path: {decode_strategy(schema)}")
    print(f"{'operation':<14} {'batch rec/s':>12} {'fastavro rec/s':>15} {'ratio':>7}")
    for op in ("decode", "decode 1% bad", "encode"):
        mine, theirs = rates[f"{op} batch"], rates[f"{op} fastavro"]
        print(f"{op:<14} {mine:>12,.0f} {theirs:>15,.0f} {mine / theirs:>6.1f}x")


if __name__ == "__main__":
    main()
