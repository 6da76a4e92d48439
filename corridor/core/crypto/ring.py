"""``DataKeyRing``: the data keys of each corridor, by epoch, with rotation and retirement.

The writer side asks ``cipher(corridor)`` for the current epoch's cipher and
calls ``rotate_if_due(corridor)`` before each batch; a returned DataKey is
new and must be wrapped and published to ``_corridor.keys`` *before* the
first record it encrypts. The reader side ``add``s the keys it unwraps. Both
sides look keys up by id (a DataKeyRing is a ``Mapping[str, DataKey]``); an
unknown id raises KeyNotFound.

Old epochs stay readable until ``retire(corridor, before_epoch)``.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping

from corridor.core.config.rotation import RotationSchedule
from corridor.core.crypto.datakey import Clock, DataKey, Random, new_data_key
from corridor.core.crypto.field import DEFAULT_USAGE_LIMIT, FieldCipher
from corridor.core.crypto.nonce import NonceSource
from corridor.core.errors import CryptoError, KeyNotFound


class DataKeyRing(Mapping[str, DataKey]):
    """Data keys by id, and the current epoch of each corridor. Thread-safe."""

    def __init__(
        self,
        *,
        schedule: RotationSchedule | None = None,
        usage_limit: int = DEFAULT_USAGE_LIMIT,
        clock: Clock = time.time,
        random: Random = os.urandom,
        nonces: NonceSource | None = None,
    ) -> None:
        self.schedule = schedule or RotationSchedule()
        self._usage_limit = usage_limit
        self._clock = clock
        self._random = random
        self._nonces = nonces
        self._keys: dict[str, DataKey] = {}
        self._current: dict[str, FieldCipher] = {}
        self._lock = threading.RLock()

    # Mapping: key id -> DataKey, for decrypt_column(keys=...)
    def __getitem__(self, key_id: str) -> DataKey:
        try:
            return self._keys[key_id]
        except KeyError:
            raise KeyNotFound(f"no data key {key_id!r} in this key ring") from None

    def __iter__(self) -> Iterator[str]:
        return iter(list(self._keys))

    def __len__(self) -> int:
        return len(self._keys)

    def __repr__(self) -> str:
        return f"DataKeyRing(keys={sorted(self._keys)!r})"

    def add(self, key: DataKey) -> None:
        """Make ``key`` available for decryption (e.g. one unwrapped from ``_corridor.keys``)."""
        with self._lock:
            self._keys[key.key_id] = key

    def epochs(self, corridor: str) -> list[int]:
        return sorted(k.epoch for k in self._keys.values() if k.corridor == corridor)

    def cipher(self, corridor: str) -> FieldCipher:
        """The current epoch's cipher. Raises KeyNotFound before the first ``rotate``."""
        with self._lock:
            current = self._current.get(corridor)
        if current is None:
            raise KeyNotFound(f"corridor {corridor} has no current data key; rotate first")
        return current

    def rotate(self, corridor: str, at_least: int = 1) -> DataKey:
        """Start a new epoch with a fresh data key; returns it.

        The epoch is one past the highest known here, and at least ``at_least``
        (a processor passes one past the highest epoch already published, so
        restarts and several instances keep counting up).
        """
        with self._lock:
            epoch = max(max(self.epochs(corridor), default=0) + 1, at_least)
            key = new_data_key(corridor, epoch, random=self._random, clock=self._clock)
            if key.key_id in self._keys:
                raise CryptoError(f"data key id {key.key_id} drawn twice: bad random source")
            self._keys[key.key_id] = key
            self._current[corridor] = FieldCipher(
                key, usage_limit=self._usage_limit, nonces=self._nonces
            )
            return key

    def due(self, corridor: str) -> bool:
        """Whether the schedule (or a missing key) says the corridor needs a new epoch; the
        schedule's ``every_records`` counts this ring's encryptions under the key."""
        with self._lock:
            current = self._current.get(corridor)
        if current is None:
            return True
        age = self._clock() - current.key.created_at
        return self.schedule.reason(current.used, age) is not None

    def rotate_if_due(self, corridor: str) -> DataKey | None:
        """Rotate when ``due``; returns the new key (to wrap and publish) or None."""
        with self._lock:
            return self.rotate(corridor) if self.due(corridor) else None

    def retire(self, corridor: str, before_epoch: int) -> list[str]:
        """Forget the corridor's keys of epochs < ``before_epoch``; returns their ids.

        Ciphertexts under those ids can no longer be decrypted here. The current
        epoch is never retired.
        """
        with self._lock:
            current = self._current.get(corridor)
            gone = [
                k.key_id
                for k in self._keys.values()
                if k.corridor == corridor
                and k.epoch < before_epoch
                and (current is None or k.key_id != current.key_id)
            ]
            for key_id in gone:
                del self._keys[key_id]
            return sorted(gone)
