"""librdkafka configuration: the one place a zone and a principal become a client dict."""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from confluent_kafka import KafkaError, KafkaException
from confluent_kafka.admin import AdminClient

from corridor.core.errors import KafkaUnavailable
from corridor.zones.credentials import Principal


@dataclass(frozen=True, slots=True)
class Endpoint:
    """How to reach one zone's cluster.

    ``security_protocol`` None means "as this environment says": SASL_SSL
    trusting the local CA when ``CORRIDOR_TLS=1`` (see ``tls_from_env``), else
    SASL_PLAINTEXT. ``ca_location`` is the CA file that must have signed the
    broker's certificate (hostname verification stays on).
    """

    zone: str
    bootstrap: str
    security_protocol: str | None = None
    sasl_mechanism: str = "SCRAM-SHA-512"
    ca_location: str | None = None


def tls_enabled() -> bool:
    """``CORRIDOR_TLS=1``: the local zones serve SASL_SSL only, and clients use it."""
    return os.environ.get("CORRIDOR_TLS", "").lower() in ("1", "true", "yes", "on")


def tls_ca_from_env() -> str:
    """The CA clients trust: ``CORRIDOR_TLS_CA``, else the local launcher's CA."""
    explicit = os.environ.get("CORRIDOR_TLS_CA")
    if explicit:
        return explicit
    home = Path(os.environ.get("CORRIDOR_HOME", os.getcwd())).resolve()
    return str(home / ".zones" / "tls" / "ca.pem")


def _security(endpoint: Endpoint) -> tuple[str, str | None]:
    if endpoint.security_protocol is not None:
        return endpoint.security_protocol, endpoint.ca_location
    if tls_enabled():
        return "SASL_SSL", endpoint.ca_location or tls_ca_from_env()
    return "SASL_PLAINTEXT", endpoint.ca_location


def client_config(
    endpoint: Endpoint, principal: Principal, extra: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """A librdkafka config for ``principal`` on ``endpoint``, plus ``extra`` settings."""
    protocol, ca = _security(endpoint)
    conf: dict[str, Any] = {
        "bootstrap.servers": endpoint.bootstrap,
        "security.protocol": protocol,
        "client.id": f"corridor-{endpoint.zone}-{principal.username}",
        # Loopback clusters answer in milliseconds; fail fast instead of hanging.
        "socket.connection.setup.timeout.ms": 5000,
        "reconnect.backoff.max.ms": 2000,
    }
    if protocol.startswith("SASL"):
        conf.update({
            "sasl.mechanism": endpoint.sasl_mechanism,
            "sasl.username": principal.username,
            "sasl.password": principal.secret,
        })
    if ca and protocol.endswith("SSL"):
        conf["ssl.ca.location"] = ca
        conf["ssl.endpoint.identification.algorithm"] = "https"
    conf.update(extra or {})
    return conf


def error_code(exc: BaseException) -> str | None:
    """The Kafka error's name of ``exc`` (``'TOPIC_AUTHORIZATION_FAILED'``, ``'_TRANSPORT'``,
    ...) when it is, or wraps, a ``KafkaError``; else None. Carried by ``KafkaUnavailable``."""
    err = exc.args[0] if isinstance(exc, KafkaException) and exc.args else exc
    return err.name() if isinstance(err, KafkaError) else None


def unavailable(what: str, exc: KafkaException) -> KafkaUnavailable:
    """``KafkaUnavailable("<what>: <the Kafka error's text>")`` carrying the error's code."""
    err = exc.args[0] if exc.args else None
    text = err.str() if isinstance(err, KafkaError) else str(exc)
    return KafkaUnavailable(f"{what}: {text}", code=error_code(exc))


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
