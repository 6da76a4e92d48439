"""corridor.keys: the local kek_provider's file rules, `corridor keys init`, and secrets staying secret."""

from __future__ import annotations

import base64
import io
import os
import random
import stat
from pathlib import Path

import pyarrow as pa
import pytest
import structlog
from click.testing import CliRunner
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from corridor.commands.keys import keys as keys_cli
from corridor.core.crypto import DataKeyRing, decrypt_column, new_data_key
from corridor.core.errors import (
    ContextMismatch,
    CryptoError,
    KeyFileError,
    KeyNotFound,
    KeyProviderUnavailable,
    WrongKey,
)
from corridor.keys import KekProvider, LocalKekProvider


def seeded(seed: int):
    return random.Random(seed).randbytes


def mode_of(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_init_makes_0600_file_in_0700_folder_even_with_open_umask(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    old = os.umask(0)
    try:
        kek = LocalKekProvider(folder).init("eu")
    finally:
        os.umask(old)
    assert mode_of(folder) == 0o700 and mode_of(folder / "eu.kek") == 0o600
    assert kek.key_id.startswith("eu-kek-") and len(kek.key_id) == len("eu-kek-") + 8
    again = LocalKekProvider(folder).load("eu")
    assert again.key_id == kek.key_id and again.material == kek.material
    assert isinstance(LocalKekProvider(folder), KekProvider)


def test_init_refuses_to_overwrite(tmp_path: Path) -> None:
    ring = LocalKekProvider(tmp_path / "keys")
    first = ring.init("eu")
    with pytest.raises(KeyFileError, match="already exists"):
        LocalKekProvider(tmp_path / "keys").init("eu")
    assert LocalKekProvider(tmp_path / "keys").load("eu").material == first.material


def test_init_refuses_group_readable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir(mode=0o750)
    folder.chmod(0o750)
    with pytest.raises(KeyFileError) as err:
        LocalKekProvider(folder).init("eu")
    assert "0750" in str(err.value) and f"chmod 700 {folder}" in str(err.value)
    assert not (folder / "eu.kek").exists()


def test_load_refuses_key_file_wider_than_0600(tmp_path: Path) -> None:
    LocalKekProvider(tmp_path).init("eu")
    path = tmp_path / "eu.kek"
    path.chmod(0o644)
    with pytest.raises(KeyFileError) as err:
        LocalKekProvider(tmp_path).load("eu")
    assert str(path) in str(err.value) and "0644" in str(err.value)
    assert f"chmod 600 {path}" in str(err.value)


def test_missing_zone_and_missing_folder_fail_closed(tmp_path: Path) -> None:
    LocalKekProvider(tmp_path).init("eu")
    with pytest.raises(KeyNotFound):
        LocalKekProvider(tmp_path).load("asean")
    with pytest.raises(KeyProviderUnavailable):
        LocalKekProvider(tmp_path / "nowhere").load("eu")
    with pytest.raises(CryptoError):
        LocalKekProvider(tmp_path).load("../eu")


def test_corrupt_key_file_is_refused_without_showing_it(tmp_path: Path) -> None:
    path = tmp_path / "eu.kek"
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o600)
    os.write(fd, b"not-base64-key-material!!")
    os.close(fd)
    with pytest.raises(KeyFileError) as err:
        LocalKekProvider(tmp_path).load("eu")
    assert "not-base64" not in str(err.value)


def test_wrap_unwrap_through_keyring_and_wrong_keyring(tmp_path: Path) -> None:
    mine, theirs = LocalKekProvider(tmp_path / "a"), LocalKekProvider(tmp_path / "b")
    mine.init("eu")
    theirs.init("eu")
    dek = new_data_key("hk-eu", 1)
    wrapped = mine.wrap(dek, "eu")
    assert wrapped.kek_id == mine.kek_id("eu")
    assert mine.unwrap(wrapped).material == dek.material
    with pytest.raises(WrongKey):
        theirs.unwrap(wrapped)


# --- CLI -------------------------------------------------------------------------


def test_cli_keys_init(tmp_path: Path) -> None:
    runner = CliRunner()
    folder = tmp_path / "keys"
    result = runner.invoke(keys_cli, ["init", "--zone", "eu", "--dir", str(folder)])
    assert result.exit_code == 0, result.output
    assert "eu-kek-" in result.output and mode_of(folder / "eu.kek") == 0o600

    again = runner.invoke(keys_cli, ["init", "--zone", "eu", "--dir", str(folder)])
    assert again.exit_code != 0
    assert isinstance(again.exception, KeyFileError) and "refusing to overwrite" in str(
        again.exception
    )


def test_cli_keys_init_refuses_group_readable_folder(tmp_path: Path) -> None:
    folder = tmp_path / "keys"
    folder.mkdir()
    folder.chmod(0o740)
    result = CliRunner().invoke(keys_cli, ["init", "--zone", "eu", "--dir", str(folder)])
    assert result.exit_code != 0
    assert isinstance(result.exception, KeyFileError)
    assert "0740" in str(result.exception) and "chmod 700" in str(result.exception)


# --- secrets never in logs or errors ------------------------------------------------


def _forms(secret: bytes) -> list[str]:
    return [
        secret.hex(),
        secret.hex().upper(),
        repr(secret)[2:-1],
        base64.b64encode(secret).decode().rstrip("="),
        base64.urlsafe_b64encode(secret).decode().rstrip("="),
    ]


def _derived(material: bytes) -> list[bytes]:
    okm = HKDF(SHA256(), 108, None, b"corridor data key v1").derive(material)
    return [okm[0:32], okm[32:64], okm[64:96]]


@pytest.fixture()
def log_sink():
    out = io.StringIO()
    structlog.configure(
        processors=[
            structlog.processors.format_exc_info,
            structlog.processors.JSONRenderer(),
        ],
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
    yield out
    structlog.reset_defaults()


def test_secrets_never_appear_in_logs_reprs_or_errors(
    tmp_path: Path, log_sink: io.StringIO
) -> None:
    provider = LocalKekProvider(tmp_path)
    kek = provider.init("eu", random=seeded(1))
    ring = DataKeyRing(random=seeded(2))
    dek = ring.rotate("hk-eu")
    cipher = ring.cipher("hk-eu")
    wrapped = provider.wrap(dek, "eu")
    other = LocalKekProvider(tmp_path / "other")
    other.init("eu", random=seeded(3))
    sealed = cipher.encrypt_column(
        pa.array(["alice@example.org"]), corridor="hk-eu", dataset="d", field="email"
    )
    log = structlog.get_logger("test")
    log.info(
        "objects",
        dek=dek,
        kek=kek,
        cipher=cipher,
        wrapped=wrapped,
        ring=ring,
        provider=provider,
        material=dek.material,
        msg=f"{dek} {kek.material}",
    )
    console = io.StringIO()
    console_log = structlog.wrap_logger(
        structlog.PrintLogger(console), processors=[structlog.dev.ConsoleRenderer(colors=False)]
    )
    errors: list[Exception] = []
    failing = [
        lambda: decrypt_column(
            sealed, pa.string(), corridor="hk-eu", dataset="d", field="other", keys=ring
        ),
        lambda: other.unwrap(wrapped),
    ]
    for call in failing:
        with pytest.raises((ContextMismatch, WrongKey)) as err:
            try:
                call()
            except CryptoError:
                log.exception("decrypt failed", key=dek)
                console_log.exception("decrypt failed", key=dek)  # rich traceback, with locals
                raise
        errors.append(err.value)

    text = "\n".join(
        [log_sink.getvalue(), console.getvalue()]
        + [f"{e!s} {e!r} {getattr(e, '__cause__', None)!r}" for e in errors]
        + [repr(x) + str(x) for x in (dek, kek, cipher, wrapped, ring, provider, dek.material)]
    )
    assert "decrypt failed" in text and dek.key_id in text
    secrets = [dek.material.reveal(), kek.material.reveal(), *_derived(dek.material.reveal())]
    for secret in secrets:
        for form in _forms(secret):
            assert form not in text


# --- Vault / OpenBao transit, without a server ------------------------------------------


class _FakeTransit:
    """Stands in for hvac's transit API: raises what it is told to."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def read_key(self, name: str, mount_point: str) -> dict:
        raise self.error


class _FakeClient:
    def __init__(self, error: Exception) -> None:
        self.secrets = type("S", (), {"transit": _FakeTransit(error)})()


def test_vault_errors_map_to_fail_closed_errors() -> None:
    hvac = pytest.importorskip("hvac")
    import requests

    from corridor.keys.vault import VaultTransit

    cases = [
        (hvac.exceptions.InvalidPath(), KeyNotFound),
        (hvac.exceptions.Forbidden(), KeyProviderUnavailable),
        (hvac.exceptions.VaultDown(), KeyProviderUnavailable),
        (requests.ConnectTimeout(), KeyProviderUnavailable),
    ]
    for error, expected in cases:
        provider = VaultTransit("http://vault.invalid", "tok", client=_FakeClient(error))
        with pytest.raises(expected):
            provider.kek_id("eu")
    assert "tok" not in repr(VaultTransit("http://vault.invalid", "tok"))


def test_vault_unreachable_is_unavailable() -> None:
    pytest.importorskip("hvac")
    import socket

    from corridor.keys.vault import VaultTransit

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(KeyProviderUnavailable):
        VaultTransit(f"http://127.0.0.1:{port}", "tok", timeout=0.5).kek_id("eu")
