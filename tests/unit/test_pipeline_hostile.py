"""Hostile input in the pipeline: oversized records and NaN/inf money are quarantined with
a specific reason, next to good records that still cross."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from corridor.core.config import Config, load_config
from corridor.core.pipeline import MAX_RECORD_BYTES, process
from corridor.core.schema import load_schema
from corridor.dev.sample import encode, generate_rows
from tests.unit.plan_fixtures import CONFIG, SHIP, messages, plan_for

DATASET = "trade.shipment"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    path = Path(tmp_path_factory.mktemp("cfg")) / "corridors.yaml"
    path.write_text(CONFIG.replace('validate: ["declared_value >= 0"]',
                                   'validate: ["is_finite(declared_value)", '
                                   '"declared_value >= 0"]'))
    return load_config(path)


def _run(config: Config, values: list[bytes | None]):  # -> (BatchResult, reasons by index)
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets[DATASET]
    msgs = messages(dp.source_topic, values)
    result = process(msgs, plan, dp, 0)
    result.check()
    index = {m.lineage: i for i, m in enumerate(msgs)}
    return result, {index[s.lineage]: s.reason for s in result.quarantined}


def _good(**changes: object) -> bytes:
    row = generate_rows(DATASET, 1, seed=5, withheld_share=0.0)[0]
    row.update(consent=True, category="general", **changes)
    return encode(row, load_schema(SHIP))


def test_oversized_record_is_quarantined_before_decoding(config: Config) -> None:
    huge = _good(description="x" * (MAX_RECORD_BYTES + 10))
    result, reasons = _run(config, [_good(), huge, _good()])
    assert set(reasons) == {1}
    assert reasons[1] == (f"oversized: {len(huge)} bytes exceeds the limit of "
                          f"{MAX_RECORD_BYTES} bytes per record")
    assert len(result.delivered) == 2


def test_nan_and_infinite_money_fail_validation(config: Config) -> None:
    values = [_good(declared_value=v) for v in (math.nan, math.inf, -math.inf, 12.5)]
    result, reasons = _run(config, values)
    assert reasons == {0: "validate: is_finite(declared_value)",
                       1: "validate: is_finite(declared_value)",
                       2: "validate: is_finite(declared_value)"}
    assert len(result.delivered) == 1
