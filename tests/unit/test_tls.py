"""Local CA and broker certificates; the broker and client TLS settings (no broker)."""

from __future__ import annotations

import socket
import ssl
import stat
import threading
from pathlib import Path

import pytest
from cryptography import x509

from corridor.kafka.clients import Endpoint, client_config
from corridor.zones.credentials import Principal, Secret
from corridor.zones.properties import server_properties
from corridor.zones.tls import ensure_zone_tls, issue_server, new_authority

ADMIN = Principal("admin", Secret("pw"))


def test_zone_certificate_is_signed_by_the_ca_and_names_loopback(tmp_path):
    files = ensure_zone_tls(tmp_path / "tls", "hk")
    ca = x509.load_pem_x509_certificate(files.ca.read_bytes())
    leaf, *chain = x509.load_pem_x509_certificates(files.keystore.read_bytes())
    leaf.verify_directly_issued_by(ca)
    assert chain[-1] == ca
    san = leaf.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert "localhost" in san.get_values_for_type(x509.DNSName)
    assert [str(ip) for ip in san.get_values_for_type(x509.IPAddress)] == ["127.0.0.1"]
    assert b"BEGIN PRIVATE KEY" in files.keystore.read_bytes()  # PKCS#8, what Kafka reads


def test_private_keys_are_0600_in_a_0700_folder_and_reused(tmp_path):
    first = ensure_zone_tls(tmp_path / "tls", "hk")
    before = first.keystore.read_bytes(), first.ca.read_bytes()
    again = ensure_zone_tls(tmp_path / "tls", "hk")
    assert (again.keystore.read_bytes(), again.ca.read_bytes()) == before
    for private in (first.keystore, tmp_path / "tls" / "ca.key"):
        assert stat.S_IMODE(private.stat().st_mode) == 0o600
    assert stat.S_IMODE((tmp_path / "tls").stat().st_mode) == 0o700
    # A second zone shares the CA.
    eu = ensure_zone_tls(tmp_path / "tls", "eu")
    assert eu.ca == first.ca and eu.keystore != first.keystore


def _serve_once(keystore: Path) -> tuple[int, threading.Thread]:
    ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    ctx.load_cert_chain(keystore)  # key and chain in one PEM, as Kafka reads it
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]

    def run() -> None:
        with server:
            conn, _ = server.accept()
            try:
                with ctx.wrap_socket(conn, server_side=True) as tls:
                    tls.sendall(b"ok")
            except (ssl.SSLError, OSError):
                pass

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    return port, thread


def _connect(port: int, cafile: Path) -> bytes:
    ctx = ssl.create_default_context(cafile=str(cafile))
    with socket.create_connection(("127.0.0.1", port), timeout=5) as raw, \
            ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
        return tls.recv(2)


def test_a_client_trusting_the_ca_verifies_the_certificate_another_ca_fails(tmp_path):
    files = ensure_zone_tls(tmp_path / "tls", "hk")
    port, thread = _serve_once(files.keystore)
    assert _connect(port, files.ca) == b"ok"
    thread.join(5)

    other = tmp_path / "other-ca.pem"
    other.write_bytes(new_authority("someone else").pem)
    port, thread = _serve_once(files.keystore)
    with pytest.raises(ssl.SSLCertVerificationError, match="certificate verify failed"):
        _connect(port, other)
    thread.join(5)


def test_certificate_for_another_host_fails_hostname_verification(tmp_path):
    ca = new_authority()
    (tmp_path / "ca.pem").write_bytes(ca.pem)
    (tmp_path / "ks.pem").write_bytes(issue_server(ca, "x", hosts=("example.org",)))
    port, thread = _serve_once(tmp_path / "ks.pem")
    with pytest.raises(ssl.SSLCertVerificationError, match="IP address mismatch"):
        _connect(port, tmp_path / "ca.pem")
    thread.join(5)


def _props(text: str) -> dict[str, str]:
    return dict(line.split("=", 1) for line in text.splitlines() if "=" in line
                and not line.startswith("#"))


def test_tls_zone_listens_sasl_ssl_only_with_pem_keystore(tmp_path):
    files = ensure_zone_tls(tmp_path / "tls", "hk")
    props = _props(server_properties("hk", 19092, 19093, tmp_path / "d", ADMIN, files))
    assert props["listeners"] == "SASL_SSL://127.0.0.1:19092,CONTROLLER://127.0.0.1:19093"
    assert "SASL_PLAINTEXT" not in props["listener.security.protocol.map"]
    assert props["inter.broker.listener.name"] == "SASL_SSL"
    assert props["ssl.keystore.type"] == "PEM" and props["ssl.keystore.location"] == str(
        files.keystore)
    assert "listener.name.sasl_ssl.scram-sha-512.sasl.jaas.config" in props


def test_plain_zone_is_unchanged_without_tls(tmp_path):
    props = _props(server_properties("hk", 19092, 19093, tmp_path / "d", ADMIN))
    assert props["listeners"].startswith("SASL_PLAINTEXT://")
    assert not any(k.startswith("ssl.") for k in props)


def test_client_config_follows_corridor_tls_unless_endpoint_says(monkeypatch, tmp_path):
    monkeypatch.delenv("CORRIDOR_TLS", raising=False)
    conf = client_config(Endpoint("hk", "127.0.0.1:1"), ADMIN)
    assert conf["security.protocol"] == "SASL_PLAINTEXT" and "ssl.ca.location" not in conf
    monkeypatch.setenv("CORRIDOR_TLS", "1")
    monkeypatch.setenv("CORRIDOR_HOME", str(tmp_path))
    conf = client_config(Endpoint("hk", "127.0.0.1:1"), ADMIN)
    assert conf["security.protocol"] == "SASL_SSL"
    assert conf["ssl.ca.location"] == str(tmp_path / ".zones" / "tls" / "ca.pem")
    assert conf["ssl.endpoint.identification.algorithm"] == "https"
    explicit = Endpoint("hk", "127.0.0.1:1", security_protocol="SASL_PLAINTEXT")
    assert client_config(explicit, ADMIN)["security.protocol"] == "SASL_PLAINTEXT"
