"""Erasable fields end to end without a broker: the pipeline seals each row under its
subject's key (asking the key source once per batch), the outbox carries the new keys in
the batch's transaction, the processor's keeper draws once, unwraps what was published,
fails closed while the KMS is down and moves to the next generation after an erasure; the
SDK's decryption returns Erased for the erased subject's rows and reads the rest; the erase
command's plan and audit event."""

from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

import pyarrow as pa
import pytest

from corridor.commands.erase import audit_event, plan_erasure
from corridor.core import topics
from corridor.core.config import Config, FieldClass
from corridor.core.crypto import FieldCipher, Kek, unwrap_data_key, wrap_data_key
from corridor.core.crypto.datakey import DataKey, WrappedKey
from corridor.core.crypto.envelope import split
from corridor.core.crypto.subject_keys import (
    ErasureAnnouncement,
    SubjectKeyBook,
    erasure_records,
    key_id_secret,
    subject_tag,
)
from corridor.core.errors import Erased, KeyProviderUnavailable, PlanError
from corridor.core.outbox import Outbox
from corridor.core.pipeline import BatchResult
from corridor.core.pipeline import process as pipeline_process
from corridor.core.plan import CorridorPlan, build_plan
from corridor.core.policy.erasable import ErasableSealing, Pair, SubjectKeys
from corridor.core.policy.subjects import SubjectInputs
from corridor.core.subjects import LedgerEntry, LedgerState, subject_id, subject_key
from corridor.dev.sample import encode, generate_rows
from corridor.processor.subject_keys import Stopped, SubjectKeyKeeper
from corridor.sdk.decrypt import decrypt_rows, encrypted_fields
from tests.unit.config_fixtures import HEAD, HK_EU, load_text
from tests.unit.plan_fixtures import data_key, messages

CORRIDOR, DATASET, FIELD = "hk-eu", "trade.shipment", "contact_email"
ZONE_KEY = subject_key("hk", b"s" * 32)
EU = Kek.from_material("eu", b"k" * 32)
S, T = "S-1", "T-2"

CONFIG = HEAD + """\
    subject: national_id
    fields: {contact_name: personal, contact_email: personal, national_id: sensitive}
""" + HK_EU + """\
    transform: {national_id: drop, contact_email: encrypt, contact_name: mask}
    erasable: [contact_email]
"""


class Provider:
    """A KekProvider over one in-memory KEK; ``down`` calls fail as unreachable."""

    def __init__(self, down: int = 0) -> None:
        self.down, self.wraps, self.unwraps = down, 0, 0

    def _reach(self) -> None:
        if self.down:
            self.down -= 1
            raise KeyProviderUnavailable("eu KMS: connection refused")

    def kek_id(self, zone: str) -> str:
        return EU.kek_id

    def wrap(self, key: DataKey, zone: str) -> WrappedKey:
        self._reach()
        self.wraps += 1
        return wrap_data_key(key, EU)

    def unwrap(self, wrapped: WrappedKey) -> DataKey:
        self._reach()
        self.unwraps += 1
        return unwrap_data_key(wrapped, EU)


class Log:
    def __init__(self) -> None:
        self.events: list[str] = []

    def __getattr__(self, level: str) -> Any:
        return lambda event, **fields: self.events.append(event)


class Listener:
    def __init__(self) -> None:
        self.news: list[ErasureAnnouncement] = []

    def erasures(self) -> list[ErasureAnnouncement]:
        out, self.news = self.news, []
        return out

    def close(self) -> None:
        pass


def process(msgs: Any, plan: CorridorPlan, dp: Any, now_ms: int, **kw: Any) -> BatchResult:
    """The pipeline with the processor's subject inputs: an empty ledger, no consent."""
    kw.setdefault("subjects", SubjectInputs(ZONE_KEY, {dp.dataset: frozenset({FieldClass.PERSONAL})},
                                            LedgerState()))
    return pipeline_process(msgs, plan, dp, now_ms, **kw)


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_text(tmp_path_factory.mktemp("cfg"), CONFIG)


@pytest.fixture(scope="module")
def plan(config: Config) -> CorridorPlan:
    return build_plan(config, CORRIDOR, FieldCipher(data_key(CORRIDOR)), b"p" * 32)


def rows(subjects: list[str | None]) -> list[dict[str, Any]]:
    out = generate_rows(DATASET, len(subjects), seed=3)
    for i, (row, who) in enumerate(zip(out, subjects, strict=True)):
        row.update(national_id=who or "", contact_email=f"{who}.{i}@example.com", consent=True)
    return out


def batch(plan: CorridorPlan, subjects: list[str | None], partitions: int = 2) -> list[Any]:
    schema = plan.datasets[DATASET].schema
    values = [encode(r, schema) for r in rows(subjects)]
    return messages(plan.datasets[DATASET].source_topic, list(values), partitions)


def keeper(topic: list[tuple[bytes, bytes | None]], provider: Provider | None = None,
           listener: Listener | None = None, stop: threading.Event | None = None
           ) -> SubjectKeyKeeper:
    def read_book() -> SubjectKeyBook:
        book = SubjectKeyBook()
        for k, v in topic:
            book.apply(k, v)
        return book

    made = SubjectKeyKeeper(CORRIDOR, "eu", ZONE_KEY, provider or Provider(), read_book,
                            lambda event, fields: log.events.append(event), log,
                            (lambda: listener) if listener else None,
                            random=lambda n: bytes(range(n)), clock=lambda: 1.0,
                            wait=lambda s, seconds: s.is_set())
    made.stop = stop or threading.Event()
    return made


log = Log()


def commit(k: SubjectKeyKeeper, topic: list[tuple[bytes, bytes | None]]) -> None:
    """Every pending key record committed (appended to the topic)."""
    for scope, waiting in k.pending.items():
        topic += [(key_id.encode(), value) for key_id, value in waiting.items()]
        k.committed(scope, {key_id.encode() for key_id in waiting})


def open_all(plan: CorridorPlan, result: Any, book: SubjectKeyBook
             ) -> tuple[list[dict[str, Any]], dict[int, list[Erased]]]:
    """The delivered values decoded and decrypted as a consumer does, with the erased rows."""
    import io

    import fastavro

    from corridor.core.schema import unframe

    egress = plan.datasets[DATASET].egress
    values = [fastavro.schemaless_reader(io.BytesIO(unframe(d.value)[1]), egress.parsed, None)
              for d in result.delivered]
    erased = decrypt_rows(values, encrypted_fields(egress), corridor=CORRIDOR,
                          dataset=DATASET, keys=book.lookup(lambda w: unwrap_data_key(w, EU)))
    return values, erased


# -- the pipeline ---------------------------------------------------------------------

def test_each_row_is_sealed_under_its_subjects_key_asked_once_per_batch(plan):
    calls: list[Collection[Pair]] = []
    k = keeper([])

    def source(pairs: Collection[Pair]) -> SubjectKeys:
        calls.append(set(pairs))
        return k.resolve(pairs)

    msgs = batch(plan, [S, T, S, T, S, T], partitions=3)
    result = process(msgs, plan, plan.datasets[DATASET], 1,
                     erasable=ErasableSealing(ZONE_KEY, source))
    result.check()
    assert len(calls) == 1
    ids = [subject_id(w, ZONE_KEY) for w in (S, T, S, T, S, T)]
    assert calls[0] == {(i, f"{m.lineage.topic}/{m.lineage.partition}")
                        for i, m in zip(ids, msgs, strict=True)}
    assert sum(len(v) for v in k.pending.values()) == 6  # one key per subject and scope
    topic: list[tuple[bytes, bytes | None]] = []
    commit(k, topic)
    book = keeper(topic)._read_book()
    values, erased = open_all(plan, result, book)
    assert not erased
    assert sorted(v[FIELD] for v in values) == sorted(
        f"{w}.{i}@example.com" for i, w in enumerate([S, T, S, T, S, T]))
    assert len({split(v)[1] for v in _emails(plan, result)}) == 6

    # Erase S: S's rows are null with Erased, T's and every other field still read.
    secret = key_id_secret(ZONE_KEY)
    topic += erasure_records(book, subject_tag(secret, CORRIDOR, ids[0]), "e1", 5)
    values, erased = open_all(plan, result, keeper(topic)._read_book())
    assert sorted(erased) == [0, 2, 4]
    for row, errors in erased.items():
        assert values[row][FIELD] is None and values[row]["contact_name"]
        assert [e.field for e in errors] == [FIELD]
    assert sorted(v[FIELD] for i, v in enumerate(values) if i not in erased) == [
        f"{T}.{i}@example.com" for i in (1, 3, 5)]


def test_a_row_without_subject_is_withheld_subject_missing(plan):
    from dataclasses import replace

    k = keeper([])
    msgs = batch(plan, [S, T, S])
    schema = plan.datasets[DATASET].schema
    row = rows([None])[0]
    row[FIELD] = None
    msgs[1] = replace(msgs[1], value=encode(row, schema))
    # the shipment's national_id is never null: name the nullable email the subject here
    dp = replace(plan.datasets[DATASET], subject=FIELD)
    result = process(msgs, plan, dp, 1, erasable=k.sealing)
    result.check()
    assert [(w.lineage, w.reason) for w in result.withheld] == [(msgs[1].lineage,
                                                                 "subject_missing")]
    assert len(result.delivered) == 2


def test_erasable_fields_without_subject_keys_are_refused_not_sealed_by_the_corridor_key(plan):
    with pytest.raises(PlanError, match="erasable fields"):
        process(batch(plan, [S]), plan, plan.datasets[DATASET], 1)


def test_the_outbox_carries_the_partitions_new_subject_keys_in_its_transaction(plan):
    k = keeper([])
    msgs = batch(plan, [S, T], partitions=1)
    result = process(msgs, plan, plan.datasets[DATASET], 1, erasable=k.sealing)
    scope = f"{plan.datasets[DATASET].source_topic}/0"
    out = Outbox.for_plan(plan, 3).batch(
        result, msgs[0].lineage.topic, 0, 100, 101, destination_topic="d",
        destination_partition=None, topic_id=None, published=set(), pending_keys={},
        subject_keys=k.pending_for(scope))
    names = [m.topic for m in out.out]
    assert names.index(topics.SUBJECT_KEYS) < names.index("d")
    assert names.count(topics.SUBJECT_KEYS) == 2
    assert {m.key for m in out.out if m.topic == topics.SUBJECT_KEYS} <= out.key_ids
    ids = {split(v)[1].decode() for v in _emails(plan, result)}
    assert ids == {m.key.decode() for m in out.out if m.topic == topics.SUBJECT_KEYS}
    k.committed(scope, out.key_ids)
    assert not k.pending_for(scope)


def _emails(plan: CorridorPlan, result: Any) -> list[bytes]:
    import io

    import fastavro

    from corridor.core.schema import unframe

    egress = plan.datasets[DATASET].egress
    return [fastavro.schemaless_reader(io.BytesIO(unframe(d.value)[1]), egress.parsed,
                                       None)[FIELD] for d in result.delivered]


# -- the keeper ---------------------------------------------------------------------------

def test_a_new_owner_unwraps_the_published_key_instead_of_drawing_another(plan):
    provider, topic = Provider(), []
    first = keeper(topic, provider)
    one = process(batch(plan, [S]), plan, plan.datasets[DATASET], 1, erasable=first.sealing)
    commit(first, topic)
    second = keeper(topic, provider)
    second.owned({f"{plan.datasets[DATASET].source_topic}/0": object()}, threading.Event())
    two = process(batch(plan, [S]), plan, plan.datasets[DATASET], 1, erasable=second.sealing)
    assert provider.wraps == 1 and provider.unwraps == 1
    assert _emails(plan, one) == _emails(plan, two)  # same key, deterministic sealing


def test_the_keeper_waits_while_the_kms_is_down_and_stops_when_asked(plan):
    log.events.clear()
    k = keeper([], Provider(down=2))
    process(batch(plan, [S]), plan, plan.datasets[DATASET], 1, erasable=k.sealing)
    assert log.events.count("kms_unavailable") == 2 and "kms_available" in log.events
    stop = threading.Event()
    stop.set()
    stopped = keeper([], Provider(down=1), stop=stop)
    with pytest.raises(Stopped):
        process(batch(plan, [S]), plan, plan.datasets[DATASET], 1, erasable=stopped.sealing)
    assert not stopped.pending  # nothing drawn is left to publish


def test_after_an_announced_erasure_the_subject_gets_a_key_of_the_next_generation(plan):
    topic: list[tuple[bytes, bytes | None]] = []
    listener = Listener()
    k = keeper(topic, listener=listener)
    k.owned({}, threading.Event())
    before = _emails(plan, process(batch(plan, [S], 1), plan, plan.datasets[DATASET], 1,
                                   erasable=k.sealing))
    commit(k, topic)
    book = k._read_book()
    tag = subject_tag(key_id_secret(ZONE_KEY), CORRIDOR, subject_id(S, ZONE_KEY))
    markers = erasure_records(book, tag, "e1", 5)
    topic += markers
    listener.news.append(ErasureAnnouncement(CORRIDOR, "e1", tuple(m[0].decode()
                                                                   for m in markers), 5))
    k._listened_at = 0.0
    k.owned({}, threading.Event())
    after = _emails(plan, process(batch(plan, [S], 1), plan, plan.datasets[DATASET], 1,
                                  erasable=k.sealing))
    assert split(before[0])[1] != split(after[0])[1]
    assert "subject_keys_erased" in log.events


# -- the erase command's plan and audit ---------------------------------------------------

def test_the_erase_plan_finds_the_keys_flags_the_ledger_and_knows_already_erased(config, plan):
    topic: list[tuple[bytes, bytes | None]] = []
    k = keeper(topic)
    process(batch(plan, [S, T]), plan, plan.datasets[DATASET], 1, erasable=k.sealing)
    commit(k, topic)
    book = k._read_book()
    s = subject_id(S, ZONE_KEY)
    ledger = LedgerState([LedgerEntry("hk", 2025, FieldClass.PERSONAL, "eu", s),
                          LedgerEntry("hk", 2025, FieldClass.PERSONAL, "asean", s)])
    found = plan_erasure(config, S, "hk", ZONE_KEY, {"eu": book}, ledger)
    assert [(r.corridor, r.zone, len(r.live)) for r in found.recipients] == [("hk-eu", "eu", 1)]
    assert found.ledger == ["asean", "eu"] and found.unreached == ["asean"]
    key, value = audit_event(found, "e1", "ticket 7", "dpo", "admin", 9)
    assert key == b"erase|e1"
    import json

    event = json.loads(value)
    assert event["event"] == "erase" and event["reason"] == "ticket 7"
    assert event["recipients"] == [{"corridor": "hk-eu", "zone": "eu", "keys": 1}]
    assert event["operator"] == "dpo" and event["ts_ms"] == 9 and event["keys"] == 1
    assert S not in value.decode()  # the raw id is not recorded

    for key_id, marker in erasure_records(book, found.recipients[0].tag, "e1", 9):
        book.apply(key_id, marker)
    again = plan_erasure(config, S, "hk", ZONE_KEY, {"eu": book}, None)
    assert again.live == 0 and len(again.recipients[0].erased) == 1 and again.ledger is None
    other = plan_erasure(config, T, "hk", ZONE_KEY, {"eu": book}, None)
    assert other.live == 1  # T untouched


def test_a_field_that_is_not_erasable_still_raises_what_it_raised(plan):
    values = [{FIELD: b"\x00"}]
    with pytest.raises(Exception):  # noqa: B017 (TamperedCiphertext, as before)
        decrypt_rows(values, encrypted_fields(plan.datasets[DATASET].egress), corridor=CORRIDOR,
                     dataset=DATASET, keys={})


def test_announcement_round_trips_and_is_not_a_key_command():
    from corridor.core.crypto.rotation import ControlCommand

    news = ErasureAnnouncement(CORRIDOR, "e1", ("a", "b"), 5)
    assert ErasureAnnouncement.parse(news.to_json()) == news
    assert ControlCommand.parse(news.to_json()) is None
    assert ErasureAnnouncement.parse(b"{}") is None and ErasureAnnouncement.parse(None) is None


def test_a_path_helper_for_pa() -> None:
    from corridor.core.policy.erasable import column_at

    b = pa.RecordBatch.from_pydict({"a": pa.array([{"b": "x"}, None])})
    assert column_at(b, "a.b").to_pylist() == ["x", None]

