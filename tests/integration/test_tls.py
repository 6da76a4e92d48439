"""A zone served over SASL_SSL only: the broker's certificate is verified, plaintext is refused.

The shared zones keep their listeners (other tests use them), so this module
starts a zone of its own with TLS on (what `CORRIDOR_TLS=1 make up` does to
every zone), on free ports and in a temporary state folder, and stops it after.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition

from corridor.kafka import admin as kadmin
from corridor.kafka.clients import Endpoint, admin_client, answers_metadata, client_config
from corridor.zones import local
from corridor.zones.credentials import Credentials, Principal
from corridor.zones.launcher import Launcher, ZoneSpec
from corridor.zones.tls import new_authority

from .denials import Denial, record_denials

pytestmark = pytest.mark.integration

DEADLINE_S = 20.0


@dataclass
class TlsZone:
    spec: ZoneSpec
    ca: Path
    admin: Principal

    def endpoint(self, protocol: str = "SASL_SSL", ca: Path | None = None) -> Endpoint:
        return Endpoint(self.spec.name, self.spec.bootstrap, security_protocol=protocol,
                        ca_location=str(ca or self.ca))


def _free_port_pair() -> int:
    """A port p with p and p + 1 free (the launcher puts the controller on p + 1)."""
    for _ in range(50):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise RuntimeError("no free pair of ports")


@pytest.fixture(scope="module")
def tls_zone(zones, tmp_path_factory) -> Iterator[TlsZone]:
    if local.backend() != "local":
        pytest.skip("starts a local broker")
    state = tmp_path_factory.mktemp("tls-zone")
    spec = ZoneSpec("tlszone", _free_port_pair())
    ca = state / "tls" / "ca.pem"

    def probe(s: ZoneSpec, creds: Credentials) -> bool:
        return answers_metadata(Endpoint(s.name, s.bootstrap, "SASL_SSL", ca_location=str(ca)),
                                creds.admin)

    launcher = Launcher(state, local.home() / ".kafka" / "libs", probe, tls=True)
    launcher.up([spec], print)
    try:
        yield TlsZone(spec, ca, launcher.credentials().admin)
    finally:
        launcher.down([spec], print)


@pytest.fixture(scope="module")
def denials() -> Iterator[list[Denial]]:
    seen: list[Denial] = []
    yield seen
    record_denials("test_tls", seen)


def _errors(endpoint: Endpoint, principal: Principal, until: int | None = None) -> list[KafkaError]:
    """Client-level errors (error_cb) of a producer trying to connect: the first one, or all
    until one with code ``until`` arrives (or the deadline passes)."""
    seen: list[KafkaError] = []
    producer = Producer(client_config(endpoint, principal,
                                      {"error_cb": seen.append, "log_level": 0}))
    deadline = time.monotonic() + DEADLINE_S
    while time.monotonic() < deadline and (
            not seen if until is None else all(e.code() != until for e in seen)):
        producer.poll(0.2)
    return seen


def test_client_trusting_the_ca_round_trips_a_record_over_tls(tls_zone):
    endpoint = tls_zone.endpoint()
    conf = client_config(endpoint, tls_zone.admin)
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["ssl.endpoint.identification.algorithm"] == "https"
    admin = admin_client(endpoint, tls_zone.admin)
    kadmin.ensure_topics(admin, [kadmin.TopicSpec("tls.check", 1)])
    producer = Producer(client_config(endpoint, tls_zone.admin, {"enable.idempotence": True}))
    producer.produce("tls.check", b"over tls")
    assert producer.flush(DEADLINE_S) == 0
    consumer = Consumer(client_config(endpoint, tls_zone.admin, {"group.id": "tls-check"}))
    consumer.assign([TopicPartition("tls.check", 0, 0)])
    try:
        got = None
        deadline = time.monotonic() + DEADLINE_S
        while got is None and time.monotonic() < deadline:
            for msg in consumer.consume(1, timeout=0.5):
                got = msg.value() if msg.error() is None else None
    finally:
        consumer.close()
    assert got == b"over tls"


def test_client_trusting_another_ca_refuses_the_broker(tls_zone, tmp_path, denials):
    other = tmp_path / "other-ca.pem"
    other.write_bytes(new_authority("not the zone's CA").pem)
    errors = _errors(tls_zone.endpoint(ca=other), tls_zone.admin)
    err = errors[0] if errors else None
    assert err is not None and err.code() == KafkaError._SSL, err
    assert "certificate verify failed" in err.str()
    denials.append(Denial("client with another CA", "connect to a TLS zone", "_SSL"))


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def test_plaintext_client_is_refused_by_the_tls_listener(tls_zone, denials):
    handler = _Lines()
    logger = logging.getLogger(f"plaintext-{tls_zone.spec.port}")
    logger.addHandler(handler)
    logger.setLevel(logging.DEBUG)
    seen: list[KafkaError] = []
    producer = Producer(client_config(tls_zone.endpoint("SASL_PLAINTEXT"), tls_zone.admin,
                                      {"error_cb": seen.append, "logger": logger,
                                       # the disconnect's cause is a debug-level line
                                       "log_level": 7, "debug": "broker"}))
    deadline = time.monotonic() + DEADLINE_S
    while not (seen and any("APIVERSION_QUERY" in ln for ln in handler.lines)) \
            and time.monotonic() < deadline:
        producer.poll(0.2)
    # The application sees "all brokers down"; the client's log says why: the broker hung
    # up on its first (plaintext) request, ApiVersions, with a transport error.
    assert seen and seen[0].code() == KafkaError._ALL_BROKERS_DOWN, seen
    hung_up = [line for line in handler.lines
               if "in state APIVERSION_QUERY" in line and "_TRANSPORT" in line]
    assert hung_up, handler.lines
    denials.append(Denial("plaintext client", "connect to a TLS-only zone",
                          "_TRANSPORT (closed by the broker during ApiVersions)"))
    assert not answers_metadata(tls_zone.endpoint("SASL_PLAINTEXT"), tls_zone.admin, 3.0)
