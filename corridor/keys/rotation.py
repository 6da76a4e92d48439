"""Key rotation and retirement as values (pure: no Kafka, no clock of its own).

- ``RotationSchedule``: when a running processor starts a new epoch on its own
  (every N records, every T seconds); ``rotation_for`` picks a corridor's:
  the ``corridor run --rotate-every-*`` flags, else its ``rotate`` in the
  corridor file, else none.
- ``ControlCommand``: what ``corridor keys rotate|retire`` asks running
  processors to do; it travels as a record of ``_corridor.control`` in the
  destination cluster (key ``<action>|<corridor>``, JSON value), so it reaches
  every instance of the corridor, on any machine.
- ``plan_retirement``: which published data keys of a corridor may be retired
  (tombstoned in ``_corridor.keys``), given an epoch bound and a grace period.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from corridor.crypto.datakey import WrappedKey
from corridor.errors import CryptoError

if TYPE_CHECKING:
    from corridor.config import Corridor

ROTATE = "rotate"
RETIRE = "retire"
ACTIONS = (ROTATE, RETIRE)


@dataclass(frozen=True)
class RotationSchedule:
    """Rotate after ``every_records`` records or ``every_seconds``, whichever comes first.

    None disables a trigger. Counted per processor instance from the moment
    its current key was drawn; checked before each batch, so a rotation
    happens at the first batch boundary at or past the bound.
    """

    every_records: int | None = None
    every_seconds: float | None = None

    def __post_init__(self) -> None:
        if self.every_records is not None and self.every_records < 1:
            raise CryptoError(f"rotation every {self.every_records} records: must be >= 1")
        if self.every_seconds is not None and self.every_seconds <= 0:
            raise CryptoError(f"rotation every {self.every_seconds} s: must be > 0")

    def reason(self, records: int, age_s: float) -> str | None:
        """Why a key that encrypted ``records`` records over ``age_s`` seconds is due, or None."""
        if self.every_records is not None and records >= self.every_records:
            return "records"
        if self.every_seconds is not None and age_s >= self.every_seconds:
            return "age"
        return None


def schedule_from_flags(every_records: int | None,
                        every_minutes: float | None) -> RotationSchedule | None:
    """The schedule the ``--rotate-every-records/--rotate-every-minutes`` flags ask for;
    None when neither is given (the corridor file decides)."""
    if every_records is None and every_minutes is None:
        return None
    return RotationSchedule(every_records, None if every_minutes is None else every_minutes * 60)


def rotation_for(corridor: Corridor, flags: RotationSchedule | None) -> RotationSchedule | None:
    """The schedule ``corridor`` runs with: ``flags`` when given (they replace the file's
    ``rotate`` as a whole, not key by key), else the corridor's ``rotate``, else None
    (rotate only when ``corridor keys rotate`` asks)."""
    return flags if flags is not None else corridor.rotate


@dataclass(frozen=True)
class ControlCommand:
    """An operator's request to the running processors of ``corridor``.

    ``rotate``: start a new epoch, at least ``min_epoch``. ``retire``: epochs
    below ``min_epoch`` are being retired; a processor still on one rotates.
    """

    action: str
    corridor: str
    request_id: str
    min_epoch: int = 1

    def __post_init__(self) -> None:
        if self.action not in ACTIONS:
            raise CryptoError(f"unknown control action {self.action!r}")

    @property
    def key(self) -> bytes:
        return f"{self.action}|{self.corridor}".encode()

    def to_json(self) -> bytes:
        return json.dumps({"v": 1, "action": self.action, "corridor": self.corridor,
                           "request_id": self.request_id, "min_epoch": self.min_epoch},
                          sort_keys=True).encode()

    @classmethod
    def parse(cls, value: bytes | None) -> ControlCommand | None:
        """The command in a ``_corridor.control`` value; None for anything else (ignored)."""
        if value is None:
            return None
        try:
            obj = json.loads(value)
            return cls(str(obj["action"]), str(obj["corridor"]), str(obj["request_id"]),
                       int(obj.get("min_epoch", 1)))
        except (ValueError, KeyError, TypeError, AttributeError, CryptoError):
            return None


def latest_epoch(keys: Sequence[WrappedKey], corridor: str) -> int:
    """Highest epoch published for ``corridor`` (0 when none)."""
    return max((k.epoch for k in keys if k.corridor == corridor), default=0)


@dataclass(frozen=True)
class Retirement:
    """Outcome of ``plan_retirement``: keys to tombstone, and keys the grace period keeps."""

    retire: tuple[WrappedKey, ...]
    in_grace: tuple[WrappedKey, ...]
    newest: WrappedKey | None


def _order(k: WrappedKey) -> tuple[int, float, str]:
    return (k.epoch, k.created_at, k.key_id)


def plan_retirement(keys: Sequence[WrappedKey], corridor: str, before_epoch: int,
                    grace_s: float, now: float) -> Retirement:
    """Keys of ``corridor`` with epoch < ``before_epoch`` that may be retired at ``now``.

    A key may go once a newer key (higher epoch, or same epoch drawn later) has
    existed for ``grace_s`` seconds: records encrypted under it had that long
    to be read. The newest key is never retired (a processor may be using it).
    """
    mine = sorted((k for k in keys if k.corridor == corridor), key=_order)
    if not mine:
        return Retirement((), (), None)
    newest = mine[-1]
    retire: list[WrappedKey] = []
    grace: list[WrappedKey] = []
    for i, key in enumerate(mine[:-1]):
        if key.epoch >= before_epoch:
            continue
        superseded = min(k.created_at for k in mine[i + 1:])
        (retire if now - superseded >= grace_s else grace).append(key)
    return Retirement(tuple(retire), tuple(grace), newest)
