"""Key rotation and retirement commands as values (pure: no Kafka, no clock of its own).

- ``ControlCommand``: what ``corridor keys rotate|retire`` asks running
  processors to do; a record of ``_corridor.control`` (key
  ``<action>|<corridor>``, JSON value).
- ``plan_retirement``: which published data keys of a corridor may be retired,
  given an epoch bound and a grace period. ``latest_epoch``: the highest epoch.

The rotation *schedule* is corridor configuration: corridor.core.config.rotation.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass

from corridor.core.crypto.datakey import WrappedKey
from corridor.core.errors import CryptoError

ROTATE = "rotate"
RETIRE = "retire"
ACTIONS = (ROTATE, RETIRE)


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
