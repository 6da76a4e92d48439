"""process(): outcomes, reasons, headers and output bytes; agreement with the per-record reference."""

from __future__ import annotations

import io

import fastavro
import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.codec import from_ipc
from corridor.core.config import Config
from corridor.core.crypto import decrypt_batch_column, decrypt_column
from corridor.core.model import Lineage, Outcome
from corridor.core.pipeline import LINEAGE_OFFSET, BatchResult, process
from corridor.core.plan import CorridorPlan
from corridor.core.policy.values import pseudonym
from corridor.dev.reference import process_reference
from corridor.dev.sample import encode, generate_records, generate_rows
from tests.unit.plan_fixtures import data_key, load, messages, plan_for

DATASET = "trade.shipment"


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load(tmp_path_factory.mktemp("cfg"))


def run(plan: CorridorPlan, values: list[bytes | None]) -> tuple[BatchResult, list]:  # type: ignore[type-arg]
    dp = plan.datasets[DATASET]
    msgs = messages(dp.source_topic, values)
    result = process(msgs, plan, dp, 1234)
    result.check()
    return result, msgs


def body(value: bytes, plan: CorridorPlan) -> dict:  # type: ignore[type-arg]
    egress = plan.datasets[DATASET].egress
    assert value[2:10] == egress.fingerprint
    return fastavro.schemaless_reader(io.BytesIO(value[10:]), egress.parsed, None)  # type: ignore[return-value]


def record(**changes: object) -> dict:  # type: ignore[type-arg]
    rec = generate_rows(DATASET, 1, seed=3, withheld_share=0.0)[0]
    rec.update(changes)
    return rec


def test_outcomes_reasons_and_counts(config: Config) -> None:
    plan = plan_for(config, "hk-eu")
    schema = plan.datasets[DATASET].schema
    values = [
        encode(record(), schema),
        encode(record(consent=False), schema),
        encode(record(category="dual_use"), schema),
        encode(record(declared_value=-3.0, consent=False), schema),
        b"\x00garbage",
        None,
    ]
    result, msgs = run(plan, values)
    assert result.counts() == {"delivered": 2, "withheld": 2, "quarantined": 2}
    reasons = {s.lineage: s.reason for s in result.withheld + result.quarantined}
    assert reasons[msgs[1].lineage] == "withhold: consent == false or category == 'strategic'"
    assert reasons[msgs[2].lineage] == "class important not admitted by corridor hk-eu"
    assert reasons[msgs[3].lineage] == "validate: declared_value >= 0"  # invalid beats withheld
    assert reasons[msgs[4].lineage].startswith("decode: bad magic")
    # A tombstone (a delete) crosses as a tombstone (tests below).
    assert [d.lineage for d in result.delivered] == [msgs[0].lineage, msgs[5].lineage]
    side = {s.lineage: s for s in result.withheld + result.quarantined}
    assert all(side[m.lineage].value == m.value and side[m.lineage].key == m.key
               for m in msgs[1:5])
    assert result.processed_at_ms == 1234


def test_delivered_record_headers_and_body(config: Config) -> None:
    plan = plan_for(config, "hk-eu")
    dp = plan.datasets[DATASET]
    rec = record(contact_email="wing.chan@pearl.example")
    result, msgs = run(plan, [encode(rec, dp.schema)])
    [delivery] = result.delivered
    # The key is personal by default: it crosses as its pseudonym, never as it was.
    assert msgs[0].key is not None and delivery.key != msgs[0].key
    assert delivery.key == pseudonym(msgs[0].key, plan.pseudonym_key.reveal()).encode()  # type: ignore[union-attr]
    assert delivery.lineage == msgs[0].lineage
    assert delivery.headers == [
        *dp.headers,
        ("corridor-lineage", b"hk.outbound.trade.shipment/0/100"),
    ]
    assert result.egress_schemas_used == (dp.egress,)
    out = body(delivery.value, plan)
    assert "national_id" not in out  # dropped
    assert out["contact_name"] == pseudonym(
        rec["contact_name"].encode(), plan.pseudonym_key.reveal()
    )  # type: ignore[union-attr]
    assert out["location"] == {
        "port": "****" + rec["location"]["port"][-4:],
        "country": rec["location"]["country"],
    }
    key = data_key("hk-eu")
    email = decrypt_column(
        pa.array([out["contact_email"]], pa.binary()),
        pa.string(),
        corridor="hk-eu",
        dataset=DATASET,
        field="contact_email",
        keys={key.key_id: key},
    )
    assert email.to_pylist() == ["wing.chan@pearl.example"]
    assert out["hs_code"] == rec["hs_code"] and out["declared_value"] == rec["declared_value"]


def test_pseudonyms_stable_per_corridor_and_differ_across(config: Config) -> None:
    a, b = plan_for(config, "hk-eu"), plan_for(config, "hk-asean")
    value = encode(record(contact_name="Mei Tan"), a.datasets[DATASET].schema)
    first = body(run(a, [value])[0].delivered[0].value, a)["contact_name"]
    again = body(run(plan_for(config, "hk-eu"), [value])[0].delivered[0].value, a)["contact_name"]
    arrow = from_ipc(run(b, [value])[0].delivered[0].value).column("contact_name")[0].as_py()
    assert first == again
    assert first != arrow


def test_arrow_format_batches_per_partition(config: Config) -> None:
    plan = plan_for(config, "hk-asean")
    dp = plan.datasets[DATASET]
    rows = [record(consent=i % 5 != 0, contact_name=f"Name {i % 3}") for i in range(20)]
    result, msgs = run(plan, [encode(r, dp.schema) for r in rows])
    assert result.counts() == {"delivered": 16, "withheld": 4, "quarantined": 0}
    assert [d.lineage.partition for d in result.delivered] == [0, 1, 2]
    key = data_key("hk-asean")
    for d in result.delivered:
        batch = from_ipc(d.value)
        offsets = batch.column(LINEAGE_OFFSET).to_pylist()
        assert list(d.offsets) == offsets and batch.num_rows == d.rows
        span = f"{dp.source_topic}/{d.lineage.partition}/{min(offsets)}-{max(offsets)}"
        assert d.headers == [*dp.headers, ("corridor-lineage", span.encode())]
        assert "national_id" not in batch.schema.names and "location" in batch.schema.names
        assert "port" not in batch.column("location").type.names
        blob = batch.schema.metadata[b"corridor.sealed.national_id"]
        ids = decrypt_batch_column(
            blob,
            corridor="hk-asean",
            dataset=DATASET,
            field="national_id",
            lineage=span,
            keys={key.key_id: key},
        )
        by_offset = {
            m.lineage.offset: r
            for m, r in zip(msgs, rows, strict=False)
            if m.lineage.partition == d.lineage.partition
        }
        assert ids.to_pylist() == [by_offset[o]["national_id"] for o in offsets]


def garbage() -> st.SearchStrategy[bytes | None]:
    return st.one_of(
        st.none(), st.binary(max_size=30), st.binary(max_size=40).map(lambda b: b"\xc3\x01" + b)
    )


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    n=st.integers(0, 60),
    withheld=st.floats(0, 1),
    bad=st.floats(0, 0.5),
    junk=st.lists(st.tuples(st.integers(0, 60), garbage()), max_size=6),
    corridor=st.sampled_from(["hk-eu", "hk-asean"]),
)
def test_pipeline_agrees_with_reference(
    config: Config,
    seed: int,
    n: int,
    withheld: float,
    bad: float,
    junk: list[tuple[int, bytes | None]],
    corridor: str,
) -> None:
    plan = plan_for(config, corridor)
    dp = plan.datasets[DATASET]
    values: list[bytes | None] = list(generate_records(DATASET, n, seed, withheld, bad))
    for at, value in junk:
        values.insert(min(at, len(values)), value)
    msgs = messages(dp.source_topic, values)
    fast, slow = process(msgs, plan, dp, 0), process_reference(msgs, plan, dp, 0)
    fast.check()
    slow.check()
    assert fast.counts() == slow.counts()
    assert fast.outcomes() == slow.outcomes()
    assert [(s.lineage, s.reason) for s in fast.withheld] == [
        (s.lineage, s.reason) for s in slow.withheld
    ]
    assert [(s.lineage, s.reason) for s in fast.quarantined] == [
        (s.lineage, s.reason) for s in slow.quarantined
    ]
    assert [d.headers for d in fast.delivered] == [d.headers for d in slow.delivered]
    assert [d.timestamp for d in fast.delivered] == [d.timestamp for d in slow.delivered]
    if corridor == "hk-eu":  # arrow messages carry their rows' keys in a column (below)
        assert [d.key for d in fast.delivered] == [d.key for d in slow.delivered]
    assert [d.value is None for d in fast.delivered] == [d.value is None for d in slow.delivered]
    for f, s in zip(fast.delivered, slow.delivered, strict=False):
        if f.value is None or s.value is None:
            continue  # a tombstone: compared by key, headers and timestamp above
        if corridor == "hk-eu":  # everything but the randomly encrypted e-mail is byte-equal
            fb, sb = body(f.value, plan), body(s.value, plan)
            assert (fb["contact_email"] is None) == (sb["contact_email"] is None)
            fb.pop("contact_email"), sb.pop("contact_email")
            assert fb == sb
        else:
            fb, sb = from_ipc(f.value), from_ipc(s.value)
            for name in sb.schema.names:  # deterministic encryption too: same key, same bytes
                assert fb.column(name).to_pylist() == sb.column(name).to_pylist(), name


def test_empty_batch(config: Config) -> None:
    result, _ = run(plan_for(config, "hk-eu"), [])
    assert result.counts() == {"delivered": 0, "withheld": 0, "quarantined": 0}
    assert result.egress_schemas_used == ()
    assert result.outcomes() == {}
    assert Outcome.DELIVERED.value == "delivered" and isinstance(Lineage.parse("a/1/2"), Lineage)


# -- the transfer instrument: its id on every record; after its expiry nothing crosses -----

def _with_instrument(tmp_path, expires: str) -> Config:  # type: ignore[no-untyped-def]
    from corridor.core.config import load_config
    from tests.unit.plan_fixtures import CONFIG

    text = CONFIG.replace("    legal_basis: DEPA\n", "    legal_basis: DEPA\n    instrument: rmc\n")
    text = text.replace("    legal_basis: PDPO-RMCC\n",
                        "    legal_basis: PDPO-RMCC\n    instrument: rmc\n")
    text += f"""\
instruments:
  rmc:
    kind: HK-RMC
    reference: PCPD-RMC-TEST
    parties: [A, B]
    signed: 2020-01-01
    expires: {expires}
    purpose: tests
    retention: 30d
"""
    path = tmp_path / "corridors.yaml"
    path.write_text(text)
    return load_config(path)


@pytest.mark.parametrize("corridor", ["hk-eu", "hk-asean"])  # avro and arrow
def test_records_carry_the_instrument_and_are_all_withheld_once_it_has_expired(
        tmp_path, corridor: str) -> None:  # type: ignore[no-untyped-def]
    plan = plan_for(_with_instrument(tmp_path, "2023-11-14"), corridor)
    dp = plan.datasets[DATASET]
    msgs = messages(dp.source_topic, generate_records(DATASET, 40, seed=9, bad_ratio=0.1))
    end_of_expiry_day = 1_700_006_400_000  # 2023-11-15T00:00:00Z
    assert plan.instrument_expiry_ms == end_of_expiry_day

    before = process(msgs, plan, dp, end_of_expiry_day - 1)
    before.check()
    assert before.delivered and all((dict(d.headers).get("corridor-instrument") == b"rmc")
                                    for d in before.delivered)

    after = process(msgs, plan, dp, end_of_expiry_day)
    after.check()
    assert after.delivered == [] and len(after.quarantined) == len(before.quarantined)
    assert {w.reason for w in after.withheld} == {"instrument_expired: rmc"}
    assert len(after.withheld) == after.inputs - len(after.quarantined)
