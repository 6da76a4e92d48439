"""What crosses besides the value: the record key, timestamp and park headers (no broker)."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest

from corridor.core.codec import from_ipc
from corridor.core.config import Config, KeyTreatment
from corridor.core.crypto import FieldCipher, decrypt_column
from corridor.core.errors import ConfigErrors
from corridor.core.model import Lineage, RawMessage
from corridor.core.pipeline import HEADERS_COLUMN, KEY_COLUMN, TIMESTAMP_COLUMN, process
from corridor.core.plan import build_plan
from corridor.core.policy.key import KEY_FIELD, allowed_headers, key_column, outgoing_keys
from corridor.core.policy.transform import TransformContext
from corridor.core.policy.values import pseudonym
from corridor.dev.sample import encode, generate_rows
from tests.unit.config_fixtures import HEAD, HK_EU, load_text
from tests.unit.plan_fixtures import CONFIG, SECRET, data_key

DATASET = "trade.shipment"
NON_UTF8 = b"\xff\xfe\x00id"
KEYS: list[bytes | None] = [b"D198418(7)", None, NON_UTF8, b"D198418(7)", b""]


def _ctx(corridor: str = "hk-eu") -> TransformContext:
    from corridor.dev.sample import _schema

    return TransformContext(corridor=corridor, dataset=DATASET, schema=_schema(DATASET),
                            cipher=FieldCipher(data_key(corridor)), pseudonym_key=SECRET)


def test_pseudonymized_keys_are_tokens_equal_for_equal_keys_and_null_stays_null() -> None:
    out = outgoing_keys(KEYS, KeyTreatment.PSEUDONYMIZE, _ctx())
    assert out[1] is None
    assert out[0] == out[3] == pseudonym(b"D198418(7)", SECRET).encode()
    assert out[2] == pseudonym(NON_UTF8, SECRET).encode()  # not UTF-8: its bytes are hashed
    assert out[4] == pseudonym(b"", SECRET).encode()
    assert all(k is None or b"D198418" not in k for k in out)
    assert len({out[0], out[2], out[4]}) == 3


def test_key_token_joins_with_the_same_string_pseudonymized_in_a_field() -> None:
    from corridor.core.policy.values import pseudonymize_column

    field = pseudonymize_column(pa.array(["D198418(7)"]), SECRET).to_pylist()[0]
    assert outgoing_keys([b"D198418(7)"], KeyTreatment.PSEUDONYMIZE, _ctx())[0] == field.encode()


def test_encrypted_keys_are_deterministic_and_decrypt_back() -> None:
    ctx = _ctx()
    out = outgoing_keys(KEYS, KeyTreatment.ENCRYPT_DETERMINISTIC, ctx)
    assert out[1] is None and out[0] == out[3] and out[0] != out[2]
    assert all(k is None or b"D198418" not in k for k in out)
    back = decrypt_column(pa.array(out, pa.binary()), pa.binary(), corridor="hk-eu",
                          dataset=DATASET, field=KEY_FIELD,
                          keys={ctx.cipher.key_id: data_key("hk-eu")})  # type: ignore[union-attr]
    assert back.to_pylist() == KEYS


def test_drop_and_keep() -> None:
    assert outgoing_keys(KEYS, KeyTreatment.DROP, _ctx()) == [None] * len(KEYS)
    assert outgoing_keys(KEYS, KeyTreatment.KEEP, _ctx()) == KEYS
    assert key_column([None, None], KeyTreatment.PSEUDONYMIZE, _ctx()).to_pylist() == [None] * 2


def test_headers_allow_list_never_lets_a_corridor_header_through() -> None:
    park = (("traceparent", b"00-abc-def-01"), ("x-user-email", b"a@b.example"),
            ("corridor-legal-basis", b"forged"), ("Corridor-Policy", b"forged"))
    allowed = frozenset({"traceparent", "corridor-legal-basis", "Corridor-Policy"})
    assert allowed_headers(park, allowed) == [("traceparent", b"00-abc-def-01")]
    assert allowed_headers(park, frozenset()) == []
    assert allowed_headers(None, allowed) == []


# --- through the pipeline, both formats ------------------------------------------------

HEADERED = CONFIG.replace(
    "    admit: [normal]\n    withhold: \"consent == false or category == 'strategic'\"",
    "    admit: [normal]\n    headers: [traceparent]\n"
    "    withhold: \"consent == false or category == 'strategic'\"",
).replace("    key: encrypt-deterministic\n", "    key: encrypt-deterministic\n"
          "    headers: [traceparent]\n")


@pytest.fixture(scope="module")
def config(tmp_path_factory: pytest.TempPathFactory) -> Config:
    return load_text(tmp_path_factory.mktemp("keys"), HEADERED)


def _messages(topic: str) -> list[RawMessage]:
    from corridor.dev.sample import _schema

    schema = _schema(DATASET)
    rows = generate_rows(DATASET, len(KEYS), seed=5, withheld_share=0.0)
    park = (("traceparent", b"00-trace-01"), ("x-user-email", b"a@b.example"),
            ("corridor-legal-basis", b"forged"))
    return [RawMessage(Lineage(topic, 2, 10 + i), encode(dict(r, consent=True,
                                                              category="general"), schema),
                       k, 1_600_000_000_000 + i, park)
            for i, (r, k) in enumerate(zip(rows, KEYS, strict=True))]


def test_avro_records_carry_key_timestamp_and_allowed_headers_only(config: Config) -> None:
    plan = build_plan(config, "hk-eu", FieldCipher(data_key("hk-eu")), SECRET)
    dp = plan.datasets[DATASET]
    msgs = _messages(dp.source_topic)
    result = process(msgs, plan, dp, 0)
    result.check()
    assert len(result.delivered) == len(msgs)
    key = plan.pseudonym_key.reveal()  # type: ignore[union-attr]
    for m, d in zip(msgs, result.delivered, strict=True):
        assert d.key == (None if m.key is None else pseudonym(m.key, key).encode())
        assert d.timestamp == m.timestamp_ms
        names = [n for n, _ in d.headers]
        assert ("traceparent", b"00-trace-01") in d.headers
        assert "x-user-email" not in names
        assert names.count("corridor-legal-basis") == 1
        assert dict(d.headers)["corridor-legal-basis"] == b"DEPA"
    assert dp.egress.raw["corridor.key"] == {"class": "personal", "treatment": "pseudonymize"}


def test_arrow_batches_carry_each_rows_key_timestamp_and_headers(config: Config) -> None:
    plan = build_plan(config, "hk-asean", FieldCipher(data_key("hk-asean")), SECRET)
    dp = plan.datasets[DATASET]
    assert dp.key is KeyTreatment.ENCRYPT_DETERMINISTIC
    msgs = _messages(dp.source_topic)
    result = process(msgs, plan, dp, 0)
    [delivery] = result.delivered
    assert delivery.timestamp == max(m.timestamp_ms for m in msgs)  # type: ignore[type-var]
    assert delivery.key == f"{dp.source_topic}/2".encode()
    batch = from_ipc(delivery.value)
    assert batch.schema.metadata[b"corridor.key"] == b"encrypt-deterministic"
    stamps = batch.column(TIMESTAMP_COLUMN).cast(pa.int64()).to_pylist()
    assert stamps == [m.timestamp_ms for m in msgs]
    keys = batch.column(KEY_COLUMN)
    assert keys.to_pylist()[1] is None and NON_UTF8 not in keys.to_pylist()
    back = decrypt_column(keys, pa.binary(), corridor="hk-asean", dataset=DATASET,
                          field=KEY_FIELD, keys={plan.cipher.key_id: data_key("hk-asean")})  # type: ignore[union-attr]
    assert back.to_pylist() == KEYS
    headers = batch.column(HEADERS_COLUMN).to_pylist()
    assert headers == [[{"name": "traceparent", "value": b"00-trace-01"}]] * len(msgs)


def test_arrow_rows_without_headers_allowed_have_no_headers_column(tmp_path: Path) -> None:
    plan = build_plan(load_text(tmp_path, CONFIG), "hk-asean", FieldCipher(data_key("hk-asean")),
                      SECRET)
    dp = plan.datasets[DATASET]
    [delivery] = process(_messages(dp.source_topic), plan, dp, 0).delivered
    assert HEADERS_COLUMN not in from_ipc(delivery.value).schema.names


# --- the corridor file ------------------------------------------------------------------

BASE = HEAD + """\
    fields: {national_id: sensitive}
KEYCLASS
""" + HK_EU + """\
    transform: {national_id: drop}
TREATMENT
"""


def _load(tmp_path: Path, keyclass: str = "", treatment: str = "") -> Config:
    return load_text(tmp_path,
                     BASE.replace("KEYCLASS\n", keyclass).replace("TREATMENT\n", treatment))


def _errors(tmp_path: Path, keyclass: str = "", treatment: str = "") -> list[str]:
    with pytest.raises(ConfigErrors) as info:
        _load(tmp_path, keyclass, treatment)
    return [e.render() for e in info.value.errors]


def test_undeclared_key_is_personal_and_pseudonymized_by_default(tmp_path: Path) -> None:
    corridor = _load(tmp_path).corridors["hk-eu"]
    assert corridor.key_treatment(DATASET) is KeyTreatment.PSEUDONYMIZE


def test_keep_of_an_undeclared_or_personal_key_is_refused_with_its_line(tmp_path: Path) -> None:
    [error] = _errors(tmp_path, treatment="    key: keep\n")
    line = BASE.splitlines().index("TREATMENT") + 1 - 1  # KEYCLASS line removed above it
    assert f":{line}:" in error and "corridors.hk-eu.key" in error and "leak" in error
    [error] = _errors(tmp_path, "    key: {class: sensitive}\n", "    key: keep\n")
    assert "sensitive key" in error


def test_keep_of_a_public_key_and_per_dataset_override(tmp_path: Path) -> None:
    config = _load(tmp_path, "    key: {class: internal}\n", "    key: keep\n")
    assert config.corridors["hk-eu"].key_treatment(DATASET) is KeyTreatment.KEEP
    override = BASE.replace("KEYCLASS\n", "").replace(
        "    datasets: [trade.shipment]\n", "    datasets:\n      trade.shipment: {key: drop}\n"
    ).replace("TREATMENT\n", "    key: encrypt-deterministic\n")
    overridden = load_text(tmp_path, override, "override.yaml").corridors["hk-eu"]
    assert overridden.key_treatment(DATASET) is KeyTreatment.DROP


def test_bad_key_class_treatment_and_reserved_headers_are_refused(tmp_path: Path) -> None:
    assert "bad key class 'secret'" in _errors(tmp_path, "    key: {class: secret}\n")[0]
    assert "unknown key treatment 'hash'" in _errors(tmp_path, treatment="    key: hash\n")[0]
    [error] = _errors(tmp_path, treatment="    headers: [traceparent, corridor-legal-basis]\n")
    assert "corridors.hk-eu.headers" in error and "reserved" in error


def test_key_treatment_changes_the_policy_hash(tmp_path: Path) -> None:
    a = _load(tmp_path).corridors["hk-eu"].policy_hash
    b = _load(tmp_path, treatment="    key: drop\n").corridors["hk-eu"].policy_hash
    c = _load(tmp_path, treatment="    headers: [traceparent]\n").corridors["hk-eu"].policy_hash
    assert len({a, b, c}) == 3
