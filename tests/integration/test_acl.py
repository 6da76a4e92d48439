"""Least rights on real brokers: each principal does its job, and nothing else.

A throwaway file (unique zones, like corridor_env.make_corridor, with two origin
zones and two datasets so that "another park" and "another corridor" exist) is
provisioned with `provision --acls` logic into a private credentials file.
Every denial is asserted as the specific Kafka error code, and recorded for the
`make chaos` report (tests/integration/denials.py).
"""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, KafkaException, Producer

from corridor.core import acl, topics
from corridor.core.config import Config, load_config
from corridor.core.topics import topic_plan
from corridor.dev.sample import generate_records
from corridor.kafka import admin as kadmin
from corridor.kafka.acl_sync import drop_principals, sync_acls
from corridor.kafka.clients import client_config
from corridor.kafka.io import read_to_end
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.sdk import CorridorConsumer
from corridor.zones.credentials import Credentials, Principal, Secret, load_or_create_credentials

from .corridor_env import REPO
from .denials import Denial, record_denials
from .processor_env import Processor

pytestmark = pytest.mark.integration

TEMPLATE = """\
zones:
  {o1}: {{bootstrap: "{hk}", jurisdiction: HK, keys: {{provider: local, path: "{keys}"}}}}
  {o2}: {{bootstrap: "{hk}", jurisdiction: HK, keys: {{provider: local, path: "{keys}"}}}}
  {d}: {{bootstrap: "{eu}", jurisdiction: EU, keys: {{provider: local, path: "{keys}"}}}}
datasets:
  trade.shipment:
    schema: {repo}/schemas/trade/shipment.avsc
    fields: {{contact_email: personal, national_id: sensitive}}
  ecommerce.order:
    schema: {repo}/schemas/ecommerce/order.avsc
    fields: {{buyer_email: personal, id_number: sensitive}}
corridors:
  {c1}:
    from: {o1}
    to: {d}
    datasets: [trade.shipment, ecommerce.order]
    legal_basis: TEST-BASIS
    withhold: "consent == false"
    transform: {{national_id: drop, id_number: drop, contact_email: encrypt}}
  {c2}:
    from: {o2}
    to: {d}
    datasets: [trade.shipment]
    legal_basis: TEST-BASIS
    transform: {{national_id: drop}}
"""
SHIPMENT, ORDER = "trade.shipment", "ecommerce.order"
DEADLINE_S = 30.0


class Env:
    def __init__(self, path: Path, config: Config, creds: Credentials, names: dict[str, str]):
        self.path, self.config, self.creds, self.n = path, config, creds, names

    def endpoint(self, zone: str):  # -> Endpoint
        return zone_endpoint(self.config, self.n[zone])

    def who(self, name: str) -> Principal:
        return self.creds.get(name)


def _private_credentials(path: Path, admin: Principal) -> Credentials:
    """A credentials file of our own (0600) holding the real admin: test principals stay out
    of the shared one, and a processor subprocess finds them via CORRIDOR_CREDENTIALS."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(json.dumps({"admin": {"password": admin.secret}}))
    return load_or_create_credentials(path)


@pytest.fixture(scope="module")
def env(zones, tmp_path_factory) -> Iterator[Env]:
    tmp = tmp_path_factory.mktemp("acl")
    tag = uuid.uuid4().hex[:6]
    names = {"o1": f"p{tag}", "o2": f"q{tag}", "d": f"r{tag}", "c1": f"a{tag}",
             "c2": f"b{tag}"}
    path = tmp / "corridors.yaml"
    path.write_text(TEMPLATE.format(**names, keys=tmp / "keys", repo=REPO,
                                    hk=zones.endpoint("hk").bootstrap,
                                    eu=zones.endpoint("eu").bootstrap))
    config = load_config(path)
    creds = _private_credentials(tmp / "credentials.json", zones.credentials.admin)
    cluster = {names["o1"]: "hk", names["o2"]: "hk", names["d"]: "eu"}
    plans = topic_plan(config, 2)
    for plan in plans:
        kadmin.ensure_topics(zones.admin(cluster[plan.zone]),
                             [kadmin.TopicSpec(plan.name, plan.partitions, plan.config)])
    LocalKekProvider(tmp / "keys").init(names["d"])
    endpoints = {z: zone_endpoint(config, z) for z in config.zones}
    first = sync_acls(config, endpoints, creds)
    assert sum(len(g) for g in first.added.values()) == len(acl.grants(config))
    yield Env(path, config, creds, names)
    drop_principals(config, endpoints, creds)
    for plan in plans:
        if not plan.name.startswith("_corridor.") or plan.name.startswith(
                (topics.OFFSETS + ".", topics.released_topic(""))):
            kadmin.delete_topics(zones.admin(cluster[plan.zone]), [plan.name])


@pytest.fixture(scope="module")
def denials() -> Iterator[list[Denial]]:
    seen: list[Denial] = []
    yield seen
    record_denials("test_acl", seen)


def _deny(denials: list[Denial], who: str, action: str, expected: int, actual: int | None) -> None:
    name = KafkaError(expected).name()
    got = KafkaError(actual).name() if actual is not None else "no error"
    assert actual == expected, f"{who} {action}: expected {name}, got {got}"
    denials.append(Denial(who, action, name))


def _produce_error(env: Env, zone: str, principal: Principal, topic: str,
                   **settings: object) -> int | None:
    """Code of the delivery error of one record (None when it was written)."""
    errors: list[KafkaError] = []
    producer = Producer(client_config(env.endpoint(zone), principal, {
        "enable.idempotence": True, "acks": "all", "message.timeout.ms": 20000,
        "log_level": 0, **settings}))
    producer.produce(topic, b"x", on_delivery=lambda err, _m: err and errors.append(err))
    assert producer.flush(DEADLINE_S) == 0
    return errors[0].code() if errors else None


def _consume_error(env: Env, zone: str, principal: Principal, topic: str,
                   group: str) -> int | None:
    """First consumer error code while subscribing to ``topic`` in ``group``."""
    consumer = Consumer(client_config(env.endpoint(zone), principal, {
        "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "log_level": 0}))
    consumer.subscribe([topic])
    try:
        deadline = time.monotonic() + DEADLINE_S
        while time.monotonic() < deadline:
            for msg in consumer.consume(10, timeout=0.5):
                if msg.error() is not None:
                    return msg.error().code()
        return None
    finally:
        consumer.close()


def _metadata_error(env: Env, zone: str, principal: Principal, topic: str) -> int | None:
    """The topic's error in a metadata response: what a reader learns before any fetch."""
    consumer = Consumer(client_config(env.endpoint(zone), principal, {
        "group.id": f"unused-{uuid.uuid4().hex[:6]}", "log_level": 0}))
    try:
        meta = consumer.list_topics(topic, timeout=DEADLINE_S).topics[topic]
        return meta.error.code() if meta.error is not None else None
    finally:
        consumer.close()


def test_provision_acls_is_idempotent(env):
    again = sync_acls(env.config, {z: zone_endpoint(env.config, z) for z in env.config.zones},
                      env.creds)
    assert again.empty, again


def test_parks_write_only_their_own_topic(env, denials):
    n = env.n
    park = acl.park_principal(n["o1"], SHIPMENT)
    me = env.who(park)
    assert _produce_error(env, "o1", me, topics.outbound(n["o1"], SHIPMENT)) is None
    denied = KafkaError.TOPIC_AUTHORIZATION_FAILED
    for action, zone, topic in [
        ("write another park's topic", "o1", topics.outbound(n["o1"], ORDER)),
        ("write another zone's park topic", "o2", topics.outbound(n["o2"], SHIPMENT)),
        ("write its corridor's topic in the destination", "d",
         topics.corridor_topic(n["o1"], n["d"], SHIPMENT)),
        ("write the withheld topic", "o1", f"{n['o1']}.withheld.{n['c1']}"),
    ]:
        _deny(denials, park, action, denied, _produce_error(env, zone, me, topic))


def test_analytics_read_their_corridor_topics_only(env, denials):
    n = env.n
    who = acl.analytics_principal(n["d"])
    me = env.who(who)
    topic_denied = KafkaError.TOPIC_AUTHORIZATION_FAILED
    for action, zone, topic in [
        ("read withheld", "o1", f"{n['o1']}.withheld.{n['c1']}"),
        ("read quarantine", "o1", f"{n['o1']}.quarantine.{n['c1']}"),
        ("read audit", "o1", topics.audit(n["o1"])),
        ("read the source (park) topic", "o1", topics.outbound(n["o1"], SHIPMENT)),
        ("read internal _corridor.offsets", "d", topics.offsets_topic(n["c1"])),
    ]:
        _deny(denials, who, f"see {action.split(' ', 1)[1]} (metadata)", topic_denied,
              _metadata_error(env, zone, me, topic))
    # Subscribing in the origin, where it has no group either: the group is refused first.
    _deny(denials, who, "consume withheld in a consumer group", KafkaError.GROUP_AUTHORIZATION_FAILED,
          _consume_error(env, "o1", me, f"{n['o1']}.withheld.{n['c1']}", f"{who}-x"))
    # In its own zone, in an allowed group: the topic is refused.
    _deny(denials, who, "consume _corridor.offsets in its own group", topic_denied,
          _consume_error(env, "d", me, topics.offsets_topic(n["c1"]),
                         f"{who}-{uuid.uuid4().hex[:6]}"))
    # Its own topic, but in the processor's consumer group: the group is refused.
    _deny(denials, who, "join the processor's consumer group", KafkaError.GROUP_AUTHORIZATION_FAILED,
          _consume_error(env, "d", me, topics.corridor_topic(n["o1"], n["d"], SHIPMENT),
                         acl.consumer_group(n["c1"])))


def test_processor_cannot_write_or_fence_another_corridor(env, denials):
    n = env.n
    who = acl.corridor_principal(n["c2"])
    me = env.who(who)
    other = topics.corridor_topic(n["o1"], n["d"], SHIPMENT)
    own_txn = f"{acl.transactional_prefix(n['c2'])}test.0"
    _deny(denials, who, "write another corridor's topic", KafkaError.TOPIC_AUTHORIZATION_FAILED,
          _txn_produce_error(env, me, own_txn, other))
    # Forging another corridor's stored positions (it would skip or replay its records).
    _deny(denials, who, "write another corridor's stored offsets",
          KafkaError.TOPIC_AUTHORIZATION_FAILED,
          _txn_produce_error(env, me, own_txn, topics.offsets_topic(n["c1"])))
    with pytest.raises(KafkaException) as caught:
        producer = Producer(client_config(env.endpoint("d"), me, {
            "transactional.id": f"{acl.transactional_prefix(n['c1'])}{other}.0", "log_level": 0}))
        producer.init_transactions(DEADLINE_S)
    _deny(denials, who, "take another corridor's transactional id",
          KafkaError.TRANSACTIONAL_ID_AUTHORIZATION_FAILED, caught.value.args[0].code())
    _deny(denials, who, "read another corridor's source", KafkaError.TOPIC_AUTHORIZATION_FAILED,
          _consume_error(env, "o1", me, topics.outbound(n["o1"], SHIPMENT),
                         acl.consumer_group(n["c2"])))
    _deny(denials, who, "use another corridor's consumer group",
          KafkaError.GROUP_AUTHORIZATION_FAILED,
          _consume_error(env, "o2", me, topics.outbound(n["o2"], SHIPMENT),
                         acl.consumer_group(n["c1"])))


def _txn_produce_error(env: Env, principal: Principal, txn_id: str, topic: str) -> int | None:
    errors: list[KafkaError] = []
    producer = Producer(client_config(env.endpoint("d"), principal, {
        "transactional.id": txn_id, "log_level": 0}))
    producer.init_transactions(DEADLINE_S)
    producer.begin_transaction()
    producer.produce(topic, b"x", on_delivery=lambda err, _m: err and errors.append(err))
    try:
        producer.commit_transaction(DEADLINE_S)
    except KafkaException as exc:
        errors.append(exc.args[0])
        producer.abort_transaction(DEADLINE_S)
    return errors[0].code() if errors else None


def test_wrong_password_is_refused(env, denials):
    name = acl.park_principal(env.n["o1"], SHIPMENT)
    impostor = Principal(name, Secret(secrets.token_urlsafe(12)))
    seen: list[KafkaError] = []
    producer = Producer(client_config(env.endpoint("o1"), impostor,
                                      {"error_cb": seen.append, "log_level": 0}))
    deadline = time.monotonic() + DEADLINE_S
    while not seen and time.monotonic() < deadline:
        producer.poll(0.2)
    _deny(denials, name, "log in with a wrong password", KafkaError._AUTHENTICATION,
          seen[0].code() if seen else None)


def test_corridor_runs_end_to_end_on_least_rights(env, tmp_path):
    """The processor as corridor-<name>, parks as themselves, analytics decrypts: no admin."""
    n = env.n
    counts = {SHIPMENT: 300, ORDER: 200}
    for dataset, count in counts.items():
        park = env.who(acl.park_principal(n["o1"], dataset))
        producer = Producer(client_config(env.endpoint("o1"), park, {"enable.idempotence": True}))
        for i, value in enumerate(generate_records(env.config.datasets[dataset], count, seed=3)):
            producer.produce(topics.outbound(n["o1"], dataset), value, f"k{i}".encode())
        assert producer.flush(DEADLINE_S) == 0
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORRIDOR_CREDENTIALS", str(env.creds.path))
        proc = Processor(_as_env(env), tmp_path, "acl", "--until-caught-up", "--idle-ms", "1500")
    try:
        assert proc.wait(120) == 0, proc.log()[-3000:]
        assert "running_as_admin" not in proc.log()
    finally:
        proc.close()
    analytics = env.who(acl.analytics_principal(n["d"]))
    consumer = CorridorConsumer(env.endpoint("d"), topics.corridor_topic(n["o1"], n["d"], SHIPMENT),
                                kek_provider=LocalKekProvider(env.path.parent / "keys"),
                                principal=analytics)
    records = list(consumer.records(idle_timeout_s=3))
    assert 0 < len(records) <= counts[SHIPMENT]
    assert any("@" in (r.value.get("contact_email") or "") for r in records)  # decrypted


def test_held_release_runs_on_least_rights(env, tmp_path):
    """`corridor held release` as corridor-<name>: withheld under a rule since dropped, the
    records cross (encrypted field, markers, audit event), with no admin right."""
    n = env.n
    park = env.who(acl.park_principal(n["o1"], SHIPMENT))
    producer = Producer(client_config(env.endpoint("o1"), park, {"enable.idempotence": True}))
    for i, value in enumerate(generate_records(env.config.datasets[SHIPMENT], 60, seed=9)):
        producer.produce(topics.outbound(n["o1"], SHIPMENT), value, f"r{i}".encode())
    assert producer.flush(DEADLINE_S) == 0
    environment = {**os.environ, "CORRIDOR_CREDENTIALS": str(env.creds.path),
                   "CORRIDOR_HOME": str(REPO)}
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("CORRIDOR_CREDENTIALS", str(env.creds.path))
        proc = Processor(_as_env(env), tmp_path, "acl-held", "--until-caught-up",
                         "--idle-ms", "1500")
    try:
        assert proc.wait(120) == 0, proc.log()[-3000:]
    finally:
        proc.close()
    relaxed = tmp_path / "corridors.yaml"  # today's policy: the consent rule was dropped
    relaxed.write_text(env.path.read_text().replace('    withhold: "consent == false"\n', "", 1))
    done = subprocess.run([sys.executable, "-m", "corridor.cli", "held", "release", "--corridor",
                           n["c1"], "--reason", "consent rule withdrawn", "--held-reason", "withhold:",
                           "-c", str(relaxed),
                           "-o", "json"], capture_output=True, text=True, cwd=REPO,
                          env=environment, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr[-3000:]
    assert "running_as_admin" not in done.stderr
    report = json.loads(done.stdout)
    assert report["principal"] == acl.corridor_principal(n["c1"])
    assert report["crossed"] > 0 and report["crossed_by_previous"] == {
        "withheld": report["crossed"]}
    markers = list(read_to_end(env.endpoint("d"), env.who(acl.corridor_principal(n["c1"])),
                               topics.released_topic(n["c1"])))
    assert len(markers) == report["crossed"]


def _as_env(env: Env):  # the CorridorEnv shape Processor needs
    from .corridor_env import CorridorEnv

    return CorridorEnv(env.path, env.config, env.n["c1"], env.n["o1"], env.n["d"],
                       env.path.parent / "keys")


def test_parks_cannot_see_corridor_topics_in_the_destination(env, denials):
    n = env.n
    park = acl.park_principal(n["o1"], SHIPMENT)
    _deny(denials, park, "see a corridor topic in the destination (metadata)",
          KafkaError.TOPIC_AUTHORIZATION_FAILED,
          _metadata_error(env, "d", env.who(park), topics.corridor_topic(n["o1"], n["d"], SHIPMENT)))
