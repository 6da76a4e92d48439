"""Per-subject keys: deterministic ids, records on the key topic, encryption bound to field
and key, erasure markers, and a consumer that gets Erased for one subject and reads the rest."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import pyarrow as pa
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from corridor.core.crypto import (
    DataKey,
    FieldCipher,
    Kek,
    WrappedKey,
    unwrap_data_key,
    wrap_data_key,
)
from corridor.core.crypto.decrypt import decrypt_column
from corridor.core.crypto.subject_keys import (
    ErasableSealer,
    ErasureMarker,
    SubjectKeyBook,
    SubjectKeyRecord,
    erasure_records,
    key_id_secret,
    new_subject_key,
    open_erasable_column,
    parse_subject_key_value,
    subject_key_id,
    subject_tag,
)
from corridor.core.errors import ContextMismatch, CryptoError, Erased, KeyNotFound
from corridor.core.subjects import subject_id, subject_key

ZONE_KEY = subject_key("hk", b"z" * 32)
SECRET = key_id_secret(ZONE_KEY)
EU_KEK = Kek.from_material("eu", b"k" * 32)
CORRIDOR, DATASET, FIELD = "hk-eu", "trade.shipment", "contact_email"
T0 = 1_735_689_600_000


def counter_random() -> Callable[[int], bytes]:
    count = itertools.count(1)
    return lambda n: next(count).to_bytes(4, "big") * (n // 4)


class Park:
    """The processor side for a few subjects of one scope: draws, wraps and publishes keys."""

    def __init__(self) -> None:
        self.book = SubjectKeyBook()
        self.topic: list[tuple[bytes, bytes | None]] = []
        self.random = counter_random()
        self.keys: dict[str, DataKey] = {}
        self.sealer = ErasableSealer(CORRIDOR, DATASET, FIELD)

    def key_for(self, raw: str, scope: str = "hk.outbound.trade.shipment/0") -> str:
        subject = subject_id(raw, ZONE_KEY)
        key_id, generation, record = self.book.current(SECRET, CORRIDOR, "eu", subject, scope)
        if record is None:
            key = new_subject_key(key_id, CORRIDOR, generation, random=self.random,
                                  clock=lambda: 1.0)
            published = SubjectKeyRecord(wrap_data_key(key, EU_KEK), subject_tag(
                SECRET, CORRIDOR, subject))
            self.publish(published.key_id.encode(), published.to_json())
            self.keys[key_id] = key
        return key_id

    def publish(self, key: bytes, value: bytes | None) -> None:
        self.topic.append((key, value))
        self.book.apply(key, value)

    def encrypt(self, raws: list[str | None], emails: list[str | None]) -> pa.Array:
        ids = [None if r is None else self.key_for(r) for r in raws]
        return self.sealer.seal_column(pa.array(emails, pa.string()), ids, self.keys)

    def erase(self, raw: str) -> list[tuple[bytes, bytes]]:
        tag = subject_tag(SECRET, CORRIDOR, subject_id(raw, ZONE_KEY))
        markers = erasure_records(self.book, tag, "erasure-1", T0)
        for key, value in markers:
            self.publish(key, value)
        return markers


def consumer_book(topic: list[tuple[bytes, bytes | None]]) -> SubjectKeyBook:
    book = SubjectKeyBook()
    for key, value in topic:
        book.apply(key, value)
    return book


def compacted(topic: list[tuple[bytes, bytes | None]]) -> list[tuple[bytes, bytes | None]]:
    return list({key: (key, value) for key, value in topic}.values())


def unwrap(wrapped: WrappedKey) -> DataKey:
    return unwrap_data_key(wrapped, EU_KEK)


def test_key_ids_are_deterministic_per_corridor_subject_scope_and_generation() -> None:
    s = subject_id("alice", ZONE_KEY)
    one = subject_key_id(SECRET, CORRIDOR, "eu", s, "t/0")
    assert one == subject_key_id(SECRET, CORRIDOR, "eu", s, "t/0")
    others = {subject_key_id(SECRET, CORRIDOR, "eu", s, "t/1"),
              subject_key_id(SECRET, CORRIDOR, "asean", s, "t/0"),
              subject_key_id(SECRET, "hk-asean", "eu", s, "t/0"),
              subject_key_id(SECRET, CORRIDOR, "eu", s, "t/0", generation=1),
              subject_key_id(SECRET, CORRIDOR, "eu", subject_id("bob", ZONE_KEY), "t/0")}
    assert one not in others and len(others) == 5
    assert one.startswith("hk-eu-sk-") and s not in one  # names no one


def test_records_round_trip_without_showing_the_key() -> None:
    park = Park()
    park.key_for("alice")
    key, value = park.topic[0]
    record = parse_subject_key_value(value or b"")
    assert isinstance(record, SubjectKeyRecord) and record.key_id == key.decode()
    assert "wrapped" not in repr(record)
    marker = ErasureMarker(record.key_id, CORRIDOR, record.tag, "e-1", T0)
    assert parse_subject_key_value(marker.to_json()) == marker
    with pytest.raises(CryptoError, match="malformed"):
        parse_subject_key_value(b'{"v":1}')


def test_a_key_is_drawn_once_and_found_again_by_a_restarted_processor() -> None:
    park = Park()
    first = park.key_for("alice")
    assert park.key_for("alice") == first and len(park.topic) == 1
    restarted = consumer_book(park.topic)
    subject = subject_id("alice", ZONE_KEY)
    key_id, generation, record = restarted.current(SECRET, CORRIDOR, "eu", subject,
                                                   "hk.outbound.trade.shipment/0")
    assert (key_id, generation) == (first, 0) and record is not None


def test_erasure_gives_erased_for_that_subject_and_the_rest_still_reads() -> None:
    park = Park()
    raws = ["alice", "bob", None, "alice", "carol"]
    emails = ["a@x.org", "b@y.org", None, "a2@x.org", None]
    sealed = park.encrypt(raws, emails)
    assert sealed.null_count == 2
    markers = park.erase("alice")
    assert len(markers) == 1
    book = consumer_book(compacted(park.topic))
    opened = open_erasable_column(sealed, pa.string(), corridor=CORRIDOR, dataset=DATASET,
                                  field_path=FIELD, keys=book.lookup(unwrap, FIELD))
    assert opened.values.to_pylist() == [None, "b@y.org", None, None, None]
    assert sorted(opened.erased) == [0, 3]
    error = opened.erased[0]
    assert error.field == FIELD and error.erased_at_ms == T0 and error.key_id.startswith("hk-eu")
    assert "alice" not in str(error)
    # After compaction no record of the topic holds alice's wrapped key.
    alice = markers[0][0]
    assert [v for k, v in compacted(park.topic) if k == alice] == [markers[0][1]]
    with pytest.raises(Erased):  # decrypting the whole column at once fails closed, clearly
        decrypt_column(sealed, pa.string(), corridor=CORRIDOR, dataset=DATASET, field=FIELD,
                       keys=book.lookup(unwrap, FIELD))


def test_a_subject_crossing_again_after_erasure_gets_a_new_generation() -> None:
    park = Park()
    old = park.key_for("alice")
    park.erase("alice")
    new = park.key_for("alice")
    assert new != old
    assert isinstance(park.book.get(old), ErasureMarker)
    assert park.erase("alice")[0][0] == new.encode()  # the next erasure finds the new key


def test_erase_finds_every_scope_of_the_subject() -> None:
    park = Park()
    keys = {park.key_for("alice", f"hk.outbound.trade.shipment/{p}") for p in range(3)}
    park.key_for("bob")
    assert {k.decode() for k, _ in park.erase("alice")} == keys


def test_a_value_is_bound_to_its_field_and_an_unknown_key_is_not_erased() -> None:
    park = Park()
    sealed = park.encrypt(["alice"], ["a@x.org"])
    lookup = consumer_book(park.topic).lookup(unwrap)
    with pytest.raises(ContextMismatch):
        open_erasable_column(sealed, pa.string(), corridor=CORRIDOR, dataset=DATASET,
                             field_path="contact_name", keys=lookup)
    with pytest.raises(KeyNotFound):
        open_erasable_column(sealed, pa.string(), corridor=CORRIDOR, dataset=DATASET,
                             field_path=FIELD, keys=SubjectKeyBook().lookup(unwrap))


def test_a_value_without_a_subject_key_or_with_another_corridors_is_refused() -> None:
    sealer = ErasableSealer(CORRIDOR, DATASET, FIELD)
    with pytest.raises(CryptoError, match="no subject key"):
        sealer.seal_column(pa.array(["x"]), [None], {})
    other = new_subject_key("hk-asean-sk-x", "hk-asean", 0)
    with pytest.raises(CryptoError, match="belongs to corridor hk-asean"):
        sealer.seal_column(pa.array(["x"]), ["k"], {"k": other})


def test_sealed_values_are_what_a_field_cipher_makes_for_that_key() -> None:
    park = Park()
    sealed = park.encrypt(["alice", "alice", "bob"], ["a@x.org", None, "b@y.org"])
    alice, bob = park.key_for("alice"), park.key_for("bob")
    reference = [
        FieldCipher(park.keys[k]).encrypt_column(pa.array([v]), corridor=CORRIDOR,
                                                 dataset=DATASET, field=FIELD,
                                                 deterministic=True)[0].as_py()
        for k, v in ((alice, "a@x.org"), (bob, "b@y.org"))]
    assert sealed.to_pylist() == [reference[0], None, reference[1]]


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.one_of(st.none(), st.sampled_from(["a", "b", "c", "d"])),
                          st.one_of(st.none(), st.text(max_size=8))), max_size=20),
       st.sets(st.sampled_from(["a", "b", "c", "d"])))
def test_round_trip_with_any_erased_subset(rows: list[tuple[str | None, str | None]],
                                           erase: set[str]) -> None:
    park = Park()
    raws = [r if v is not None else None for r, v in rows]  # a null value needs no key
    values = [v if r is not None else None for r, v in rows]  # and a value without subject
    # is withheld before (subject_missing)
    sealed = park.encrypt(raws, values)
    again = ErasableSealer(CORRIDOR, DATASET, FIELD).seal_column(
        pa.array(values, pa.string()), [None if r is None else park.key_for(r) for r in raws],
        park.keys)
    assert again.equals(sealed)  # a replayed batch writes the same bytes
    for raw in erase:
        park.erase(raw)
    opened = open_erasable_column(sealed, pa.string(), corridor=CORRIDOR, dataset=DATASET,
                                  field_path=FIELD, keys=consumer_book(park.topic).lookup(unwrap))
    expected = [None if r in erase else v for r, v in zip(raws, values, strict=True)]
    assert opened.values.to_pylist() == expected
    assert set(opened.erased) == {i for i, r in enumerate(raws) if r in erase}
