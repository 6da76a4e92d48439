"""Each zone is a real, secured Kafka cluster: SCRAM principals, ACLs, default deny."""

from __future__ import annotations

import secrets
import time
import uuid

import pytest
from confluent_kafka import Consumer, KafkaError, Producer

from corridor.kafka import admin as kadmin
from corridor.kafka.clients import client_config
from corridor.zones.credentials import Principal, Secret

pytestmark = pytest.mark.integration

ZONES = ["hk", "eu", "asean"]


def _principal(zones, zone: str, prefix: str) -> Principal:
    principal = Principal(f"{prefix}-{uuid.uuid4().hex[:8]}", Secret(secrets.token_urlsafe(16)))
    kadmin.upsert_user(zones.admin(zone), principal.username, principal.secret)
    return principal


def _produce(zones, zone: str, principal: Principal, topic: str, count: int) -> list[KafkaError]:
    errors: list[KafkaError] = []

    def on_delivery(err, _msg):
        if err is not None:
            errors.append(err)

    conf = client_config(zones.endpoint(zone), principal, {"linger.ms": 5, "message.timeout.ms": 20000})
    producer = Producer(conf)
    for i in range(count):
        producer.produce(topic, key=str(i).encode(), value=f"record-{i}".encode(), on_delivery=on_delivery)
        producer.poll(0)
    remaining = producer.flush(30)
    assert remaining == 0, f"{remaining} messages still in flight after 30 s"
    return errors


def _consume_all(zones, zone: str, principal: Principal, topic: str, group: str, expect: int) -> list[bytes]:
    conf = client_config(zones.endpoint(zone), principal, {
        "group.id": group, "auto.offset.reset": "earliest", "enable.auto.commit": False,
        "isolation.level": "read_committed",
    })
    consumer = Consumer(conf)
    consumer.subscribe([topic])
    values: list[bytes] = []
    deadline = time.monotonic() + 60
    try:
        while len(values) < expect and time.monotonic() < deadline:
            for msg in consumer.consume(500, timeout=1.0):
                assert msg.error() is None, msg.error()
                values.append(msg.value())
        # Anything beyond the expected count would show up here.
        values += [m.value() for m in consumer.consume(500, timeout=1.0) if m.error() is None]
    finally:
        consumer.close()
    return values


def _grant_park(zones, zone: str, principal: Principal, topic: str, group: str) -> None:
    user = principal.username
    kadmin.apply_grants(zones.admin(zone), [
        kadmin.Grant(user, "write", "topic", topic),
        kadmin.Grant(user, "describe", "topic", topic),
        kadmin.Grant(user, "read", "topic", topic),
        kadmin.Grant(user, "read", "group", group),
    ])


@pytest.mark.parametrize("zone", ZONES)
def test_scram_principal_produces_and_consumes_1000(zones, make_topic, zone):
    topic = make_topic(zone, "roundtrip")
    park = _principal(zones, zone, "park")
    group = f"g-{uuid.uuid4().hex[:8]}"
    _grant_park(zones, zone, park, topic, group)

    assert _produce(zones, zone, park, topic, 1000) == []
    values = _consume_all(zones, zone, park, topic, group, 1000)

    assert len(values) == 1000
    assert set(values) == {f"record-{i}".encode() for i in range(1000)}


@pytest.mark.parametrize("zone", ZONES)
def test_principal_without_acl_is_refused_admin_is_not(zones, make_topic, zone):
    topic = make_topic(zone, "denied")
    stranger = _principal(zones, zone, "stranger")

    errors = _produce(zones, zone, stranger, topic, 1)
    assert [e.code() for e in errors] == [KafkaError.TOPIC_AUTHORIZATION_FAILED]

    assert _produce(zones, zone, zones.credentials.admin, topic, 1) == []


def test_wrong_password_is_refused(zones):
    seen: list[KafkaError] = []
    impostor = Principal("admin", Secret("not-the-password"))
    conf = client_config(zones.endpoint("hk"), impostor, {"error_cb": seen.append, "log_level": 0})
    producer = Producer(conf)
    deadline = time.monotonic() + 20
    while not seen and time.monotonic() < deadline:
        producer.poll(0.2)
    assert seen, "no error reported for a wrong password within 20 s"
    assert seen[0].code() == KafkaError._AUTHENTICATION
    assert "invalid credentials" in seen[0].str()
