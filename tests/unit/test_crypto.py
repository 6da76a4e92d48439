"""corridor.core.crypto: round trips, the four decryption errors, nonces, limits, rotation."""

from __future__ import annotations

import datetime as dt
import random
import time
from decimal import Decimal

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.config.rotation import RotationSchedule
from corridor.core.crypto import (
    DataKeyRing,
    FieldCipher,
    Kek,
    NonceSource,
    WrappedKey,
    decrypt_batch_column,
    decrypt_column,
    new_data_key,
    unwrap_data_key,
    wrap_data_key,
)
from corridor.core.errors import (
    ContextMismatch,
    CryptoError,
    KeyNotFound,
    KeyUsageExhausted,
    TamperedCiphertext,
    WrongKey,
)

CTX = {"corridor": "hk-eu", "dataset": "trade.shipment", "field": "contact_email"}
UTC = dt.UTC


def seeded(seed: int = 7):
    return random.Random(seed).randbytes


class FakeClock:
    def __init__(self, now: float = 1_700_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def ring() -> DataKeyRing:
    r = DataKeyRing(random=seeded(), clock=FakeClock(), nonces=NonceSource(random=seeded(8)))
    r.rotate("hk-eu")
    return r


COLUMNS = {
    "string": pa.array(["a@x.org", None, "héllo ✓", ""]),
    "int32": pa.array([1, None, -(2**31), 2**31 - 1], pa.int32()),
    "int64": pa.array([None, 2**63 - 1, -1], pa.int64()),
    "double": pa.array([1.5, None, float("inf"), -0.0]),
    "float": pa.array([1.5, None], pa.float32()),
    "bool": pa.array([True, None, False]),
    "binary": pa.array([b"\x00\xff", None, b""]),
    "fixed": pa.array([b"abcd", None], pa.binary(4)),
    "ts_ms": pa.array(
        [dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC), None], pa.timestamp("ms", tz="UTC")
    ),
    "ts_us": pa.array([dt.datetime(1969, 12, 31, tzinfo=UTC), None], pa.timestamp("us", tz="UTC")),
    "date": pa.array([dt.date(2024, 2, 29), None], pa.date32()),
    "decimal": pa.array([Decimal("123.45"), None, Decimal("-0.01")], pa.decimal128(10, 2)),
    "all_null": pa.array([None, None], pa.string()),
    "empty": pa.array([], pa.string()),
    "sliced": pa.array(["x", "y", None, "z"]).slice(1, 2),
    "dictionary": pa.array(["a", "b", "a", None]).dictionary_encode(),
}


@pytest.mark.parametrize("deterministic", [False, True])
@pytest.mark.parametrize("name", list(COLUMNS))
def test_avro_format_round_trip(ring: DataKeyRing, name: str, deterministic: bool) -> None:
    values = COLUMNS[name]
    sealed = ring.cipher("hk-eu").encrypt_column(values, **CTX, deterministic=deterministic)
    assert sealed.type == pa.binary() and len(sealed) == len(values)
    assert sealed.is_null().equals(values.is_null())  # nullness stays visible, by design
    assert decrypt_column(sealed, values.type, **CTX, keys=ring).equals(values)


@pytest.mark.parametrize("name", list(COLUMNS))
def test_arrow_format_round_trip(ring: DataKeyRing, name: str) -> None:
    values = COLUMNS[name]
    blob = ring.cipher("hk-eu").encrypt_batch_column(values, **CTX, lineage="hk.outbound.t/0/10")
    back = decrypt_batch_column(
        blob, **CTX, lineage="hk.outbound.t/0/10", keys=ring, arrow_type=values.type
    )
    assert back.equals(values)


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.text()), max_size=30), st.booleans())
def test_strings_round_trip_property(values: list[str | None], deterministic: bool) -> None:
    r = DataKeyRing(random=seeded(), clock=FakeClock())
    r.rotate("hk-eu")
    arr = pa.array(values, pa.string())
    sealed = r.cipher("hk-eu").encrypt_column(arr, **CTX, deterministic=deterministic)
    assert decrypt_column(sealed, pa.string(), **CTX, keys=r).to_pylist() == values


@settings(max_examples=60, deadline=None)
@given(st.lists(st.one_of(st.none(), st.integers(-(2**63), 2**63 - 1)), max_size=30))
def test_longs_round_trip_property(values: list[int | None]) -> None:
    r = DataKeyRing(random=seeded(), clock=FakeClock())
    r.rotate("hk-eu")
    arr = pa.array(values, pa.int64())
    sealed = r.cipher("hk-eu").encrypt_column(arr, **CTX)
    assert decrypt_column(sealed, pa.int64(), **CTX, keys=r).to_pylist() == values


def test_randomized_mode_hides_equality(ring: DataKeyRing) -> None:
    sealed = ring.cipher("hk-eu").encrypt_column(pa.array(["same", "same"]), **CTX)
    assert sealed[0] != sealed[1]


def test_deterministic_mode_reveals_equality_only_within_field_and_epoch(ring: DataKeyRing) -> None:
    cipher = ring.cipher("hk-eu")
    arr = pa.array(["same", "same", "other"])
    a = cipher.encrypt_column(arr, **CTX, deterministic=True).to_pylist()
    assert a[0] == a[1] != a[2]
    other_field = cipher.encrypt_column(arr, **{**CTX, "field": "f2"}, deterministic=True)
    assert other_field[0].as_py() != a[0]
    ring.rotate("hk-eu")
    next_epoch = ring.cipher("hk-eu").encrypt_column(arr, **CTX, deterministic=True)
    assert next_epoch[0].as_py() != a[0]


def test_layout_is_versioned_and_names_the_key(ring: DataKeyRing) -> None:
    value = ring.cipher("hk-eu").encrypt_column(pa.array(["x"]), **CTX)[0].as_py()
    kid = ring.cipher("hk-eu").key_id.encode()
    assert value[0] == 0x01 and value[1] == len(kid) and value[2 : 2 + len(kid)] == kid
    assert len(value) == 2 + len(kid) + 8 + 12 + 1 + 16


# --- the four errors -------------------------------------------------------------


def test_unknown_key_id_is_key_not_found(ring: DataKeyRing) -> None:
    sealed = ring.cipher("hk-eu").encrypt_column(pa.array(["x"]), **CTX)
    with pytest.raises(KeyNotFound):
        decrypt_column(sealed, pa.string(), **CTX, keys={})


def test_retired_epoch_is_key_not_found(ring: DataKeyRing) -> None:
    old = ring.cipher("hk-eu")
    sealed = old.encrypt_column(pa.array(["x"]), **CTX)
    ring.rotate("hk-eu")
    assert decrypt_column(sealed, pa.string(), **CTX, keys=ring).to_pylist() == ["x"]
    assert ring.retire("hk-eu", before_epoch=2) == [old.key_id]
    with pytest.raises(KeyNotFound):
        decrypt_column(sealed, pa.string(), **CTX, keys=ring)


def test_unwrap_with_another_zones_kek_is_wrong_key() -> None:
    dek = new_data_key("hk-eu", 1, random=seeded())
    eu = Kek.from_material("eu", seeded(1)(32))
    asean = Kek.from_material("asean", seeded(2)(32))
    eu_again = Kek.from_material("eu", seeded(3)(32))  # a re-created eu KEK
    wrapped = wrap_data_key(dek, eu, random=seeded(4))
    assert unwrap_data_key(wrapped, eu).material == dek.material
    for kek in (asean, eu_again):
        with pytest.raises(WrongKey):
            unwrap_data_key(wrapped, kek)


def test_tampered_wrapped_key_is_tampered() -> None:
    dek = new_data_key("hk-eu", 1, random=seeded())
    eu = Kek.from_material("eu", seeded(1)(32))
    wrapped = wrap_data_key(dek, eu)
    flipped = bytes([wrapped.wrapped[20] ^ 1])
    bad_bytes = WrappedKey(
        **{**vars(wrapped), "wrapped": wrapped.wrapped[:20] + flipped + wrapped.wrapped[21:]}
    )
    moved = WrappedKey(**{**vars(wrapped), "epoch": 2})  # metadata is bound too
    for bad in (bad_bytes, moved):
        with pytest.raises(TamperedCiphertext):
            unwrap_data_key(bad, eu)


def test_wrapped_key_json_round_trip() -> None:
    dek = new_data_key("hk-eu", 3, random=seeded(), clock=FakeClock(1.25))
    eu = Kek.from_material("eu", seeded(1)(32))
    wrapped = wrap_data_key(dek, eu)
    again = WrappedKey.from_json(wrapped.to_json())
    assert again == wrapped and again.topic_key == dek.key_id.encode()
    assert unwrap_data_key(again, eu).material == dek.material
    with pytest.raises(CryptoError):
        WrappedKey.from_json(b'{"v": 1}')


def test_tampered_value_is_tampered(ring: DataKeyRing) -> None:
    sealed = ring.cipher("hk-eu").encrypt_column(pa.array(["secret"]), **CTX)[0].as_py()
    bad = sealed[:-3] + bytes([sealed[-3] ^ 0x40]) + sealed[-2:]
    with pytest.raises(TamperedCiphertext):
        decrypt_column(pa.array([bad]), pa.string(), **CTX, keys=ring)
    with pytest.raises(TamperedCiphertext):
        decrypt_column(pa.array([b"\x01"]), pa.string(), **CTX, keys=ring)


@pytest.mark.parametrize("moved", [{"field": "hs_code"}, {"dataset": "ecommerce.order"}])
def test_value_moved_to_other_field_or_dataset_is_context_mismatch(
    ring: DataKeyRing, moved: dict
) -> None:
    sealed = ring.cipher("hk-eu").encrypt_column(pa.array(["secret"]), **CTX)
    with pytest.raises(ContextMismatch):
        decrypt_column(sealed, pa.string(), **{**CTX, **moved}, keys=ring)


def test_value_moved_to_other_corridor_is_context_mismatch(ring: DataKeyRing) -> None:
    sealed = ring.cipher("hk-eu").encrypt_column(pa.array(["secret"]), **CTX)
    with pytest.raises(ContextMismatch):
        decrypt_column(sealed, pa.string(), **{**CTX, "corridor": "hk-asean"}, keys=ring)


def test_arrow_format_errors(ring: DataKeyRing) -> None:
    blob = ring.cipher("hk-eu").encrypt_batch_column(pa.array(["a", "b"]), **CTX, lineage="t/0/1")
    with pytest.raises(ContextMismatch):  # moved to another batch
        decrypt_batch_column(blob, **CTX, lineage="t/0/2", keys=ring)
    with pytest.raises(ContextMismatch):
        decrypt_batch_column(blob, **{**CTX, "field": "x"}, lineage="t/0/1", keys=ring)
    with pytest.raises(TamperedCiphertext):
        decrypt_batch_column(blob[:-1] + bytes([blob[-1] ^ 1]), **CTX, lineage="t/0/1", keys=ring)
    with pytest.raises(KeyNotFound):
        decrypt_batch_column(blob, **CTX, lineage="t/0/1", keys={})


# --- nonces, limits, rotation ----------------------------------------------------


def test_million_nonces_are_unique_and_fast() -> None:
    source = NonceSource(random=seeded())
    start = time.perf_counter()
    nonces = {source.next() for _ in range(1_000_000)}
    assert len(nonces) == 1_000_000
    assert all(len(n) == 12 for n in list(nonces)[:10])
    assert time.perf_counter() - start < 5.0


def test_nonces_in_a_column_are_distinct(ring: DataKeyRing) -> None:
    sealed = ring.cipher("hk-eu").encrypt_column(pa.array(["v"] * 1000), **CTX).to_pylist()
    kid_len = sealed[0][1]
    nonces = {v[2 + kid_len + 8 : 2 + kid_len + 20] for v in sealed}
    assert len(nonces) == 1000


def test_usage_limit_refuses_and_encrypts_nothing() -> None:
    cipher = FieldCipher(new_data_key("hk-eu", 1, random=seeded()), usage_limit=5)
    cipher.encrypt_column(pa.array(["a", None, "b", "c"]), **CTX)  # nulls are not encryptions
    assert cipher.used == 3
    with pytest.raises(KeyUsageExhausted) as err:
        cipher.encrypt_column(pa.array(["d", "e", "f"]), **CTX)
    assert err.value.key_id == cipher.key_id and err.value.limit == 5
    assert cipher.used == 3
    cipher.encrypt_column(pa.array(["d", "e"]), **CTX)
    with pytest.raises(KeyUsageExhausted):
        cipher.encrypt_batch_column(pa.array(["x"]), **CTX, lineage="t/0/1")


def test_key_for_another_corridor_is_refused(ring: DataKeyRing) -> None:
    with pytest.raises(CryptoError):
        ring.cipher("hk-eu").encrypt_column(pa.array(["x"]), **{**CTX, "corridor": "hk-asean"})


def test_rotation_by_count_and_by_age() -> None:
    clock = FakeClock()
    ring = DataKeyRing(schedule=RotationSchedule(every_records=3, every_seconds=60), clock=clock)
    first = ring.rotate_if_due("hk-eu")
    assert first is not None and first.epoch == 1
    assert ring.rotate_if_due("hk-eu") is None
    ring.cipher("hk-eu").encrypt_column(pa.array(["a", "b", "c"]), **CTX)
    second = ring.rotate_if_due("hk-eu")
    assert second is not None and second.epoch == 2 and second.key_id != first.key_id
    clock.now += 59
    assert ring.rotate_if_due("hk-eu") is None
    clock.now += 1
    third = ring.rotate_if_due("hk-eu")
    assert third is not None and third.epoch == 3
    assert ring.epochs("hk-eu") == [1, 2, 3]
    assert ring.retire("hk-eu", before_epoch=99) == sorted([first.key_id, second.key_id])
    assert ring.epochs("hk-eu") == [3]


def test_no_current_key_fails_closed() -> None:
    with pytest.raises(KeyNotFound):
        DataKeyRing().cipher("hk-eu")


def test_column_mixing_epochs_decrypts_and_tamper_mid_column_is_caught(ring: DataKeyRing) -> None:
    first = ring.cipher("hk-eu").encrypt_column(pa.array(["a", None, "b"]), **CTX).to_pylist()
    ring.rotate("hk-eu")
    second = ring.cipher("hk-eu").encrypt_column(pa.array(["c", "d"]), **CTX).to_pylist()
    mixed = pa.array(first + second + first, pa.binary())
    back = decrypt_column(mixed, pa.string(), **CTX, keys=ring).to_pylist()
    assert back == ["a", None, "b", "c", "d", "a", None, "b"]
    bad = list(first + second)
    bad[4] = bad[4][:-1] + bytes([bad[4][-1] ^ 1])
    with pytest.raises(TamperedCiphertext, match="row 4"):
        decrypt_column(pa.array(bad, pa.binary()), pa.string(), **CTX, keys=ring)
    moved = (
        ring.cipher("hk-eu").encrypt_column(pa.array(["e"]), **{**CTX, "field": "x"}).to_pylist()
    )
    with pytest.raises(ContextMismatch, match="row 2"):
        decrypt_column(pa.array(second + moved, pa.binary()), pa.string(), **CTX, keys=ring)
    short = second[0][:30]  # a header prefix but no body: must not take the fast path
    with pytest.raises(TamperedCiphertext):
        decrypt_column(pa.array([second[1], short], pa.binary()), pa.string(), **CTX, keys=ring)


@settings(max_examples=200, deadline=None)
@given(st.data(), st.booleans())
def test_any_bit_flip_fails_closed(data: st.DataObject, deterministic: bool) -> None:
    r = DataKeyRing(random=seeded(), clock=FakeClock())
    r.rotate("hk-eu")
    value = r.cipher("hk-eu").encrypt_column(pa.array(["x@y.z"]), **CTX, deterministic=deterministic)
    raw = value[0].as_py()
    pos = data.draw(st.integers(0, len(raw) - 1))
    bit = data.draw(st.integers(0, 7))
    bad = raw[:pos] + bytes([raw[pos] ^ (1 << bit)]) + raw[pos + 1 :]
    with pytest.raises((KeyNotFound, ContextMismatch, TamperedCiphertext)):
        decrypt_column(pa.array([bad], pa.binary()), pa.string(), **CTX, keys=r)
