"""Throughput of the pure core: ``python -m corridor.dev.bench.core [--records N] [--batch B]``.

On generated trade.shipment records (``corridor.dev.sample``, seeded), a corridor
that withholds (``consent == false or category == 'strategic'``), pseudonymizes
``contact_name`` and drops ``national_id``:

- pipeline: ``corridor.core.pipeline.process`` (decode -> policy -> encode), batch by batch;
- reference: the per-record path (fastavro decode, ``Rule.evaluate``, Python
  transforms, fastavro encode) in the same process;
- policy stage alone on already decoded Arrow batches (withhold + filter + drop +
  pseudonymize), and its pseudonymize kernel with every value distinct (worst case).

Targets (issue): policy alone >= 500k rows/s per core; pipeline >= 2x the reference.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow as pa

from corridor.core.codec import decode_avro
from corridor.core.config import load_config
from corridor.core.model import Lineage, RawMessage
from corridor.core.pipeline import process
from corridor.core.plan import CorridorPlan, DatasetPlan, build_plan
from corridor.core.policy import (
    TransformContext,
    apply_transforms,
    important_mask,
    withhold_reasons,
)
from corridor.core.policy.values import pseudonymize_column
from corridor.dev.reference import process_reference
from corridor.dev.sample import SCHEMAS, generate_records

CONFIG = """\
zones:
  hk: {{bootstrap: 127.0.0.1:19092, jurisdiction: HK}}
  eu: {{bootstrap: 127.0.0.1:29092, jurisdiction: EU}}
datasets:
  trade.shipment:
    schema: {schema}
    fields: {{contact_name: personal, contact_email: personal, national_id: sensitive}}
    record_class: {{field: category, important_when: "category in ['strategic', 'dual_use']"}}
corridors:
  bench:
    from: hk
    to: eu
    datasets: [trade.shipment]
    legal_basis: DEPA
    withhold: "consent == false or category == 'strategic'"
    transform: {{contact_name: pseudonymize, national_id: drop}}
"""
SECRET = b"corridor bench pseudonym secret!"


def bench_plan() -> tuple[CorridorPlan, DatasetPlan]:
    """The bench corridor (see the module docstring)."""
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "corridors.yaml"
        path.write_text(CONFIG.format(schema=SCHEMAS / "trade" / "shipment.avsc"), encoding="utf-8")
        config = load_config(path)
    plan = build_plan(config, "bench", None, SECRET)
    return plan, plan.datasets["trade.shipment"]


def batches_of(values: list[bytes], size: int, topic: str) -> list[list[RawMessage]]:
    messages = [RawMessage(Lineage(topic, i % 4, i // 4), v, None) for i, v in enumerate(values)]
    return [messages[i : i + size] for i in range(0, len(messages), size)]


def rate(rows: int, fn: Callable[[], object], repeat: int = 3) -> float:
    """Best rows/s of *repeat* runs of fn (each processes *rows* rows)."""
    best = float("inf")
    for _ in range(repeat):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return rows / best


def policy_stage(batch: pa.RecordBatch, plan: CorridorPlan, dp: DatasetPlan) -> pa.RecordBatch:
    """withhold + filter + transforms on a decoded batch: the policy stage alone."""
    important = important_mask(batch, dp.important_when)
    reasons = withhold_reasons(batch, dp.withhold, important, plan.admit, plan.name)
    keep = pa.array([i not in reasons for i in range(batch.num_rows)]) if reasons else None
    kept = batch.filter(keep) if keep is not None else batch
    key = plan.pseudonym_key.reveal() if plan.pseudonym_key is not None else None
    ctx = TransformContext(plan.name, dp.dataset, dp.schema, None, key)
    return apply_transforms(kept, dp.transforms, ctx).batch


def run(records: int, batch_size: int) -> list[tuple[str, float]]:
    plan, dp = bench_plan()
    values = generate_records("trade.shipment", records, seed=7, withheld_share=0.15)
    batches = batches_of(values, batch_size, dp.source_topic)
    decoded = [decode_avro([m.value for m in b], plan.store, dp.schema).batch for b in batches]
    names = [f"u{i:08d}-{i * 7919 % 100003}" for i in range(batch_size)]
    distinct = pa.array(names, pa.string())
    key = SECRET
    return [
        (
            "pipeline: decode+policy+encode",
            rate(records, lambda: [process(b, plan, dp, 0) for b in batches]),
        ),
        (
            "reference: per record (fastavro)",
            rate(
                records,
                lambda: [process_reference(b, plan, dp, 0, decoder="fastavro") for b in batches],
                repeat=1,
            ),
        ),
        (
            "policy stage alone (Arrow)",
            rate(records, lambda: [policy_stage(b, plan, dp) for b in decoded]),
        ),
        (
            "pseudonymize, all values distinct",
            rate(batch_size, lambda: pseudonymize_column(distinct, key)),
        ),
        (
            "decode alone",
            rate(
                records,
                lambda: [decode_avro([m.value for m in b], plan.store, dp.schema) for b in batches],
            ),
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=10_000)
    args = parser.parse_args()
    results = run(args.records, args.batch)
    reference = results[1][1]
    print(f"{args.records} trade.shipment records, batches of {args.batch}, one core")
    print(f"{'stage':<36} {'rows/s':>12} {'x reference':>12}")
    for name, value in results:
        print(f"{name:<36} {value:>12,.0f} {value / reference:>11.1f}x")
    policy = results[2][1]
    print(
        f"targets: policy >= 500,000 rows/s: {'met' if policy >= 500_000 else 'NOT met'}; "
        f"pipeline >= 2x reference: {'met' if results[0][1] >= 2 * reference else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
