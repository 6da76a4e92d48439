"""Keys end to end on real brokers: rotation on a running processor (schedule and
`corridor keys rotate`), retirement, decryption by the destination zone only, and a KMS
(OpenBao transit) outage at start and mid-stream: the corridor pauses, nothing crosses
in plaintext, it resumes, and `corridor verify` passes."""

from __future__ import annotations

import io
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import fastavro
import pytest

from corridor.core import topics
from corridor.core.errors import KeyNotFound, WrongKey
from corridor.core.schema import unframe
from corridor.dev.chaos.proxy import FaultProxy
from corridor.kafka.io import read_to_end
from corridor.kafka.keys_topic import published_keys
from corridor.keys.local import LocalKekProvider
from corridor.keys.vault import VaultTransit
from corridor.processor.resolve import zone_endpoint
from corridor.sdk import CorridorConsumer

from .bao_env import TOKEN, bao_server  # noqa: F401  (fixture bao_url)
from .corridor_env import REPO, CorridorEnv, drop_topics, make_corridor
from .processor_env import DATASET, Processor, committed, produce, source_end, verify, wait_until

pytestmark = pytest.mark.integration


def _env(zones: Any, tmp_path: Path, dest_keys: str | None = None) -> CorridorEnv:
    from corridor.commands.provision import provision_topics

    env = make_corridor(zones, tmp_path, dest_keys=dest_keys)
    provision_topics(str(env.path), 3)
    return env


def _sources(env: CorridorEnv, admin: Any) -> dict[str, dict[str, Any]]:
    """Source records by lineage, decoded with the dataset schema."""
    schema = env.config.datasets[DATASET].schema.parsed
    out = {}
    for rec in read_to_end(zone_endpoint(env.config, env.origin), admin,
                           topics.outbound(env.origin, DATASET)):
        _, body = unframe(rec.value)
        out[f"{rec.topic}/{rec.partition}/{rec.offset}"] = fastavro.schemaless_reader(
            io.BytesIO(body), schema, None)
    return out


def _corridor_topic(env: CorridorEnv) -> str:
    return topics.corridor_topic(env.origin, env.dest, DATASET)


def _check_decrypts_all(env: CorridorEnv, admin: Any, provider: Any, delivered: int) -> set[str]:
    """An analytics consumer with ``provider`` decrypts every record to its source value;
    returns the key ids seen in `corridor-key` headers."""
    sources = _sources(env, admin)
    seen, key_ids = 0, set()
    with CorridorConsumer(env.config, _corridor_topic(env), kek_provider=provider) as consumer:
        for record in consumer.records(max_records=delivered, idle_timeout_s=10):
            source = sources[record.lineage]
            assert record.value["contact_email"] == source["contact_email"], record.lineage
            assert "national_id" not in record.value
            key_ids.add(record.headers["corridor-key"])
            seen += 1
    assert seen == delivered
    return key_ids


def _keys_cli(env: CorridorEnv, *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "-m", "corridor.cli", "keys", *args, "--config", str(env.path),
         "--corridor", env.name], check=False, capture_output=True, text=True, cwd=REPO,
        timeout=120,
        env={**os.environ, "CORRIDOR_HOME": str(REPO)})
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


def _rotation_run(zones: Any, tmp_path: Path, total: int, every: int) -> None:
    admin = zones.credentials.admin
    env = _env(zones, tmp_path)
    try:
        LocalKekProvider(env.keys).init(env.dest)
        produce(env, admin, total, seed=17)
        proc = Processor(env, tmp_path, "rotating", "--rotate-every-records", str(every),
                         "--until-caught-up")
        try:
            assert proc.wait(240) == 0, proc.log()[-3000:]
        finally:
            proc.close()
        report = verify(env, admin)
        assert report.ok and report.source == total and report.accounted == total
        key_ids = _check_decrypts_all(env, admin, LocalKekProvider(env.keys), report.delivered)
        assert len(key_ids) >= total // every, sorted(key_ids)
        published = {k.key_id for k in published_keys(zone_endpoint(env.config, env.dest), admin)}
        assert key_ids <= published

        # Another zone's kek_provider cannot open hk->eu data: it holds no KEK of that zone...
        asean = LocalKekProvider(tmp_path / "asean-keys")
        asean.init("asean")
        with (CorridorConsumer(env.config, _corridor_topic(env), kek_provider=asean) as consumer,
              pytest.raises(KeyNotFound, match=f"no KEK for zone {env.dest}")):
            next(iter(consumer.records(max_records=1, idle_timeout_s=10)))
        # ...and a KEK made under the destination's name elsewhere is the wrong key.
        impostor = LocalKekProvider(tmp_path / "impostor-keys")
        impostor.init(env.dest)
        with (CorridorConsumer(env.config, _corridor_topic(env), kek_provider=impostor) as consumer,
              pytest.raises(WrongKey)):
            next(iter(consumer.records(max_records=1, idle_timeout_s=10)))
    finally:
        drop_topics(zones, env)


def test_rotation_every_10k_records_over_100k(zones, tmp_path):
    """About 50 s on the 2-core machine (30k records every 3k: about 16 s)."""
    _rotation_run(zones, tmp_path, 100_000, 10_000)


def test_rotate_on_command_and_retire(zones, tmp_path):
    """`corridor keys rotate` reaches a running processor; `keys retire` makes old epochs
    undecryptable (KeyNotFound) and says which and how many."""
    admin = zones.credentials.admin
    env = _env(zones, tmp_path)
    proc = None
    try:
        LocalKekProvider(env.keys).init(env.dest)
        produce(env, admin, 2_000, seed=3)
        proc = Processor(env, tmp_path, "commanded")
        wait_until(lambda: committed(env, admin) == 2_000, 60, "the first 2000 records")
        wait_until(lambda: _count_events(proc.log(), "control_listening") == 1, 30, "the control listener")
        dest = zone_endpoint(env.config, env.dest)
        [first] = [k for k in published_keys(dest, admin) if k.corridor == env.name]

        out = _keys_cli(env, "rotate", "--wait", "0")
        assert "rotation of" in out
        # The processor reads control requests between batches, about once a second.
        wait_until(lambda: _count_events(proc.log(), "key_rotated") == 1, 30,
                   "the processor to start the new epoch")
        produce(env, admin, 1_000, seed=4)
        wait_until(lambda: committed(env, admin) == 3_000, 60, "the next 1000 records")
        mine = sorted((k for k in published_keys(dest, admin) if k.corridor == env.name),
                      key=lambda k: k.epoch)
        assert len(mine) == 2 and mine[0].key_id == first.key_id
        assert mine[1].epoch > first.epoch
        assert [e["reason"] for e in _events(proc.log(), "key_rotated")] == ["rotate"]

        out = _keys_cli(env, "retire", "--before-epoch", str(mine[1].epoch), "--grace", "0")
        assert f"retired {first.key_id}" in out and "messages" in out
        assert {k.key_id for k in published_keys(dest, admin) if k.corridor == env.name} == {
            mine[1].key_id}
        with (CorridorConsumer(env.config, _corridor_topic(env),
                               kek_provider=LocalKekProvider(env.keys)) as consumer,
              pytest.raises(KeyNotFound, match=first.key_id)):
            list(consumer.records(idle_timeout_s=5))
        proc.stop()
        assert verify(env, admin).ok
    finally:
        if proc is not None:
            proc.close()
        drop_topics(zones, env)


def _events(log: str, event: str) -> list[dict[str, Any]]:
    """The processor's JSON log lines whose event is ``event``."""
    out = []
    for line in log.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        if isinstance(entry, dict) and entry.get("event") == event:
            out.append(entry)
    return out


def _count_events(log: str, event: str) -> int:
    return len(_events(log, event))


def test_kms_outage_pauses_without_plaintext_and_resumes(zones, tmp_path, bao_url,
                                                         monkeypatch):
    admin = zones.credentials.admin
    bao_port = int(bao_url.rsplit(":", 1)[1])
    with FaultProxy(bao_port) as proxy:
        env = _env(zones, tmp_path,
                   dest_keys=f'{{provider: vault, addr: "http://127.0.0.1:{proxy.port}"}}')
        VaultTransit(bao_url, TOKEN).create_key(env.dest)
        monkeypatch.setenv("VAULT_TOKEN", TOKEN)
        total = 20_000
        proc = None
        try:
            half = total // 2
            produce(env, admin, half, seed=23)
            # KMS down at start: the processor waits (fail closed), it does not crash.
            proxy.refuse(True)
            proc = Processor(env, tmp_path, "kms", "--rotate-every-records", "2000")
            wait_until(lambda: _count_events(proc.log(), "kms_unavailable") == 1, 60, "kms_unavailable at start")
            assert proc.proc.poll() is None and committed(env, admin) == 0
            proxy.refuse(False)
            wait_until(lambda: committed(env, admin) == half, 60, "the first half")

            # KMS down mid-stream, while rotations are due every 2000 records: the second
            # half arrives during the outage.
            proxy.refuse(True)
            proxy.reset()
            produce(env, admin, half, seed=24)
            wait_until(lambda: _count_events(proc.log(), "kms_unavailable") >= 2, 60,
                       "kms_unavailable mid-stream")
            paused = committed(env, admin)
            # The outage lasts this long on purpose: the corridor must stay paused.
            time.sleep(4)
            assert committed(env, admin) == paused < total
            assert _count_events(proc.log(), "kms_unavailable") == 2  # once per outage
            _assert_no_plaintext(env, admin)

            proxy.refuse(False)
            wait_until(lambda: committed(env, admin) == total, 90, "the stream to finish")
            assert _count_events(proc.log(), "kms_available") == 2
            assert proc.stop() == 0
            report = verify(env, admin)
            assert report.ok and report.source == total == source_end(env, admin)
            _assert_no_plaintext(env, admin)
            key_ids = _check_decrypts_all(env, admin, VaultTransit(bao_url, TOKEN),
                                          report.delivered)
            assert len(key_ids) >= 5
        finally:
            if proc is not None:
                proc.close()
            drop_topics(zones, env)


def _assert_no_plaintext(env: CorridorEnv, admin: Any) -> None:
    """Every record that reached the destination's disk (read_uncommitted: aborted and
    open transactions too) holds ciphertext, not the source value, in contact_email."""
    sources = _sources(env, admin)
    dest = zone_endpoint(env.config, env.dest)
    reader = CorridorConsumer(env.config, _corridor_topic(env))  # no kek_provider: raw ciphertext
    try:
        count = 0
        for rec in read_to_end(dest, admin, _corridor_topic(env), uncommitted=True):
            [decoded] = reader.decode(rec)
            email = sources[decoded.lineage]["contact_email"]
            value = decoded.value["contact_email"]
            if email is None:
                continue
            assert isinstance(value, bytes) and value[:1] == b"\x01", decoded.lineage
            assert email.encode() not in rec.value
            count += 1
        assert count > 0
    finally:
        reader.close()
