"""What the Kafka Connect worker and the Debezium connector are told (no JVM, no database)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from connectors.debezium.config import (
    Capture,
    connector_properties,
    kafka_client_properties,
    properties_text,
    worker_properties,
)
from connectors.debezium.postgres import Connection, table_identifier
from connectors.errors import ConnectError
from corridor.kafka.clients import Endpoint, client_config
from corridor.zones.credentials import Principal, Secret

DB = Connection("127.0.0.1", 15432, "corridor", "corridor_cdc", "pg-secret")
PARK = Principal("park-hk-crm.customer", Secret('p"w\\d'))


def capture(**changes: object) -> Capture:
    fields: dict[str, object] = {"zone": "hk", "dataset": "crm.customer",
                                 "table": "public.customer", "key_column": "customer_id",
                                 "database": DB}
    fields.update(changes)
    return Capture(**fields)  # type: ignore[arg-type]


def load_properties(text: str) -> dict[str, str]:
    """java.util.Properties.load for what properties_text writes (one entry per line)."""
    out = {}
    for line in text.splitlines():
        key, value = re.match(r"((?:[^=\\]|\\.)*)=(.*)$", line).groups()  # type: ignore[union-attr]
        out[_unescape(key)] = _unescape(value)
    return out


def _unescape(text: str) -> str:
    text = re.sub(r"\\u([0-9a-f]{4})", lambda m: chr(int(m.group(1), 16)), text)
    text = text.encode("utf-16", "surrogatepass").decode("utf-16")
    plain = {"n": "\n", "r": "\r", "t": "\t", "f": "\f"}
    return re.sub(r"\\(.)", lambda m: plain.get(m.group(1), m.group(1)), text)


def test_rows_land_in_the_park_topic_as_plain_json_keyed_by_the_column():
    props = connector_properties(capture())
    assert props["connector.class"] == "io.debezium.connector.postgresql.PostgresConnector"
    assert props["plugin.name"] == "pgoutput"
    assert props["table.include.list"] == "public.customer"
    # RegexRouter: Debezium's <prefix>.<schema>.<table> becomes the park topic, nothing else.
    regex = re.compile(props["transforms.route.regex"])
    assert regex.fullmatch("corridor_hk_crm_customer_cdc.public.customer")
    assert not regex.fullmatch("corridor_hk_crm_customer_cdcXpublic.customer")
    assert props["transforms.route.replacement"] == "hk.outbound.crm.customer"
    assert props["transforms"] == "unwrap,key,route"
    assert props["transforms.unwrap.type"] == "io.debezium.transforms.ExtractNewRecordState"
    # A delete: one real tombstone (null value and schema), not Debezium's delete event.
    assert props["transforms.unwrap.delete.tombstone.handling.mode"] == "delete-to-tombstone"
    assert props["tombstones.on.delete"] == "false"
    assert props["transforms.key.field"] == "customer_id"
    assert props["decimal.handling.mode"] == "string"  # exact decimals for the JSON dialect
    assert props["publication.autocreate.mode"] == "disabled"
    assert connector_properties(capture(create_publication=True))[
        "publication.autocreate.mode"] == "filtered"


def test_slot_and_publication_names_fit_postgresql():
    long = capture(dataset="a.very.long.dataset.name.that.goes.on", name="x" * 40)
    for c in (capture(), long):
        assert re.fullmatch(r"[a-z0-9_]{1,63}", c.slot), c.slot
        assert connector_properties(c)["publication.name"] == c.slot
    assert capture().slot == "corridor_hk_crm_customer_cdc"
    assert capture(name="b").slot != capture().slot


def test_worker_uses_the_park_principal_for_its_producer_and_file_offsets(tmp_path: Path):
    librdkafka = client_config(Endpoint("hk", "127.0.0.1:19092", "SASL_PLAINTEXT"), PARK)
    client = kafka_client_properties(librdkafka)
    assert client["sasl.mechanism"] == "SCRAM-SHA-512"
    assert client["sasl.jaas.config"] == (
        "org.apache.kafka.common.security.scram.ScramLoginModule required "
        'username="park-hk-crm.customer" password="p\\"w\\\\d";')
    props = worker_properties(client, tmp_path, tmp_path / "plugins", 18083)
    for key in ("security.protocol", "sasl.mechanism", "sasl.jaas.config"):
        assert props[f"producer.{key}"] == props[key]  # Connect does not pass them down
    assert props["offset.storage.file.filename"] == str(tmp_path / "offsets.dat")
    assert props["value.converter"] == "org.apache.kafka.connect.json.JsonConverter"
    assert props["value.converter.schemas.enable"] == "false"
    assert props["key.converter"] == "org.apache.kafka.connect.storage.StringConverter"
    assert props["listeners"] == "http://127.0.0.1:18083"
    assert not any(k.startswith(("config.storage", "status.storage", "group.id")) for k in props)


def test_tls_trusts_the_zone_ca_as_a_pem_trust_store(tmp_path: Path):
    librdkafka = client_config(Endpoint("hk", "h:1", "SASL_SSL", ca_location="/ca.pem"), PARK)
    client = kafka_client_properties(librdkafka)
    assert client["security.protocol"] == "SASL_SSL"
    assert (client["ssl.truststore.type"], client["ssl.truststore.location"]) == ("PEM", "/ca.pem")
    assert client["ssl.endpoint.identification.algorithm"] == "https"


def test_properties_text_reads_back_as_written():
    props = {"a key": "v=1:2", "regex": r"corridor_hk\.public\.customer", "lead": " x",
             "nl": "a\nb", "accents": "héllo ✓ 😀", "#comment": "!bang"}
    assert load_properties(properties_text(props)) == props
    assert properties_text(connector_properties(capture())).count("\n") == len(
        connector_properties(capture()))


def test_passwords_are_not_in_reprs():
    assert "pg-secret" not in repr(DB)
    assert "p\"w" not in repr(PARK)


@pytest.mark.parametrize("name, expected", [("customer", "public.customer"),
                                            ("crm.customer_v2", "crm.customer_v2")])
def test_table_names(name: str, expected: str):
    assert table_identifier(name) == expected


@pytest.mark.parametrize("bad", ["Customer", "a;drop table x", "a.b.c", "", "1abc"])
def test_table_names_that_could_be_sql_are_refused(bad: str):
    with pytest.raises(ConnectError):
        table_identifier(bad)
