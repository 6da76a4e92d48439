"""Arrow IPC source messages: many records per message, lineage per row, verify accounting."""

from __future__ import annotations

import io

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.codec import decode_avro, from_ipc, to_ipc
from corridor.core.codec.arrow_batches import arrow_rows, ipc_messages, read_arrow, row_slices
from corridor.core.codec.arrow_input import conform
from corridor.core.config import Config
from corridor.core.model import Lineage, RawMessage
from corridor.core.pipeline import LINEAGE_OFFSET, LINEAGE_ROW, process
from corridor.core.schema import SchemaStore
from corridor.core.verify import verify
from corridor.dev.sample import encode, generate_rows
from tests.unit.plan_fixtures import load, plan_for

DATASET = "trade.shipment"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load(tmp_path_factory.mktemp("cfg"))


def rows_batch(n: int, seed: int = 1, **changes: object) -> pa.RecordBatch:
    """n trade.shipment rows as the dataset's Arrow batch (decoded from their Avro)."""
    plan = plan_for(load_cfg(), "hk-eu")
    schema = plan.datasets[DATASET].schema
    rows = generate_rows(DATASET, n, seed=seed, withheld_share=0.3)
    for r in rows:
        r.update(changes)
    store = SchemaStore()
    store.add(schema)
    return decode_avro([encode(r, schema) for r in rows], store, schema).batch


_CFG: list[Config] = []


def load_cfg() -> Config:
    if not _CFG:
        import tempfile
        from pathlib import Path

        _CFG.append(load(Path(tempfile.mkdtemp())))
    return _CFG[0]


def test_lineage_with_row_round_trips() -> None:
    lin = Lineage("hk.outbound.trade.shipment", 2, 40, 7)
    assert str(lin) == "hk.outbound.trade.shipment/2/40#7"
    assert Lineage.parse(str(lin)) == lin
    assert Lineage.parse("t/1/5") == Lineage("t", 1, 5) and Lineage("t", 1, 5).row == -1
    with pytest.raises(ValueError):
        Lineage.parse("t/1/5#x")


def test_ipc_messages_are_sized_by_bytes() -> None:
    batch = rows_batch(3000)
    messages = ipc_messages(batch, 64 * 1024)
    assert all(len(m) <= 64 * 1024 for m in messages) and len(messages) > 3
    back = pa.Table.from_batches([from_ipc(m) for m in messages])
    assert back.num_rows == 3000 and back.column("shipment_id").to_pylist() == \
        batch.column("shipment_id").to_pylist()
    assert sum(s.num_rows for s in row_slices(batch, 10_000)) == 3000


def test_framing_rule_shared_with_verify() -> None:
    message = to_ipc(rows_batch(5))
    assert arrow_rows(message) == 5
    assert arrow_rows(b"\xc3\x01" + b"\x00" * 20) is None  # Avro: one record
    assert arrow_rows(b"\xff\xff\xff\xffnot ipc") is None  # unreadable: one record
    assert read_arrow(None) is None


def test_arrow_input_outcomes_and_lineage_per_row(config: Config) -> None:
    plan = plan_for(config, "hk-eu")  # avro output
    dp = plan.datasets[DATASET]
    batch = rows_batch(50)
    avro_value = encode(generate_rows(DATASET, 1, seed=9, withheld_share=0.0)[0], dp.schema)
    msgs = [RawMessage(Lineage(dp.source_topic, 0, 10), to_ipc(batch), b"k"),
            RawMessage(Lineage(dp.source_topic, 0, 11), avro_value, b"a"),
            RawMessage(Lineage(dp.source_topic, 0, 12), b"\xff\xff\xff\xffbroken", None)]
    result = process(msgs, plan, dp, 0)
    result.check()
    assert result.inputs == 52
    outcomes = result.outcomes()
    assert Lineage(dp.source_topic, 0, 11) in outcomes  # the Avro message: one record
    assert Lineage(dp.source_topic, 0, 12) in outcomes  # the broken one: quarantined whole
    assert {Lineage(dp.source_topic, 0, 10, r) for r in range(50)} <= outcomes.keys()
    lineage = dict(result.delivered[0].headers)["corridor-lineage"].decode()
    assert lineage == f"{dp.source_topic}/0/10#{result.delivered[0].lineage.row}"
    # A withheld Arrow row carries itself as single-object Avro of the dataset.
    held = result.withheld[0]
    assert held.lineage.row >= 0 and held.value[:10] == b"\xc3\x01" + dp.schema.fingerprint
    row = fastavro.schemaless_reader(io.BytesIO(held.value[10:]), dp.schema.parsed, None)
    assert row["shipment_id"] == batch.column("shipment_id")[held.lineage.row].as_py()


def test_arrow_in_arrow_out_carries_rows(config: Config) -> None:
    plan = plan_for(config, "hk-asean")
    dp = plan.datasets[DATASET]
    msgs = [RawMessage(Lineage(dp.source_topic, 1, o), to_ipc(rows_batch(40, seed=o)), None)
            for o in (3, 4)]
    result = process(msgs, plan, dp, 0)
    result.check()
    out = from_ipc(result.delivered[0].value)
    assert LINEAGE_ROW in out.schema.names
    pairs = list(zip(out.column(LINEAGE_OFFSET).to_pylist(), out.column(LINEAGE_ROW).to_pylist(), strict=False))
    assert [Lineage(dp.source_topic, 1, o, r) for o, r in pairs] == \
        result.delivered[0].lineages()


def test_rows_that_do_not_fit_are_quarantined_alone(config: Config) -> None:
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets[DATASET]
    batch = rows_batch(4, consent=True)
    ids = batch.column("national_id").to_pylist()
    ids[1] = None  # required field
    broken = batch.set_column(batch.schema.get_field_index("national_id"),
                              pa.field("national_id", pa.string()), pa.array(ids))
    result = process([RawMessage(Lineage(dp.source_topic, 0, 0), to_ipc(broken))], plan, dp, 0)
    result.check()
    (bad,) = result.quarantined
    assert bad.lineage == Lineage(dp.source_topic, 0, 0, 1)
    assert bad.reason == "decode: null in required field national_id"
    assert from_ipc(bad.value).num_rows == 1


def test_wrong_columns_quarantine_every_row(config: Config) -> None:
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets[DATASET]
    batch = rows_batch(3).drop_columns(["hs_code"])
    good, bad = conform(batch, dp.schema)
    assert good is None and [r for r, _ in bad] == [0, 1, 2]
    assert "missing hs_code" in bad[0][1]


def test_string_enums_are_cast_and_checked(config: Config) -> None:
    dp = plan_for(config, "hk-eu").datasets[DATASET]
    batch = rows_batch(3)
    cats = batch.column("category").dictionary_decode().to_pylist()
    cats[2] = "contraband"
    plain = batch.set_column(batch.schema.get_field_index("category"),
                             pa.field("category", pa.string(), nullable=False), pa.array(cats))
    good, bad = conform(plain, dp.schema)
    assert good is not None and good[1] == [0, 1]
    assert bad == [(2, "category: not a symbol of the enum")]


@settings(max_examples=15, deadline=None)
@given(sizes=st.lists(st.integers(0, 30), min_size=1, max_size=5),
       committed_upto=st.integers(0, 5))
def test_verify_counts_rows_of_arrow_messages(sizes: list[int], committed_upto: int) -> None:
    """Outcomes per row of every committed message balance exactly; a lost row is missing."""
    plan = plan_for(load_cfg(), "hk-asean")
    dp = plan.datasets[DATASET]
    msgs = [RawMessage(Lineage(dp.source_topic, 0, o), to_ipc(rows_batch(n, seed=o)))
            for o, n in enumerate(sizes)]
    done = msgs[:committed_upto]
    source = [Lineage(m.lineage.topic, 0, m.lineage.offset, r)
              for m in msgs for r in range(arrow_rows(m.value) or 0)]
    result = process(done, plan, dp, 0) if done else None
    delivered = [str(lin) for d in (result.delivered if result else []) for lin in d.lineages()]
    side = [(str(s.lineage), s.reason) for s in (result.withheld if result else [])]
    committed = {(dp.source_topic, 0): len(done)}
    report = verify(source, committed, delivered, side)
    assert report.ok and report.source == sum(sizes[:committed_upto])
    if delivered:
        lost = verify(source, committed, delivered[1:], side)
        assert not lost.ok and len(lost.missing) == 1
