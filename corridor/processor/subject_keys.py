"""The subject keys of one running corridor's erasable fields: found, drawn, wrapped, published.

The pure pipeline asks :meth:`SubjectKeyKeeper.resolve` once per batch for the keys of its
(subject id, scope) pairs (``corridor.core.policy.erasable``). For each pair:

  1. the key id is the book's current one (``SubjectKeyBook.current``: generation 0, or
     the first generation not erased);
  2. a key this runner holds is used as is; a key published before (by this runner in
     an earlier life, or the partition's previous owner) is unwrapped with the
     destination's KEK; otherwise a key is drawn (once) and wrapped for the destination;
  3. a drawn key's record waits in ``pending[scope]`` until a destination transaction of
     that scope's source partition commits it (``committed``): it is in
     ``_corridor.subject_keys`` before, or in the same transaction as, the first value
     sealed under it, and never in another partition's transaction (whose owner could
     have drawn another key under the same id).

Fails closed: while the key provider does not answer, ``resolve`` waits (``kms_unavailable``
once, then ``kms_available``); when the runner stops meanwhile it raises :class:`Stopped`
and the batch is dropped (its stored offset brings it back).

The book is read from the topic when a scope's producer changes (:meth:`owned`: an
assignment or a new producer fenced the previous owner, whose committed keys are then
visible), so a new owner finds the keys of the one before. An erasure announced on
``_corridor.control`` (``corridor erase``) makes the runner drop the erased keys and
re-read the book: the subject's next values get a key of the next generation.

Does not own: the key formats (``core.crypto.subject_keys``), sealing (``core.policy``),
the corridor's own data key (``processor.keys``).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Collection, Mapping
from typing import Any

from corridor.core.crypto.datakey import Clock, DataKey, Random, WrappedKey
from corridor.core.crypto.secret import SecretBytes
from corridor.core.crypto.subject_keys import (
    SubjectKeyBook,
    SubjectKeyRecord,
    key_id_secret,
    new_subject_key,
    subject_tag,
)
from corridor.core.errors import CorridorError, KeyProviderUnavailable
from corridor.core.policy.erasable import ErasableSealing, Pair, SubjectKeys
from corridor.kafka.subject_keys_topic import ErasureListener
from corridor.keys.provider import KekProvider

Notify = Callable[[str, dict[str, Any]], None]
Wait = Callable[[threading.Event, float], bool]
CONTROL_EVERY_S = 1.0
RETRY_FIRST_S, RETRY_CEILING_S = 0.2, 5.0


class Stopped(CorridorError):
    """The runner stopped while the key provider did not answer: drop the batch."""


class SubjectKeyKeeper:
    """Subject keys of ``corridor`` (to ``destination``) for one runner. ``read_book`` reads
    the destination's subject key topic; ``listen`` makes the control-topic listener."""

    def __init__(self, corridor: str, destination: str, subject_key: SecretBytes,
                 provider: KekProvider, read_book: Callable[[], SubjectKeyBook],
                 notify: Notify, log: Any,
                 listen: Callable[[], ErasureListener] | None = None, *,
                 random: Random = os.urandom, clock: Clock = time.time,
                 wait: Wait = lambda stop, seconds: stop.wait(seconds)) -> None:
        self.corridor, self.destination, self.provider = corridor, destination, provider
        self._secret = key_id_secret(subject_key)
        self._read_book, self._notify, self.log = read_book, notify, log
        self._listen, self._random, self._clock, self._wait = listen, random, clock, wait
        self.book: SubjectKeyBook | None = None
        self.sealing = ErasableSealing(subject_key, self.resolve)
        self.pending: dict[str, dict[str, bytes]] = {}  # scope -> key id -> record
        self._keys: dict[str, DataKey] = {}
        self._ids: dict[Pair, str] = {}  # the current key id of a pair (an HMAC each)
        self._scope_keys: dict[str, set[str]] = {}
        self._owners: dict[str, object] = {}
        self._listener: ErasureListener | None = None
        self._listened_at = 0.0
        self.stop = threading.Event()

    def owned(self, owners: Mapping[str, object], stop: threading.Event) -> None:
        """Before a round: *owners* maps each scope of the round to its producer. A scope
        whose producer is new since the last round forgets its keys; then the book is
        read again (once for all of them). Also applies announced erasures. *stop*: the
        runner's, ends a wait for the key provider."""
        self.stop = stop
        self._poll_erasures()
        changed = [s for s, owner in owners.items() if self._owners.get(s) is not owner]
        for scope in changed:
            self._owners[scope] = owners[scope]
            self.pending.pop(scope, None)
            for key_id in self._scope_keys.pop(scope, set()):
                self._keys.pop(key_id, None)
        if changed or self.book is None:
            self._ids.clear()
            self.book = self._read_book()
            self.log.info("subject_keys_loaded", scopes=len(changed))

    def pending_for(self, scope: str) -> dict[str, bytes]:
        return self.pending.get(scope, {})

    def committed(self, scope: str, key_ids: Collection[bytes | None]) -> None:
        """These subject key records of *scope* are in a committed transaction."""
        waiting = self.pending.get(scope, {})
        for key_id in [k for k in waiting if k.encode() in key_ids]:
            del waiting[key_id]

    def resolve(self, pairs: Collection[Pair]) -> SubjectKeys:
        """The key source of ``core.policy.erasable`` (see the module docstring)."""
        book = self.book if self.book is not None else self._load()
        ids: dict[Pair, str] = {}
        for pair in sorted(pairs):
            key_id = self._ids.get(pair, "")
            if key_id not in self._keys:
                key_id = self._ids[pair] = self._find(book, *pair)
            ids[pair] = key_id
        return SubjectKeys(ids, {k: self._keys[k] for k in set(ids.values())})

    def _find(self, book: SubjectKeyBook, subject: str, scope: str) -> str:
        """The current key id of (subject, scope), its key unwrapped or drawn if not held."""
        key_id, generation, record = book.current(self._secret, self.corridor,
                                                  self.destination, subject, scope)
        if key_id not in self._keys:
            if record is not None:
                self._keys[key_id] = self._kms(lambda: self.provider.unwrap(record.wrapped),
                                               key_id)
            else:
                self._draw(key_id, generation, subject, scope, book)
            self._scope_keys.setdefault(scope, set()).add(key_id)
        return key_id

    def close(self) -> None:
        if self._listener is not None:
            self._listener.close()

    def _load(self) -> SubjectKeyBook:
        self.book = self._read_book()
        return self.book

    def _draw(self, key_id: str, generation: int, subject: str, scope: str,
              book: SubjectKeyBook) -> None:
        key = new_subject_key(key_id, self.corridor, generation, random=self._random,
                              clock=self._clock)
        wrapped = self._kms(lambda: self.provider.wrap(key, self.destination), key_id)
        record = SubjectKeyRecord(wrapped, subject_tag(self._secret, self.corridor, subject))
        value = record.to_json()
        book.apply(key_id.encode(), value)  # the next batch finds it (committed or replayed)
        self.pending.setdefault(scope, {})[key_id] = value
        self._keys[key_id] = key
        self.log.info("subject_key_drawn", key_id=key_id, generation=generation, scope=scope)

    def _kms(self, call: Callable[[], Any], key_id: str) -> Any:
        """``call()`` (a wrap or an unwrap), retried while the provider does not answer."""
        delay, waited = RETRY_FIRST_S, False
        while True:
            try:
                found = call()
                break
            except KeyProviderUnavailable as exc:
                self._notify("kms_unavailable", {"step": "subject keys", "error": str(exc),
                                                 "key_id": key_id})
                waited = True
                if self._wait(self.stop, delay):
                    raise Stopped(f"stopped while the key provider of {self.destination} "
                                  "did not answer") from None
                delay = min(RETRY_CEILING_S, delay * 2)
        if waited:
            self._notify("kms_available", {"step": "subject keys", "key_id": key_id})
        assert isinstance(found, (DataKey, WrappedKey))
        return found

    def _poll_erasures(self) -> None:
        now = time.monotonic()
        if self._listen is None or now - self._listened_at < CONTROL_EVERY_S:
            return
        self._listened_at = now
        if self._listener is None:
            try:
                self._listener = self._listen()
            except CorridorError as exc:
                self._notify("control_unavailable", {"step": "subject keys control",
                                                     "error": str(exc)})
                return
        erased = {k for news in self._listener.erasures() for k in news.key_ids}
        if not erased:
            return
        for key_id in erased:
            self._keys.pop(key_id, None)
            for scope_keys in self._scope_keys.values():
                scope_keys.discard(key_id)
        self.sealing.forget(erased)
        self._ids.clear()
        self.book = self._read_book()
        self.log.info("subject_keys_erased", key_ids=len(erased))
