"""librdkafka configuration: the one place a zone and a principal become a client dict."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient

from corridor.zones.credentials import Principal


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach one zone's cluster."""

    zone: str
    bootstrap: str
    security_protocol: str = "SASL_PLAINTEXT"
    sasl_mechanism: str = "SCRAM-SHA-512"
    ca_location: str | None = None


def client_config(
    endpoint: Endpoint, principal: Principal, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A librdkafka config for ``principal`` on ``endpoint``, plus ``extra`` settings."""
    conf: dict[str, Any] = {
        "bootstrap.servers": endpoint.bootstrap,
        "security.protocol": endpoint.security_protocol,
        "client.id": f"corridor-{endpoint.zone}-{principal.username}",
        # Loopback clusters answer in milliseconds; fail fast instead of hanging.
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 2000,
    }
    if endpoint.security_protocol.startswith("SASL"):
        conf.update({
            "sasl.mechanism": endpoint.sasl_mechanism,
            "sasl.username": principal.username,
            "sasl.password": principal.secret,
        })
    if endpoint.ca_location:
        conf["ssl.ca.location"] = endpoint.ca_location
    conf.update(extra or {})
    return conf


def admin_client(endpoint: Endpoint, principal: Principal) -> AdminClient:
    return AdminClient(client_config(endpoint, principal))


def answers_metadata(endpoint: Endpoint, principal: Principal, timeout_s: float = 2.0) -> bool:
    """True when the cluster serves a metadata request to ``principal`` within the timeout."""
    admin = AdminClient(client_config(endpoint, principal, {"log_level": 0}))
    try:
        md = admin.list_topics(timeout=timeout_s)
    except KafkaException:
        return False
    return bool(md.brokers)
