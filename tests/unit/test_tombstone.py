"""Tombstones (deletes): cross with their key under the key policy, or stay home with a reason."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from corridor.core.config import Config, load_config
from corridor.core.crypto import decrypt_column
from corridor.core.errors import DecodeError
from corridor.core.model import Lineage, RawMessage
from corridor.core.pipeline import process
from corridor.core.plan import CorridorPlan
from corridor.core.policy.key import KEY_FIELD
from corridor.core.policy.tombstone import (
    TOMBSTONE_ARROW,
    TOMBSTONE_KEY_DROPPED,
    TOMBSTONE_NO_KEY,
)
from corridor.core.policy.values import pseudonym
from corridor.dev.reference import process_reference
from corridor.dev.sample import encode, generate_rows
from tests.unit.plan_fixtures import CONFIG, data_key, load, plan_for
from tests.unit.test_pipeline import _with_instrument

DATASET = "trade.shipment"
TOPIC = "hk.outbound.trade.shipment"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load(tmp_path_factory.mktemp("cfg"))


def _config(tmp_path: Path, text: str) -> Config:
    path = tmp_path / "corridors.yaml"
    path.write_text(text, encoding="utf-8")
    return load_config(path)


def _batch(plan: CorridorPlan) -> list[RawMessage]:
    """Partition 0: insert k1, delete k1, insert k1 again, delete with no key; partition 1:
    delete k2 (a park header on it)."""
    row = encode(generate_rows(DATASET, 1, seed=3, withheld_share=0.0)[0],
                 plan.datasets[DATASET].schema)
    return [
        RawMessage(Lineage(TOPIC, 0, 10), row, b"k1", 1_000),
        RawMessage(Lineage(TOPIC, 0, 11), None, b"k1", 2_000, (("trace", b"t-1"),)),
        RawMessage(Lineage(TOPIC, 1, 5), None, b"k2", 3_000),
        RawMessage(Lineage(TOPIC, 0, 12), row, b"k1", 4_000),
        RawMessage(Lineage(TOPIC, 0, 13), None, None, 5_000),
    ]


def test_a_delete_crosses_as_a_tombstone_in_source_order(config: Config) -> None:
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets[DATASET]
    msgs = _batch(plan)
    result = process(msgs, plan, dp, 0)
    result.check()
    assert result.counts() == {"delivered": 4, "withheld": 1, "quarantined": 0}
    # In source order: the delete of k1 sits between its insert and its re-insert.
    assert [d.lineage.offset for d in result.delivered] == [10, 11, 5, 12]
    assert [d.value is None for d in result.delivered] == [False, True, True, False]
    insert, delete = result.delivered[0], result.delivered[1]
    # Same treated key as the record it deletes (pseudonymized: never the key as it was).
    assert delete.key == insert.key == pseudonym(b"k1", plan.pseudonym_key.reveal()).encode()  # type: ignore[union-attr]
    assert delete.timestamp == 2_000
    assert delete.headers == [*dp.headers, ("corridor-lineage", f"{TOPIC}/0/11".encode()),
                              ("corridor-key-treatment", b"pseudonymize")]
    [held] = result.withheld
    assert (held.lineage.offset, held.reason, held.value) == (13, TOMBSTONE_NO_KEY, b"")


def test_rules_that_read_fields_do_not_apply_and_park_headers_cross_if_allowed(
        tmp_path: Path) -> None:
    text = CONFIG.replace("    legal_basis: DEPA\n", "    legal_basis: DEPA\n"
                          "    headers: [trace]\n")
    text = text.replace('withhold: "consent == false or category', 'withhold: "true or category')
    plan = plan_for(_config(tmp_path, text), "hk-eu")
    dp = plan.datasets[DATASET]
    msgs = _batch(plan)
    result = process(msgs, plan, dp, 0)
    result.check()
    # The rows are withheld by the rule; their deletes still cross (only the key does).
    assert [(d.lineage.offset, d.value) for d in result.delivered] == [(11, None), (5, None)]
    assert result.delivered[0].headers[-1] == ("trace", b"t-1")


def test_an_encrypted_key_crosses_encrypted_and_opens(tmp_path: Path) -> None:
    text = CONFIG.replace("    admit: [normal]\n", "    admit: [normal]\n"
                          "    key: encrypt-deterministic\n")
    plan = plan_for(_config(tmp_path, text), "hk-eu")
    dp = plan.datasets[DATASET]
    result = process(_batch(plan), plan, dp, 0)
    insert, delete = result.delivered[0], result.delivered[1]
    assert delete.key == insert.key and delete.key != b"k1"
    key = data_key("hk-eu")
    opened = decrypt_column(pa.array([delete.key], pa.binary()), pa.binary(), corridor="hk-eu",
                            dataset=DATASET, field=KEY_FIELD, keys={key.key_id: key})
    assert opened.to_pylist() == [b"k1"]
    assert dict(delete.headers)["corridor-key-treatment"] == b"encrypt-deterministic"


def test_a_dropped_key_withholds_the_tombstone(tmp_path: Path) -> None:
    text = CONFIG.replace("    admit: [normal]\n", "    admit: [normal]\n    key: drop\n")
    plan = plan_for(_config(tmp_path, text), "hk-eu")
    result = process(_batch(plan), plan, plan.datasets[DATASET], 0)
    result.check()
    assert [d.value is None for d in result.delivered] == [False, False]
    assert {(w.lineage.offset, w.reason) for w in result.withheld} == {
        (11, TOMBSTONE_KEY_DROPPED), (5, TOMBSTONE_KEY_DROPPED), (13, TOMBSTONE_NO_KEY)}


def test_an_arrow_corridor_withholds_tombstones(config: Config) -> None:
    plan = plan_for(config, "hk-asean")
    result = process(_batch(plan), plan, plan.datasets[DATASET], 0)
    result.check()
    assert result.counts() == {"delivered": 2, "withheld": 3, "quarantined": 0}
    assert all(d.value is not None for d in result.delivered)
    assert {w.reason for w in result.withheld} == {TOMBSTONE_ARROW}


def test_an_expired_instrument_withholds_tombstones(tmp_path: Path) -> None:
    plan = plan_for(_with_instrument(tmp_path, "2023-11-14"), "hk-eu")
    assert plan.instrument_expiry_ms is not None
    result = process(_batch(plan), plan, plan.datasets[DATASET], plan.instrument_expiry_ms)
    result.check()
    assert result.delivered == []
    assert {w.reason for w in result.withheld} == {"instrument_expired: rmc"}
    before = process(_batch(plan), plan, plan.datasets[DATASET], 0)
    assert all(dict(d.headers)["corridor-instrument"] == b"rmc" for d in before.delivered)


@pytest.mark.parametrize("corridor", ["hk-eu", "hk-asean"])
def test_the_reference_agrees(config: Config, corridor: str) -> None:
    plan = plan_for(config, corridor)
    dp = plan.datasets[DATASET]
    msgs = _batch(plan)
    fast, slow = process(msgs, plan, dp, 0), process_reference(msgs, plan, dp, 0)
    assert fast.outcomes() == slow.outcomes()
    assert [(w.lineage, w.reason, w.value) for w in fast.withheld] == [
        (w.lineage, w.reason, w.value) for w in slow.withheld]
    tombstones = [[(d.lineage, d.key, d.headers, d.timestamp) for d in r.delivered
                   if d.value is None] for r in (fast, slow)]
    assert tombstones[0] == tombstones[1]


def test_the_sdk_yields_a_deleted_record_with_its_key_opened(tmp_path: Path) -> None:
    from corridor.kafka.io import Record
    from corridor.sdk import CorridorConsumer

    text = CONFIG.replace("    admit: [normal]\n", "    admit: [normal]\n"
                          "    key: encrypt-deterministic\n")
    plan = plan_for(_config(tmp_path, text), "hk-eu")
    delete = process(_batch(plan), plan, plan.datasets[DATASET], 0).delivered[1]
    consumer = object.__new__(CorridorConsumer)  # decoding only: no cluster
    key = data_key("hk-eu")
    consumer.topic, consumer.kek_provider = "corridor.hk-eu.trade.shipment", object()
    consumer.catalog = {key.key_id: key}  # type: ignore[assignment]
    rec = Record(consumer.topic, 2, 40, delete.key, None, tuple(delete.headers), 2_000)
    [out] = consumer.decode(rec)
    assert out.deleted and out.value is None and out.value_at("hs_code") is None
    assert (out.key, out.key_treatment) == (b"k1", "encrypt-deterministic")
    assert (out.lineage, out.timestamp_ms, out.offset) == (f"{TOPIC}/0/11", 2_000, 40)
    assert out.headers["corridor-destination"] == "eu"
    consumer.kek_provider = None  # without a key provider: the key as it crossed
    assert consumer.decode(rec)[0].key == delete.key
    with pytest.raises(DecodeError):  # a null value that is no corridor tombstone
        consumer.decode(Record(consumer.topic, 0, 1, b"x", None, (), None))


def test_verify_counts_a_delivered_tombstone_by_its_lineage_header() -> None:
    from corridor.kafka.verify_reader import _delivered_lineages

    assert _delivered_lineages(None, f"{TOPIC}/0/11") == [f"{TOPIC}/0/11"]
    assert _delivered_lineages(None, None) == []
