"""What the Kafka Connect worker and the Debezium PostgreSQL connector are given. Pure.

A ``Capture`` is one table captured into one park topic; ``worker_properties`` and
``connector_properties`` render it, ``properties_text`` writes a Java properties file.

The shape of what reaches ``<zone>.outbound.<dataset>`` (the park topic), one Kafka record
per change:

- insert and update (and each row of the initial snapshot): the row after the change,
  as one JSON object without a schema envelope (``ExtractNewRecordState``, then
  ``JsonConverter`` with ``schemas.enable=false``): the corridor decodes it with the
  dataset's schema like any JSON record (``corridor.core.codec.json_decode``). Numeric
  columns arrive as decimal strings (``decimal.handling.mode=string``: exact, which the JSON
  dialect reads into a decimal field), ``timestamptz`` as ISO-8601 with an offset;
- delete: one Kafka tombstone (key kept, null value), nothing else
  (``delete.tombstone.handling.mode=delete-to-tombstone``, ``tombstones.on.delete=false``;
  mode ``tombstone`` keeps the row's value schema on the null value, which
  ``JsonConverter`` writes as the four bytes ``null``: a record, not a tombstone);
- the key: the key column's value as text (``ExtractField$Key`` + ``StringConverter``), so
  the corridor's key policy treats it like a file source's ``--key-field``.

Debezium names its topic ``<topic.prefix>.<schema>.<table>``; ``RegexRouter`` renames it to
the park topic. The worker is standalone: its source offsets (the PostgreSQL log position
Debezium has confirmed) live in a file, so the park's principal needs nothing beyond
writing its own topic (no Connect internal topics, no group, no transactional id). The
price is at-least-once: after a crash the changes since the last offset flush are sent
again (repeated full rows, the same values).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from corridor.core.topics import outbound

CONNECTOR_CLASS = "io.debezium.connector.postgresql.PostgresConnector"
OFFSET_FLUSH_MS = 1000
_SLOT_CHARS = re.compile(r"[^a-z0-9_]")


@dataclass(frozen=True, slots=True)
class Capture:
    """One PostgreSQL table captured into ``<zone>.outbound.<dataset>`` by job ``name``.

    ``table`` is ``schema.table``; ``key_column`` the column that keys each record (the
    table's primary key, or the person it is about); ``database`` the PostgreSQL
    connection (``connectors.debezium.postgres.Connection``-like: host, port, database,
    user, password); ``create_publication``: False when the publication exists already
    (made by ``LocalPostgres.capture_table`` or a DBA), True to let Debezium create it.
    """

    zone: str
    dataset: str
    table: str
    key_column: str
    database: Any
    name: str = "cdc"
    create_publication: bool = False

    @property
    def topic(self) -> str:
        return outbound(self.zone, self.dataset)

    @property
    def connector_name(self) -> str:
        return f"corridor-{self.zone}-{self.dataset}-{self.name}"

    @property
    def slot(self) -> str:
        """The replication slot (and publication) name: PostgreSQL allows [a-z0-9_], 63 chars."""
        raw = f"corridor_{self.zone}_{self.dataset}_{self.name}".lower()
        return _SLOT_CHARS.sub("_", raw)[:63]

    @property
    def topic_prefix(self) -> str:
        return self.slot

    @property
    def debezium_topic(self) -> str:
        return f"{self.topic_prefix}.{self.table}"


def kafka_client_properties(librdkafka: Mapping[str, Any]) -> dict[str, str]:
    """Java client properties equal to a librdkafka config of
    ``corridor.kafka.clients.client_config`` (so one function decides the security of
    every client): SASL/SCRAM as a JAAS line, the CA as a PEM trust store (KIP-651)."""
    out = {"bootstrap.servers": str(librdkafka["bootstrap.servers"]),
           "security.protocol": str(librdkafka["security.protocol"])}
    if "sasl.mechanism" in librdkafka:
        user = _jaas_quoted(str(librdkafka["sasl.username"]))
        password = _jaas_quoted(str(librdkafka["sasl.password"]))
        out["sasl.mechanism"] = str(librdkafka["sasl.mechanism"])
        out["sasl.jaas.config"] = ("org.apache.kafka.common.security.scram.ScramLoginModule "
                                   f'required username="{user}" password="{password}";')
    if "ssl.ca.location" in librdkafka:
        out["ssl.truststore.type"] = "PEM"
        out["ssl.truststore.location"] = str(librdkafka["ssl.ca.location"])
        out["ssl.endpoint.identification.algorithm"] = str(
            librdkafka.get("ssl.endpoint.identification.algorithm", "https"))
    return out


def worker_properties(client: Mapping[str, str], folder: Path, plugins: Path,
                      rest_port: int) -> dict[str, str]:
    """A standalone worker: ``client`` (``kafka_client_properties``) for its own admin
    client and, prefixed ``producer.``, for the source task's producer (Connect does not
    pass the top-level security settings to producers)."""
    props = dict(client)
    props.update({f"producer.{k}": v for k, v in client.items() if k != "bootstrap.servers"})
    props.update({
        "key.converter": "org.apache.kafka.connect.storage.StringConverter",
        "value.converter": "org.apache.kafka.connect.json.JsonConverter",
        "value.converter.schemas.enable": "false",
        "offset.storage.file.filename": str(folder / "offsets.dat"),
        "offset.flush.interval.ms": str(OFFSET_FLUSH_MS),
        "plugin.path": str(plugins),
        "plugin.discovery": "service_load",
        "listeners": f"http://127.0.0.1:{rest_port}",
        "producer.acks": "all",
        "producer.linger.ms": "10",
        "producer.batch.size": "262144",
        "producer.compression.type": "lz4",
    })
    return props


def connector_properties(capture: Capture) -> dict[str, str]:
    """The Debezium PostgreSQL connector of ``capture`` (module docstring: what it emits)."""
    db = capture.database
    return {
        "name": capture.connector_name,
        "connector.class": CONNECTOR_CLASS,
        "tasks.max": "1",
        "plugin.name": "pgoutput",
        "database.hostname": db.host,
        "database.port": str(db.port),
        "database.dbname": db.database,
        "database.user": db.user,
        "database.password": db.password,
        "topic.prefix": capture.topic_prefix,
        "table.include.list": capture.table,
        "slot.name": capture.slot,
        "publication.name": capture.slot,
        "publication.autocreate.mode": "filtered" if capture.create_publication else "disabled",
        "snapshot.mode": "initial",
        "decimal.handling.mode": "string",
        # Larger hand-overs from the log reader to Connect than the defaults (2048, 8192, 500 ms).
        "max.batch.size": "8192",
        "max.queue.size": "32768",
        "poll.interval.ms": "100",
        "tombstones.on.delete": "false",
        "transforms": "unwrap,key,route",
        "transforms.unwrap.type": "io.debezium.transforms.ExtractNewRecordState",
        "transforms.unwrap.delete.tombstone.handling.mode": "delete-to-tombstone",
        "transforms.key.type": "org.apache.kafka.connect.transforms.ExtractField$Key",
        "transforms.key.field": capture.key_column,
        "transforms.route.type": "org.apache.kafka.connect.transforms.RegexRouter",
        "transforms.route.regex": re.escape(capture.debezium_topic),
        "transforms.route.replacement": capture.topic,
    }


def properties_text(props: Mapping[str, str]) -> str:
    """A Java properties file (java.util.Properties.load reads back exactly ``props``)."""
    return "".join(f"{_escape(k, key=True)}={_escape(v, key=False)}\n" for k, v in props.items())


def _escape(text: str, key: bool) -> str:
    out = []
    for i, ch in enumerate(text):
        if ch == "\\":
            out.append("\\\\")
        elif ch in "\n\r\t\f":
            out.append({"\n": "\\n", "\r": "\\r", "\t": "\\t", "\f": "\\f"}[ch])
        elif ch in "=:#!" and (key or i == 0):
            out.append("\\" + ch)
        elif ch == " " and (key or i == 0):
            out.append("\\ ")
        elif ord(ch) > 0x7E:  # read as ISO-8859-1: \uXXXX per UTF-16 unit
            units = ch.encode("utf-16-be")
            out += [f"\\u{units[j] << 8 | units[j + 1]:04x}" for j in range(0, len(units), 2)]
        else:
            out.append(ch)
    return "".join(out)


def _jaas_quoted(text: str) -> str:
    return text.replace("\\", "\\\\").replace('"', '\\"')
