"""Waiting out a schema registry that does not answer: a registry outage delays, never decides.

``until_available(fn, ...)`` calls ``fn`` until it stops raising ``RegistryUnavailable``,
pausing with backoff on ``stop`` (so Ctrl-C still stops the caller), and reports the
registry's state through ``notify`` as ``registry_unavailable`` / ``registry_available``
with the field ``zone`` (the processor logs one line per state change and sets the
``corridor_registry_up`` metric from them). A ``RegistryError`` (a refusal) is raised at
once: asking again would get the same answer.

Does not own: what to ask (the caller's ``fn``), logging (the caller's ``notify``).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, Protocol, TypeVar

from corridor.core.errors import RegistryUnavailable

T = TypeVar("T")
Notify = Callable[[str, dict[str, Any]], None]
FIRST_PAUSE_S, CEILING_S = 0.5, 5.0


class Stopping(Protocol):
    """What ``until_available`` needs of a ``threading.Event``."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class Stopped(Exception):
    """``stop`` was set while the registry did not answer: nothing was decided."""


def until_available(fn: Callable[[], T], *, zone: str, notify: Notify, stop: Stopping,
                    clock: Callable[[], float] = time.monotonic) -> T:
    """``fn()`` once the registry answers. Raises ``Stopped`` when ``stop`` is set while
    waiting, and any other error of ``fn`` (``RegistryError`` included) at once."""
    pause, since = FIRST_PAUSE_S, None
    step = f"registry {zone}"
    while True:
        try:
            value = fn()
        except RegistryUnavailable as exc:
            since = clock() if since is None else since
            notify("registry_unavailable", {"step": step, "zone": zone, "url": exc.url,
                                            "error": exc.message})
            if stop.is_set() or stop.wait(pause):
                raise Stopped(f"stopped while the schema registry of zone {zone} was "
                              "unavailable") from exc
            pause = min(pause * 2, CEILING_S)
            continue
        fields: dict[str, Any] = {"step": step, "zone": zone}
        if since is not None:
            fields["waited_s"] = round(clock() - since, 1)
        notify("registry_available", fields)
        return value
