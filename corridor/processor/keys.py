"""The data keys of one running corridor: rotation, wrapping, publishing. Fails closed.

A runner that encrypts asks ``KeyPublisher.prepare(stop)`` before every batch.
``prepare``:

  1. reads operator commands from ``_corridor.control`` (at most once a second);
  2. starts a new epoch when one is due (schedule, key ring policy, or an
     operator's ``rotate``/``retire``);
  3. wraps the current key with the destination zone's key provider if it is
     not wrapped yet, retrying while the provider is unreachable (the state is
     logged once: ``kms_unavailable``, then ``kms_available``). Until then it
     does not return, so no record is encrypted under a key that is not
     published, and nothing crosses at all (the corridor pauses); it returns
     False only when ``stop`` is set first.

The wrapped key waits in ``pending`` until a destination transaction carrying
it commits (``committed``), so it is always in ``_corridor.keys`` before, or in
the same transaction as, the first record that uses it.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Collection
from typing import Any

from corridor.core.config.rotation import RotationSchedule
from corridor.core.crypto import DataKey, DataKeyRing, FieldCipher
from corridor.core.crypto.rotation import ROTATE
from corridor.core.errors import CorridorError, KeyProviderUnavailable
from corridor.kafka.keys_topic import ControlListener
from corridor.keys.provider import KekProvider

Notify = Callable[[str, dict[str, Any]], None]
# Waits up to the given seconds unless the event is set first; True when it was set.
Wait = Callable[[threading.Event, float], bool]
CONTROL_EVERY_S = 1.0
RETRY_FIRST_S, RETRY_CEILING_S = 0.2, 5.0


class KeyPublisher:
    """Keys of ``corridor`` for a runner. ``control`` makes the control-topic listener."""

    def __init__(self, corridor: str, destination: str, data_keys: DataKeyRing, provider: KekProvider,
                 schedule: RotationSchedule, notify: Notify, log: Any,
                 control: Callable[[], ControlListener] | None = None,
                 wait: Wait = lambda stop, seconds: stop.wait(seconds)) -> None:
        self.corridor, self.destination = corridor, destination
        self.data_keys, self.provider, self.schedule = data_keys, provider, schedule
        self._notify, self.log, self._make_control, self._wait = notify, log, control, wait
        self.pending: dict[str, bytes] = {}  # key id -> wrapped key record, not yet committed
        self._unwrapped: DataKey | None = data_keys[data_keys.cipher(corridor).key_id]
        self._records = 0
        self._since = time.monotonic()
        self._asked: tuple[str, int] | None = None  # (why, at least epoch) from an operator
        self._control: ControlListener | None = None
        self._control_at = 0.0
        self._reason = "start"

    @property
    def cipher(self) -> FieldCipher:
        return self.data_keys.cipher(self.corridor)

    def prepare(self, stop: threading.Event) -> bool:
        """Make the current key usable (see the module doc). False: stopped before it was."""
        self._poll_control()
        reason = self._due()
        if reason is not None:
            at_least = self._asked[1] if self._asked else 1
            self._asked = None
            self._unwrapped = self.data_keys.rotate(self.corridor, at_least=at_least)
            self._records, self._since, self._reason = 0, time.monotonic(), reason
        return self._wrap(stop) if self._unwrapped is not None else True

    def counted(self, records: int) -> None:
        """``records`` more source records were processed under the current key."""
        self._records += records

    def committed(self, key_ids: Collection[bytes | None]) -> None:
        """These key records are now in a committed destination transaction."""
        for key_id in [k for k in self.pending if k.encode() in key_ids]:
            del self.pending[key_id]

    def close(self) -> None:
        if self._control is not None:
            self._control.close()

    def _due(self) -> str | None:
        if self._asked is not None:
            current = self.cipher.key
            if self._asked[0] == ROTATE or current.epoch < self._asked[1]:
                return self._asked[0]
            self._asked = None  # a retirement that does not touch the current epoch
        if self.data_keys.due(self.corridor):
            return "usage"
        return self.schedule.reason(self._records, time.monotonic() - self._since)

    def _poll_control(self) -> None:
        now = time.monotonic()
        if self._make_control is None or now - self._control_at < CONTROL_EVERY_S:
            return
        self._control_at = now
        if self._control is None:
            try:
                self._control = self._make_control()
                self._notify("control_listening", {"step": "control"})
            except CorridorError as exc:
                # Rotation by schedule still works; operator commands wait for the topic.
                self._notify("control_unavailable", {"step": "control", "error": str(exc)})
                return
        for command in self._control.poll():
            self._asked = (command.action, command.min_epoch)
            self.log.info("key_command", action=command.action, request_id=command.request_id,
                          min_epoch=command.min_epoch)

    def _wrap(self, stop: threading.Event) -> bool:
        key = self._unwrapped
        assert key is not None
        delay, waited = RETRY_FIRST_S, False
        while True:
            try:
                wrapped = self.provider.wrap(key, self.destination)
                break
            except KeyProviderUnavailable as exc:
                # Fail closed: nothing is encrypted, so nothing crosses, until the KMS answers.
                self._notify("kms_unavailable", {"step": "kms", "error": str(exc),
                                                 "key_id": key.key_id})
                waited = True
                if self._wait(stop, delay):
                    return False
                delay = min(RETRY_CEILING_S, delay * 2)
        if waited:
            self._notify("kms_available", {"step": "kms", "key_id": key.key_id})
        self.pending[key.key_id] = wrapped.to_json()
        self._unwrapped = None
        self.log.info("key_rotated" if self._reason != "start" else "key_drawn",
                      key_id=key.key_id, epoch=key.epoch, reason=self._reason)
        return True
