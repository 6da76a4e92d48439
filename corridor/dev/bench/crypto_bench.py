"""Micro benchmark of field encryption: `python -m corridor.dev.bench.crypto_bench`.

Avro format: values/s per core of ``FieldCipher.encrypt_column`` on 100k
32-byte strings, against raw ``AESGCM.encrypt`` in a plain loop over the same
values (the ratio is our overhead: encoding, nonces, header, Arrow output).
Arrow format: MB/s of ``encrypt_batch_column`` on a 10k-row batch of three
columns, against raw AES-GCM over the same serialized bytes. Best of N runs.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any

import pyarrow as pa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from corridor.core.crypto import DataKeyRing, decrypt_batch_column, decrypt_column
from corridor.core.crypto.column import column_to_bytes

CTX: dict[str, Any] = {"corridor": "hk-eu", "dataset": "trade.shipment", "field": "contact_email"}


def best(fn: Callable[[], object], runs: int = 5) -> float:
    """Fastest wall time of ``runs`` calls, in seconds."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def bench_values(n: int = 100_000) -> dict[str, float]:
    ring = DataKeyRing()
    ring.rotate("hk-eu")
    cipher = ring.cipher("hk-eu")
    values = pa.array([os.urandom(16).hex() for _ in range(n)])  # 32-byte strings
    raw_data = [v.encode() for v in values.to_pylist()]
    aead, nonce, aad = AESGCM(os.urandom(32)), os.urandom(12), b"x" * 48

    def raw() -> None:
        for d in raw_data:
            aead.encrypt(nonce, d, aad)

    sealed = cipher.encrypt_column(values, **CTX)
    t_ours = best(lambda: cipher.encrypt_column(values, **CTX))
    t_det = best(lambda: cipher.encrypt_column(values, **CTX, deterministic=True))
    t_raw = best(raw)
    t_dec = best(lambda: decrypt_column(sealed, pa.string(), **CTX, keys=ring))
    return {
        "encrypt_column values/s": n / t_ours,
        "encrypt_column deterministic values/s": n / t_det,
        "raw AESGCM.encrypt values/s": n / t_raw,
        "ratio ours/raw": t_raw / t_ours,
        "decrypt_column values/s": n / t_dec,
    }


def bench_batch(rows: int = 10_000) -> dict[str, float]:
    ring = DataKeyRing()
    ring.rotate("hk-eu")
    cipher = ring.cipher("hk-eu")
    columns = {
        "email": pa.array([os.urandom(16).hex() for _ in range(rows)]),
        "declared_value": pa.array(range(rows), pa.int64()),
        "weight": pa.array([i * 0.5 for i in range(rows)], pa.float64()),
    }
    nbytes = sum(c.nbytes for c in columns.values())
    serialized = [column_to_bytes(c) for c in columns.values()]
    aead, nonce, aad = AESGCM(os.urandom(32)), os.urandom(12), b"x" * 64

    def ours() -> list[bytes]:
        return [
            cipher.encrypt_batch_column(c, **{**CTX, "field": name}, lineage="t/0/0-9999")
            for name, c in columns.items()
        ]

    blobs = ours()

    def back() -> None:
        for (name, _), blob in zip(columns.items(), blobs, strict=False):
            decrypt_batch_column(blob, **{**CTX, "field": name}, lineage="t/0/0-9999", keys=ring)

    t_ours = best(ours, 20)
    t_raw = best(lambda: [aead.encrypt(nonce, s, aad) for s in serialized], 20)
    t_dec = best(back, 20)
    mb = nbytes / 1e6
    return {
        "batch column MB (3 columns, 10k rows)": mb,
        "encrypt_batch_column MB/s": mb / t_ours,
        "raw AESGCM on same bytes MB/s": mb / t_raw,
        "ratio ours/raw": t_raw / t_ours,
        "decrypt_batch_column MB/s": mb / t_dec,
    }


def main() -> None:
    print("avro format, 100k x 32-byte strings, one core")
    for name, value in bench_values().items():
        print(f"  {name:42s} {value:14,.2f}")
    print("arrow format, 10k-row batch of 3 columns, one core")
    for name, value in bench_batch().items():
        print(f"  {name:42s} {value:14,.2f}")


if __name__ == "__main__":
    main()
