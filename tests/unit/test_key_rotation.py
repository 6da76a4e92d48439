"""Rotation schedule, operator commands, retirement planning, and the processor's key
publisher (rotation, fail-closed wrapping while the KMS is down) without a broker."""

from __future__ import annotations

import threading
from dataclasses import replace
from pathlib import Path
from typing import Any

import click
import pytest
from click.testing import CliRunner

from corridor.commands.keys import keys as keys_cli
from corridor.commands.keys import parse_duration
from corridor.core import topics
from corridor.core.config.rotation import RotationSchedule
from corridor.core.crypto import DataKey, DataKeyRing, WrappedKey
from corridor.core.crypto.rotation import (
    RETIRE,
    ROTATE,
    ControlCommand,
    latest_epoch,
    plan_retirement,
)
from corridor.core.errors import CryptoError, KeyProviderUnavailable
from corridor.keys import LocalKekProvider
from corridor.processor.keys import KeyPublisher

# -- schedule ------------------------------------------------------------------


def test_schedule_reasons() -> None:
    s = RotationSchedule(every_records=10, every_seconds=60)
    assert s.reason(9, 59.9) is None
    assert s.reason(10, 0) == "records"
    assert s.reason(0, 60) == "age"
    assert RotationSchedule().reason(10**9, 10**9) is None
    with pytest.raises(CryptoError):
        RotationSchedule(every_records=0)
    with pytest.raises(CryptoError):
        RotationSchedule(every_seconds=-1)


# -- control commands ------------------------------------------------------------


def test_control_command_round_trip_and_garbage() -> None:
    c = ControlCommand(ROTATE, "hk-eu", "r1", 7)
    assert c.key == b"rotate|hk-eu"
    assert ControlCommand.parse(c.to_json()) == c
    explode = b'{"action": "explode", "corridor": "x", "request_id": "1"}'
    for junk in (None, b"", b"{", b"[]", explode, b'{"action": "rotate"}'):
        assert ControlCommand.parse(junk) is None
    with pytest.raises(CryptoError):
        ControlCommand("explode", "x", "1")


# -- retirement ----------------------------------------------------------------------


def wrapped(corridor: str, epoch: int, created: float, suffix: str = "") -> WrappedKey:
    return WrappedKey(f"{corridor}-dek-e{epoch}-{suffix or epoch:0>8}", corridor, epoch, created,
                      "eu", "eu-kek-x", b"w" * 60)


def test_retirement_respects_bound_grace_and_newest() -> None:
    keys = [wrapped("c", 1, 100.0), wrapped("c", 2, 200.0), wrapped("c", 3, 300.0),
            wrapped("other", 1, 0.0)]
    assert latest_epoch(keys, "c") == 3 and latest_epoch(keys, "nope") == 0
    # At t=350 with 100 s grace: epoch 1's successor (t=200) is old enough, epoch 2's is not.
    plan = plan_retirement(keys, "c", before_epoch=3, grace_s=100, now=350)
    assert [k.epoch for k in plan.retire] == [1]
    assert [k.epoch for k in plan.in_grace] == [2]
    assert plan.newest is not None and plan.newest.epoch == 3
    # The newest key is never retired, whatever the bound.
    plan = plan_retirement(keys, "c", before_epoch=99, grace_s=0, now=350)
    assert [k.epoch for k in plan.retire] == [1, 2]
    assert plan_retirement(keys, "none", 5, 0, 0).retire == ()


def test_retirement_with_two_instances_on_one_epoch() -> None:
    # Two instances drew epoch 2 at 200 and 210; the older one is superseded by the newer.
    keys = [wrapped("c", 2, 200.0, "a"), wrapped("c", 2, 210.0, "b")]
    plan = plan_retirement(keys, "c", before_epoch=3, grace_s=0, now=500)
    assert [k.key_id for k in plan.retire] == ["c-dek-e2-0000000a"]


def test_durations() -> None:
    assert [parse_duration(t) for t in ("0", "90", "90s", "30m", "1h", "7d")] == [
        0, 90, 90, 1800, 3600, 7 * 86400]
    for bad in ("", "h", "1y", "-5m", "soon"):
        with pytest.raises(click.BadParameter):
            parse_duration(bad)


def test_rotate_and_retire_are_cli_commands() -> None:
    out = CliRunner().invoke(keys_cli, ["--help"]).output
    assert "rotate" in out and "retire" in out
    out = CliRunner().invoke(keys_cli, ["retire", "--help"]).output
    assert "--before-epoch" in out and "--grace" in out


def test_control_topic_is_planned_in_destination() -> None:
    from corridor.core.config import load_config

    config = load_config(Path(__file__).resolve().parents[2] / "corridors.yaml")
    plans = topics.topic_plan(config)
    dests = {c.destination for c in config.corridors.values()}
    assert {p.zone for p in plans if p.name == topics.CONTROL} == dests


# -- the processor's key publisher -----------------------------------------------------


class FlakyProvider:
    """Wraps with a local KEK; raises KeyProviderUnavailable while ``down``."""

    def __init__(self, folder: Path) -> None:
        self.ring = LocalKekProvider(folder)
        self.ring.init("eu")
        self.down = 0  # how many more calls fail
        self.calls = 0

    def kek_id(self, zone: str) -> str:
        return self.ring.kek_id(zone)

    def wrap(self, key: DataKey, zone: str) -> WrappedKey:
        self.calls += 1
        if self.down:
            self.down -= 1
            raise KeyProviderUnavailable("http://kms: transit encrypt failed (ConnectionError)")
        return self.ring.wrap(key, zone)

    def unwrap(self, w: WrappedKey) -> DataKey:
        return self.ring.unwrap(w)


class FakeControl:
    def __init__(self) -> None:
        self.queue: list[ControlCommand] = []

    def poll(self) -> list[ControlCommand]:
        out, self.queue = self.queue, []
        return out

    def close(self) -> None:
        pass


class Log:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict[str, Any]]] = []

    def info(self, event: str, **fields: Any) -> None:
        self.events.append((event, fields))


NO_SCHEDULE = RotationSchedule()
NO_POLICY = RotationSchedule()


def publisher(tmp_path: Path, schedule: RotationSchedule = NO_SCHEDULE,
              policy: RotationSchedule = NO_POLICY, control: FakeControl | None = None,
              first_epoch: int = 1) -> tuple[KeyPublisher, FlakyProvider, list[Any], list[float]]:
    ring = DataKeyRing(schedule=policy)
    ring.rotate("hk-eu", at_least=first_epoch)
    provider = FlakyProvider(tmp_path / "keys")
    notes: list[Any] = []
    waits: list[float] = []

    def wait(_stop: threading.Event, seconds: float) -> bool:
        waits.append(seconds)
        return False

    pub = KeyPublisher("hk-eu", "eu", ring, provider, schedule,
                       lambda e, f: notes.append((e, f)), Log(),
                       (lambda: control) if control is not None else None, wait=wait)
    return pub, provider, notes, waits


def test_first_key_is_wrapped_before_use_and_published_once(tmp_path: Path) -> None:
    pub, provider, _, _ = publisher(tmp_path, first_epoch=5)
    assert pub.pending == {}
    assert pub.prepare(threading.Event())
    [(key_id, value)] = pub.pending.items()
    assert pub.cipher.key_id == key_id and WrappedKey.from_json(value).epoch == 5
    assert provider.ring.unwrap(WrappedKey.from_json(value)).material == pub.cipher.key.material
    pub.committed({key_id.encode()})
    assert pub.pending == {} and pub.prepare(threading.Event()) and pub.pending == {}


def test_kms_down_pauses_until_it_answers_and_says_so_once_per_state(tmp_path: Path) -> None:
    pub, provider, notes, waits = publisher(tmp_path)
    provider.down = 6
    assert pub.prepare(threading.Event())
    assert provider.calls == 7 and len(pub.pending) == 1
    assert waits == [0.2, 0.4, 0.8, 1.6, 3.2, 5.0]  # backoff with a ceiling
    events = [e for e, _ in notes]
    assert set(events[:-1]) == {"kms_unavailable"} and events[-1] == "kms_available"
    assert all(f["step"] == "kms" for _, f in notes)  # one state key: logged once per change


def test_stop_while_kms_down_returns_false_and_publishes_nothing(tmp_path: Path) -> None:
    pub, provider, _, _ = publisher(tmp_path)
    provider.down = 10**9
    stop = threading.Event()
    stop.set()
    pub._wait = lambda s, _t: s.is_set()  # type: ignore[method-assign]
    assert not pub.prepare(stop)
    assert pub.pending == {}


def test_rotation_every_n_records(tmp_path: Path) -> None:
    pub, _, _, _ = publisher(tmp_path, schedule=RotationSchedule(every_records=1000))
    stop = threading.Event()
    ids = []
    for _ in range(25):  # 25 batches of 400 records: 10k records
        assert pub.prepare(stop)
        ids.append(pub.cipher.key_id)
        pub.counted(400)
    distinct = list(dict.fromkeys(ids))
    # a new epoch at the first batch boundary at or past each 1000 records: 0, 1200, 2400, ...
    assert len(distinct) == 9
    assert [pub.data_keys[k].epoch for k in distinct] == list(range(1, 10))
    assert set(pub.pending) == set(distinct)  # each wrapped, waiting for its transaction


def test_usage_policy_still_rotates(tmp_path: Path) -> None:
    import pyarrow as pa

    pub, _, _, _ = publisher(tmp_path, policy=RotationSchedule(every_records=3))
    stop = threading.Event()
    assert pub.prepare(stop)
    first = pub.cipher.key_id
    pub.cipher.encrypt_column(pa.array(["a", "b", "c"]), corridor="hk-eu", dataset="d",
                              field="f")
    assert pub.prepare(stop) and pub.cipher.key_id != first


def test_operator_rotate_and_retire_commands(tmp_path: Path) -> None:
    control = FakeControl()
    pub, _, _, _ = publisher(tmp_path, control=control)
    stop = threading.Event()
    assert pub.prepare(stop) and pub.cipher.key.epoch == 1
    control.queue.append(ControlCommand(ROTATE, "hk-eu", "r1", min_epoch=4))
    pub._control_at = 0.0  # the once-a-second throttle, skipped here
    assert pub.prepare(stop) and pub.cipher.key.epoch == 4
    # A retirement below the current epoch changes nothing; one above it moves on.
    control.queue.append(ControlCommand(RETIRE, "hk-eu", "r2", min_epoch=3))
    pub._control_at = 0.0
    assert pub.prepare(stop) and pub.cipher.key.epoch == 4
    control.queue.append(ControlCommand(RETIRE, "hk-eu", "r3", min_epoch=9))
    pub._control_at = 0.0
    assert pub.prepare(stop) and pub.cipher.key.epoch == 9


def test_wrapped_records_hold_no_key_material(tmp_path: Path) -> None:
    pub, _, _, _ = publisher(tmp_path)
    assert pub.prepare(threading.Event())
    [value] = pub.pending.values()
    material = pub.cipher.key.material.reveal()
    assert material not in value and material.hex().encode() not in value
    assert replace(WrappedKey.from_json(value)).key_id == pub.cipher.key_id
