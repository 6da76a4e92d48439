"""The bench's world: a throwaway corridor file on the local clusters, and its seeded data.

Every run gets fresh zone names (``b<tag>`` for the Avro source, ``a<tag>`` for
the Arrow source, both on hk's cluster; one destination zone per corridor on
eu's), so each system reads the same records but writes to its own topics, and
nothing of an earlier run is in the way. The records are ``corridor.dev.sample``'s
trade.shipment rows, seeded, with the description lengthened so a value is
about 300 bytes (the issue's workload); the Arrow source holds the same rows
as Arrow IPC batches sized by bytes.
"""

from __future__ import annotations

import random
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from confluent_kafka import KafkaException

from corridor.core import topics
from corridor.core.codec import decode_avro
from corridor.core.codec.arrow_batches import ipc_messages
from corridor.core.config import Config, load_config
from corridor.core.schema import AvroSchema, SchemaStore, load_schema
from corridor.dev.sample import SCHEMAS, encode, generate_rows
from corridor.kafka import admin as kadmin
from corridor.kafka.clients import Endpoint, admin_client
from corridor.kafka.io import PlainProducer
from corridor.keys.local import LocalKekProvider
from corridor.zones.credentials import Principal

DATASET = "trade.shipment"
PARTITIONS = 6
CHUNK = 20_000
ARROW_BATCH_BYTES = 1 << 20  # a park's Arrow message: ~1 MiB, well under the 8 MiB topic limit
WORDS = ("steel", "coils", "cotton", "yarn", "machine", "parts", "frozen", "prawns", "lithium",
         "cells", "copper", "wire", "rubber", "gloves", "solar", "panels", "ceramic", "tiles")

TEMPLATE = """\
zones:
{zones}
datasets:
  trade.shipment:
    schema: {schema}
    fields: {{contact_name: personal, contact_email: personal, national_id: sensitive,
              declarant: internal, category: public}}
    validate: ["declared_value >= 0"]
corridors:
{corridors}
"""
CORRIDOR = """\
  {name}:
    from: {origin}
    to: {dest}
    datasets: [trade.shipment]
    legal_basis: BENCH
    format: {fmt}
    withhold: "consent == false or category == 'strategic'"
    transform: {{contact_name: pseudonymize, national_id: drop, contact_email: encrypt,
                declarant: encrypt}}
    batch: {{max_records: {batch}, max_wait_ms: 100}}
"""
ZONE = '  {name}: {{bootstrap: "{bootstrap}", jurisdiction: {j}, keys: {{provider: local, path: "{keys}"}}}}'


@dataclass(frozen=True)
class BenchEnv:
    """One run's corridor file and names. ``corridors`` maps a system name to its corridor."""

    tag: str
    folder: Path
    config: Config
    avro_zone: str
    arrow_zone: str
    corridors: dict[str, str]
    latency_corridors: dict[str, str]  # the same policy on an empty source, for the paced run
    origin: Endpoint
    destination: Endpoint

    @property
    def avro_topic(self) -> str:
        return topics.outbound(self.avro_zone, DATASET)

    @property
    def arrow_topic(self) -> str:
        return topics.outbound(self.arrow_zone, DATASET)

    def source_topic(self, corridor: str) -> str:
        return topics.outbound(self.config.corridors[corridor].origin, DATASET)

    def destination_topic(self, corridor: str) -> str:
        c = self.config.corridors[corridor]
        return topics.corridor_topic(c.origin, c.destination, DATASET)

    @property
    def handwritten_latency_topic(self) -> str:
        return f"bench.{self.tag}.handwritten.latency"

    @property
    def mirror_latency_topic(self) -> str:
        return f"bench.{self.tag}.mm2.latency"

    @property
    def handwritten_topic(self) -> str:
        return f"bench.{self.tag}.handwritten.{DATASET}"

    @property
    def handwritten_side(self) -> str:
        return f"bench.{self.tag}.handwritten.side"

    @property
    def mirror_topic(self) -> str:
        return f"hk.{self.avro_topic}"  # MM2's default replication policy: <source alias>.<topic>

    @property
    def mirror_latency_target(self) -> str:
        return f"hk.{self.mirror_latency_topic}"


def make_env(folder: Path, origin: Endpoint, destination: Endpoint, batch: int) -> BenchEnv:
    """Write the run's corridor file into ``folder`` and load it."""
    tag = uuid.uuid4().hex[:8]
    keys = folder / "keys"
    keys.mkdir(mode=0o700, exist_ok=True)  # key providers refuse a folder others can read
    avro_zone, arrow_zone = f"b{tag}", f"a{tag}"
    systems = {"corridor-avro": ("avro", avro_zone), "corridor-arrow": ("arrow", arrow_zone),
               "corridor-avro-2x": ("avro", avro_zone),
               "corridor-avro-metrics": ("avro", avro_zone)}
    latency = {system: (fmt, f"l{i}{tag}") for i, (system, (fmt, _)) in enumerate(systems.items())}
    origins = [avro_zone, arrow_zone, *(z for _, z in latency.values())]
    zones = [ZONE.format(name=z, bootstrap=origin.bootstrap, j="HK", keys=keys) for z in origins]
    corridors: list[str] = []
    names: list[dict[str, str]] = [{}, {}]
    for phase, plan in enumerate((systems, latency)):
        for i, (system, (fmt, source)) in enumerate(plan.items()):
            dest, name = f"d{phase}{i}{tag}", f"c{phase}{i}{tag}"
            zones.append(ZONE.format(name=dest, bootstrap=destination.bootstrap, j="EU",
                                     keys=keys))
            corridors.append(CORRIDOR.format(name=name, origin=source, dest=dest, fmt=fmt,
                                             batch=batch))
            names[phase][system] = name
    ring = LocalKekProvider(keys)
    for z in (z for z in names_of_destinations(zones)):
        ring.init(z)
    path = folder / "corridors.yaml"
    path.write_text(TEMPLATE.format(zones="\n".join(zones), corridors="".join(corridors),
                                    schema=SCHEMAS / "trade" / "shipment.avsc"))
    return BenchEnv(tag, folder, load_config(path), avro_zone, arrow_zone, names[0], names[1],
                    origin, destination)


def names_of_destinations(zones: list[str]) -> list[str]:
    """Destination zone names among the ZONE lines (they start with ``d``)."""
    return [line.split(":", 1)[0].strip() for line in zones if line.strip().startswith("d")]


def provision(env: BenchEnv, admin: Principal) -> None:
    """Every topic of the run: the corridors' (topics.topic_plan) and the hand-written loop's."""
    where = {z: (env.origin if z[0] in "abl" else env.destination) for z in env.config.zones}
    by_cluster: dict[str, list[kadmin.TopicSpec]] = {}
    seen: set[tuple[str, str]] = set()  # _corridor.* topics: once per cluster, not per zone
    for plan in topics.topic_plan(env.config, PARTITIONS):
        cluster = where[plan.zone].bootstrap
        if (cluster, plan.name) not in seen:
            seen.add((cluster, plan.name))
            by_cluster.setdefault(cluster, []).append(
                kadmin.TopicSpec(plan.name, plan.partitions, plan.config))
    by_cluster.setdefault(env.destination.bootstrap, []).append(
        kadmin.TopicSpec(env.handwritten_topic, PARTITIONS, {}))
    by_cluster.setdefault(env.origin.bootstrap, []).extend(
        kadmin.TopicSpec(t, PARTITIONS, {}) for t in (
            env.handwritten_side, env.handwritten_latency_topic, env.mirror_latency_topic))
    for endpoint in (env.origin, env.destination):
        kadmin.ensure_topics(admin_client(endpoint, admin), by_cluster[endpoint.bootstrap])


def drop(env: BenchEnv, admin: Principal) -> None:
    """Delete the run's own topics (never the shared ``_corridor.*`` ones)."""
    for endpoint in (env.origin, env.destination):
        client = admin_client(endpoint, admin)
        try:
            names = [t for t in client.list_topics(timeout=10).topics if env.tag in t]
        except KafkaException:
            continue  # the cluster is away: the run's topics stay (they are uniquely named)
        if names:
            kadmin.delete_topics(client, names)


def _lengthen(row: dict, r: random.Random) -> None:
    # sample's descriptions are short; the workload is ~300-byte values.
    row["description"] = " ".join(r.choice(WORDS) for _ in range(22))


def records(n: int, seed: int = 42, withheld_share: float = 0.1) -> Iterator[list[bytes]]:
    """Seeded single-object Avro trade.shipment values, in chunks (same seed, same bytes)."""
    schema = load_schema(SCHEMAS / "trade" / "shipment.avsc")
    done = 0
    while done < n:
        count = min(CHUNK, n - done)
        r = random.Random(seed * 1_000_003 + done)
        rows = generate_rows(schema, count, seed * 1_000_003 + done, withheld_share)
        for i, row in enumerate(rows):
            row["shipment_id"] = f"BENCH-{done + i:09d}"
            _lengthen(row, r)
        yield [encode(row, schema) for row in rows]
        done += count


def arrow_values(values: list[bytes], schema: AvroSchema) -> list[bytes]:
    """The same records as Arrow IPC messages of about ARROW_BATCH_BYTES each."""
    store = SchemaStore()
    store.add(schema)
    batch = decode_avro(values, store, schema).batch
    return ipc_messages(batch, ARROW_BATCH_BYTES)


def produce(env: BenchEnv, admin: Principal, n: int, seed: int,
            progress: Callable[[int], None]) -> tuple[int, int]:
    """Write n records to the Avro source and the same rows to the Arrow source.

    Records go to the partitions round robin (the hand-written loop and MM2 keep
    them); each Avro record is keyed by a person id (100,000 people), as a park
    keying by the person does. Returns (avro bytes, arrow bytes) written.
    """
    schema = load_schema(SCHEMAS / "trade" / "shipment.avsc")
    out = PlainProducer(env.origin, admin, {"linger.ms": 50, "batch.size": 1_000_000,
                                            "message.max.bytes": 8 * 1024 * 1024})
    avro_bytes = arrow_bytes = 0
    sent = 0
    for chunk in records(n, seed):
        for i, value in enumerate(chunk):
            person = f"P{(sent + i) * 7919 % 100_000:06d}".encode()
            out.produce(env.avro_topic, value, person, partition=(sent + i) % PARTITIONS)
            avro_bytes += len(value)
        for p in range(PARTITIONS):
            for message in arrow_values(chunk[p::PARTITIONS], schema):
                out.produce(env.arrow_topic, message, None, partition=p)
                arrow_bytes += len(message)
        sent += len(chunk)
        progress(len(chunk))
    out.flush(300)
    return avro_bytes, arrow_bytes
