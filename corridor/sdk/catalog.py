"""The catalog of one destination zone, as a consumer needs it: egress schemas from
``_corridor.schemas``, data keys from ``_corridor.keys`` and subject keys from
``_corridor.subject_keys``, unwrapped with the zone's KEK when first asked for.

Does not own: decryption (``corridor.sdk.decrypt``), reading corridor topics
(``corridor.sdk.client``), the key formats (``corridor.core.crypto``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping

from corridor.core import topics
from corridor.core.crypto import DataKey, WrappedKey
from corridor.core.crypto.subject_keys import ErasureMarker
from corridor.core.errors import CryptoError, Erased, KafkaUnavailable, KeyNotFound, SchemaError
from corridor.core.schema import AvroSchema, parse_schema
from corridor.kafka.clients import Endpoint
from corridor.kafka.io import read_to_end
from corridor.kafka.subject_keys_topic import SubjectKeyFollower
from corridor.keys.provider import KekProvider
from corridor.zones.credentials import Principal


class Catalog(Mapping[str, DataKey]):
    """Egress schemas and data keys of one destination zone, read on demand.

    Implements the key lookup ``corridor.core.crypto`` expects: an unknown key id
    re-reads ``_corridor.subject_keys`` (followed from its first use on) and
    ``_corridor.keys`` once, then raises KeyNotFound; the id of an erased subject key
    raises Erased.
    """

    def __init__(self, endpoint: Endpoint, principal: Principal,
                 provider: KekProvider | None = None) -> None:
        self.endpoint, self.principal, self.provider = endpoint, principal, provider
        self.schemas: dict[bytes, AvroSchema] = {}
        self.data_keys: dict[str, DataKey] = {}
        self.wrapped: dict[str, WrappedKey] = {}
        self._tried: set[str] = set()
        self._subjects: SubjectKeyFollower | None = None
        self._subject_keys: dict[str, DataKey] = {}
        self._subject_tried: set[str] = set()

    def refresh_schemas(self) -> None:
        for rec in read_to_end(self.endpoint, self.principal, topics.SCHEMAS):
            if rec.value is None:
                continue
            try:
                schema = parse_schema(json.loads(rec.value), source=topics.SCHEMAS)
            except (ValueError, SchemaError):
                continue  # a foreign or broken entry is not ours to judge here
            self.schemas[schema.fingerprint] = schema

    def schema(self, fingerprint: bytes) -> AvroSchema | None:
        if fingerprint not in self.schemas:
            self.refresh_schemas()
        return self.schemas.get(fingerprint)

    def __getitem__(self, key_id: str) -> DataKey:
        key = self.data_keys.get(key_id)
        if key is not None:
            return key
        if self.provider is None:
            raise KeyNotFound(f"no key provider to unwrap data key {key_id!r}")
        subject_key = self._subject_key(key_id)
        if subject_key is not None:
            return subject_key
        if key_id not in self.wrapped and key_id not in self._tried:
            self._tried.add(key_id)
            self.refresh_keys()
        wrapped = self.wrapped.get(key_id)
        if wrapped is None:
            raise KeyNotFound(f"{self.endpoint.zone}: no data key {key_id!r} in {topics.KEYS}")
        # Only the key asked for is unwrapped: the topic also holds keys of other KEKs.
        key = self.data_keys[key_id] = self.provider.unwrap(wrapped)
        return key

    def _subject_key(self, key_id: str) -> DataKey | None:
        """The subject key *key_id* (None: not one); Erased when it was erased."""
        assert self.provider is not None
        state = self._subjects.book.get(key_id) if self._subjects is not None else None
        if state is None and key_id not in self._subject_tried:
            self._subject_tried.add(key_id)
            self.follow_subject_keys(catch_up=True)
            state = self._subjects.book.get(key_id) if self._subjects is not None else None
        if isinstance(state, ErasureMarker):
            self._subject_keys.pop(key_id, None)
            raise Erased(key_id, None, state.erased_at_ms)
        if state is None:
            return None
        if key_id not in self._subject_keys:
            self._subject_keys[key_id] = self.provider.unwrap(state.wrapped)
        return self._subject_keys[key_id]

    def follow_subject_keys(self, catch_up: bool = False) -> None:
        """Apply what arrived on ``_corridor.subject_keys`` (``catch_up``: up to its current
        end; the first call starts following it). A zone without the topic has none."""
        try:
            if self._subjects is None:
                if not catch_up:
                    return
                self._subjects = SubjectKeyFollower(self.endpoint, self.principal)
            if catch_up:
                self._subjects.catch_up()
            else:
                self._subjects.poll()
        except KafkaUnavailable:
            if self._subjects is None:
                return  # no subject key topic in this zone: its keys are in _corridor.keys
            raise

    def close(self) -> None:
        if self._subjects is not None:
            self._subjects.close()

    def refresh_keys(self) -> None:
        for rec in read_to_end(self.endpoint, self.principal, topics.KEYS):
            if rec.key is None:
                continue
            key_id = rec.key.decode(errors="replace")
            if rec.value is None:  # retired (`corridor keys retire`), compacted or not yet
                self.wrapped.pop(key_id, None)
                self.data_keys.pop(key_id, None)
                continue
            try:
                self.wrapped[key_id] = WrappedKey.from_json(rec.value)
            except CryptoError:
                continue  # a malformed entry fails the record that needs it: KeyNotFound

    def __iter__(self) -> Iterator[str]:
        return iter(list(self.data_keys))

    def __len__(self) -> int:
        return len(self.data_keys)
