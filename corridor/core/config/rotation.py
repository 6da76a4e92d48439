"""When a running corridor rotates its data key on its own: a pure value of the corridor file.

``RotationSchedule`` (every N records / T seconds), ``schedule_from_flags`` (the
``corridor run --rotate-every-*`` flags) and ``rotation_for`` (flags, else the
corridor's ``rotate``, else none). Moved from corridor/keys/rotation.py.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

from corridor.core.errors import CryptoError


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


class Rotating(Protocol):
    """What ``rotation_for`` reads of a corridor (a ``Corridor`` is one)."""

    @property
    def rotate(self) -> RotationSchedule | None: ...


def rotation_for(corridor: Rotating, flags: RotationSchedule | None) -> RotationSchedule | None:
    """The schedule ``corridor`` runs with: ``flags`` when given (they replace the file's
    ``rotate`` as a whole, not key by key), else the corridor's ``rotate``, else None
    (rotate only when ``corridor keys rotate`` asks)."""
    return flags if flags is not None else corridor.rotate
