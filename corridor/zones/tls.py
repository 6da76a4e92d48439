"""A local certificate authority and broker certificates, made with ``cryptography``.

Layout of the TLS folder (default ``.zones/tls/``, mode 0700):

- ``ca.pem``: the CA certificate clients trust (``ssl.ca.location``); public.
- ``ca.key``: the CA's private key (0600); only needed to issue more certificates.
- ``<zone>.pem``: the zone broker's private key (PKCS#8) followed by its
  certificate and the CA's (0600). Kafka reads it as ``ssl.keystore.type=PEM``
  with ``ssl.keystore.location`` (KIP-651), and uses ``ca.pem`` as its PEM
  truststore for inter-broker connections.

Broker certificates name ``localhost`` and ``127.0.0.1`` so that hostname
verification holds for the loopback listeners. Everything is made once and
reused; a certificate is re-issued when it is within a week of expiry.
"""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

VALID_DAYS = 825
RENEW_BEFORE = dt.timedelta(days=7)


@dataclass(frozen=True, slots=True)
class Authority:
    """A CA that can issue certificates (its key stays in memory or in ``ca.key``)."""

    certificate: x509.Certificate
    key: ec.EllipticCurvePrivateKey

    @property
    def pem(self) -> bytes:
        return self.certificate.public_bytes(serialization.Encoding.PEM)


def new_authority(name: str = "corridor local CA", now: dt.datetime | None = None) -> Authority:
    """A fresh self-signed CA (P-256)."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject).issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                     content_commitment=False, key_encipherment=False,
                                     data_encipherment=False, key_agreement=False,
                                     encipher_only=False, decipher_only=False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return Authority(cert, key)


def issue_server(ca: Authority, name: str, hosts: tuple[str, ...] = ("localhost", "127.0.0.1"),
                 now: dt.datetime | None = None) -> bytes:
    """A server key and certificate for ``hosts``, as one PEM: key, certificate, CA."""
    now = now or dt.datetime.now(dt.UTC)
    key = ec.generate_private_key(ec.SECP256R1())
    names: list[x509.GeneralName] = []
    for host in hosts:
        try:
            names.append(x509.IPAddress(ipaddress.ip_address(host)))
        except ValueError:
            names.append(x509.DNSName(host))
    cert = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - dt.timedelta(minutes=5))
        .not_valid_after(now + dt.timedelta(days=VALID_DAYS))
        .add_extension(x509.SubjectAlternativeName(names), critical=False)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH,
                                              ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca.key.public_key()),
                       critical=False)
        .sign(ca.key, hashes.SHA256())
    )
    key_pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                serialization.NoEncryption())
    return key_pem + cert.public_bytes(serialization.Encoding.PEM) + ca.pem


@dataclass(frozen=True, slots=True)
class TlsFiles:
    """Where one zone's TLS material is: the CA to trust and the broker's keystore."""

    ca: Path
    keystore: Path


def ensure_zone_tls(folder: Path, zone: str) -> TlsFiles:
    """Make (once) the folder's CA and ``zone``'s broker certificate; return their paths."""
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    os.chmod(folder, 0o700)
    ca = _load_or_create_authority(folder)
    keystore = folder / f"{zone}.pem"
    if not keystore.exists() or _expiring(keystore, ca):
        _write_private(keystore, issue_server(ca, f"corridor zone {zone}"))
    return TlsFiles(folder / "ca.pem", keystore)


def _load_or_create_authority(folder: Path) -> Authority:
    cert_path, key_path = folder / "ca.pem", folder / "ca.key"
    if cert_path.exists() and key_path.exists():
        cert = x509.load_pem_x509_certificate(cert_path.read_bytes())
        key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        if isinstance(key, ec.EllipticCurvePrivateKey) and \
                cert.not_valid_after_utc - RENEW_BEFORE > dt.datetime.now(dt.UTC):
            return Authority(cert, key)
    ca = new_authority()
    _write_private(key_path, ca.key.private_bytes(serialization.Encoding.PEM,
                                                  serialization.PrivateFormat.PKCS8,
                                                  serialization.NoEncryption()))
    cert_path.write_bytes(ca.pem)
    for stale in folder.glob("*.pem"):  # certificates of a replaced CA are useless
        if stale.name != "ca.pem":
            stale.unlink()
    return ca


def _expiring(keystore: Path, ca: Authority) -> bool:
    certs = x509.load_pem_x509_certificates(keystore.read_bytes())
    leaf = certs[0]
    return leaf.issuer != ca.certificate.subject or \
        leaf.not_valid_after_utc - RENEW_BEFORE < dt.datetime.now(dt.UTC) or \
        certs[-1].fingerprint(hashes.SHA256()) != ca.certificate.fingerprint(hashes.SHA256())


def _write_private(path: Path, data: bytes) -> None:
    tmp = path.with_suffix(".tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as fh:
        fh.write(data)
    os.replace(tmp, path)
