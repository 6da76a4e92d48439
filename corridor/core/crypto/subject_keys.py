"""Per-subject data keys for a corridor's ``erasable`` fields, and erasure by destroying them.

**Keys.** A subject's erasable values on one corridor are encrypted under a data key of
their own: 256 random bits drawn once (:func:`new_subject_key`), wrapped with the
destination zone's KEK (``KekProvider.wrap``, I/O, elsewhere) and published, before the
first value it encrypts or in the same transaction, to the destination's compacted subject
key topic as a :class:`SubjectKeyRecord` keyed by the key id.

**Key ids** are deterministic, so a processor finds a subject's key again after a restart or
a rebalance without storing anything else: ``<corridor>-sk-<token>``, the token an HMAC
(under a key derived from the origin zone's subject key, :func:`key_id_secret`) of the
corridor, destination, subject id, *scope* and generation. It names no one: without the
origin's secret the destination cannot tie it to a subject id (its ledger holds those).
The scope is the source topic and partition the value was read from (``topic/partition``):
one processor owns a partition at a time (its transactions fence the one before), so two
processors never draw two keys for one id. A subject read from several partitions has
several keys; each record names the subject by its *tag* (the same HMAC over the corridor and
subject only), so ``corridor erase`` finds them all (:meth:`SubjectKeyBook.keys_of`). The
destination can tell which erasable values belong to one subject, as a ``pseudonymize``
of the subject field would tell it. The generation starts at 0 and goes up after an erasure
(a subject whose data crosses again gets a new key; the old id stays erased).

**Values** (:class:`ErasableSealer`): AES-256-GCM-SIV per value with the nonce derived from
the subject key, as ``FieldCipher.encrypt_column(deterministic=True)`` does (format ``0x02``
of ``corridor.core.crypto.envelope``; ``decrypt_column`` opens them), bound to corridor,
dataset, field path and the subject key id. Not a FieldCipher per subject: rows of one
batch use thousands of keys, and a column call per key costs more than the policy itself.
Deterministic on purpose: a replayed batch writes the same bytes. It reveals which values
*of one subject, in one field* are equal, nothing else.

**Erasure** writes an :class:`ErasureMarker` on every key id of the subject (never a null
tombstone: a tombstone is itself removed after ``delete.retention.ms``, after which a
consumer could no longer tell "erased" from "never published"). Once the topic compacts,
the wrapped key's record is gone from disk and only the marker, with no key material,
remains. A consumer's :class:`SubjectKeyLookup` raises :class:`~corridor.core.errors.Erased`
for a marked id; :func:`open_erasable_column` turns that into nulls at those rows and the
list of errors, and decrypts every other subject's values.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field

import pyarrow as pa
import pyarrow.compute as pc
from cryptography.hazmat.primitives.ciphers.aead import AESGCMSIV
from cryptography.hazmat.primitives.hashes import SHA256
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from corridor.core.crypto.datakey import KEY_BYTES, Clock, DataKey, Random, WrappedKey
from corridor.core.crypto.decrypt import decrypt_column
from corridor.core.crypto.envelope import FORMAT_SIV, KeySchedule, context, split
from corridor.core.crypto.secret import SecretBytes
from corridor.core.crypto.values import encode_values
from corridor.core.errors import CryptoError, Erased
from corridor.core.policy.values import pseudonym

MARKER_VERSION = 1
_ID_INFO = b"corridor subject key id v1\0"
MAX_GENERATIONS = 1000


def key_id_secret(subject_key: SecretBytes) -> SecretBytes:
    """The key of subject key ids and tags, derived from the origin's subject-id key."""
    return SecretBytes(HKDF(SHA256(), 32, None, _ID_INFO).derive(subject_key.reveal()))


def subject_tag(secret: SecretBytes, corridor: str, subject: str) -> str:
    """What every key record of *subject* on *corridor* carries (any scope, generation)."""
    return pseudonym("\0".join(("tag", corridor, subject)).encode(), secret.reveal())


def subject_key_id(secret: SecretBytes, corridor: str, destination: str, subject: str,
                   scope: str, generation: int = 0) -> str:
    """``<corridor>-sk-<token>``: the id of *subject*'s key on *corridor* for *scope*."""
    text = "\0".join(("key", corridor, destination, subject, scope, str(generation)))
    return f"{corridor}-sk-{pseudonym(text.encode(), secret.reveal())}"


def new_subject_key(key_id: str, corridor: str, generation: int, *,
                    random: Random = os.urandom, clock: Clock = time.time) -> DataKey:
    """Draw a subject key (256 random bits); the caller wraps and publishes it once."""
    material = random(KEY_BYTES)
    if len(material) != KEY_BYTES:
        raise CryptoError("random source returned the wrong number of bytes")
    return DataKey(key_id, corridor, generation, clock(), SecretBytes(material))


@dataclass(frozen=True)
class SubjectKeyRecord:
    """A wrapped subject key and its subject's tag: the subject key topic's value."""

    wrapped: WrappedKey = field(repr=False)
    tag: str

    @property
    def key_id(self) -> str:
        return self.wrapped.key_id

    def to_json(self) -> bytes:
        obj = json.loads(self.wrapped.to_json())
        obj["subject_tag"] = self.tag
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


@dataclass(frozen=True)
class ErasureMarker:
    """What erasure writes on a subject key id: no key, when, and the erasure's id (its
    audit record, at the origin, says who, why and to whom)."""

    key_id: str
    corridor: str
    tag: str
    erasure_id: str
    erased_at_ms: int

    def to_json(self) -> bytes:
        obj = {"v": MARKER_VERSION, "erased": True, "key_id": self.key_id,
               "corridor": self.corridor, "subject_tag": self.tag,
               "erasure_id": self.erasure_id, "erased_at_ms": self.erased_at_ms}
        return json.dumps(obj, sort_keys=True, separators=(",", ":")).encode()


SubjectKeyState = SubjectKeyRecord | ErasureMarker


def parse_subject_key_value(value: bytes) -> SubjectKeyState:
    """A subject key topic value; CryptoError naming what is wrong."""
    try:
        obj = json.loads(value)
        if obj.get("erased") is True:
            return ErasureMarker(str(obj["key_id"]), str(obj["corridor"]),
                                 str(obj["subject_tag"]), str(obj["erasure_id"]),
                                 int(obj["erased_at_ms"]))
        tag = str(obj["subject_tag"])
    except (ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CryptoError(f"malformed subject key record: {type(exc).__name__}") from None
    return SubjectKeyRecord(WrappedKey.from_json(value), tag)


class SubjectKeyBook:
    """The subject key topic folded: key id -> its latest record (a key or a marker)."""

    __slots__ = ("_by_id",)

    def __init__(self) -> None:
        self._by_id: dict[str, SubjectKeyState] = {}

    def apply(self, key: bytes, value: bytes | None) -> None:
        """Fold one record in topic order (a null value forgets the id)."""
        key_id = key.decode("utf-8")
        if value is None:
            self._by_id.pop(key_id, None)
            return
        state = parse_subject_key_value(value)
        if state.key_id != key_id:
            raise CryptoError(f"subject key record {key_id!r} holds key {state.key_id!r}")
        self._by_id[key_id] = state

    def get(self, key_id: str) -> SubjectKeyState | None:
        return self._by_id.get(key_id)

    def current(self, secret: SecretBytes, corridor: str, destination: str, subject: str,
                scope: str) -> tuple[str, int, SubjectKeyRecord | None]:
        """The key id to encrypt *subject*'s values with in *scope*: (id, generation, its
        record, or None when no key was published: draw one with that id and generation)."""
        for generation in range(MAX_GENERATIONS):
            key_id = subject_key_id(secret, corridor, destination, subject, scope, generation)
            state = self._by_id.get(key_id)
            if not isinstance(state, ErasureMarker):
                return key_id, generation, state
        raise CryptoError(f"subject erased {MAX_GENERATIONS} times on corridor {corridor}")

    def markers_of(self, tag: str) -> list[ErasureMarker]:
        """Every erasure marker of the subject with this tag, by key id (already erased)."""
        return sorted((s for s in self._by_id.values()
                       if isinstance(s, ErasureMarker) and s.tag == tag),
                      key=lambda s: s.key_id)

    def keys_of(self, tag: str) -> list[SubjectKeyRecord]:
        """Every live (not erased) key of the subject with this tag, by key id."""
        return sorted((s for s in self._by_id.values()
                       if isinstance(s, SubjectKeyRecord) and s.tag == tag),
                      key=lambda s: s.key_id)

    def lookup(self, unwrap: Callable[[WrappedKey], DataKey], field_path: str | None = None
               ) -> SubjectKeyLookup:
        """Key id -> DataKey for ``decrypt_column``; raises Erased for an erased id."""
        return SubjectKeyLookup(self, unwrap, field_path)

    def __iter__(self) -> Iterator[str]:
        return iter(sorted(self._by_id))


def erasure_records(book: SubjectKeyBook, tag: str, erasure_id: str, at_ms: int
                    ) -> list[tuple[bytes, bytes]]:
    """The markers (key, value) that erase every live key of the subject with *tag*."""
    return [(r.key_id.encode(), ErasureMarker(r.key_id, r.wrapped.corridor, tag, erasure_id,
                                              at_ms).to_json())
            for r in book.keys_of(tag)]


ERASE = "erase"


@dataclass(frozen=True)
class ErasureAnnouncement:
    """What ``corridor erase`` says on a destination's ``_corridor.control``, after its
    markers are acknowledged: which key ids of *corridor* were erased (no key, no subject id).
    Running processors drop those keys; ``ControlCommand.parse`` ignores it."""

    corridor: str
    erasure_id: str
    key_ids: tuple[str, ...]
    at_ms: int

    @property
    def key(self) -> bytes:
        return f"{ERASE}|{self.corridor}|{self.erasure_id}".encode()

    def to_json(self) -> bytes:
        return json.dumps({"v": MARKER_VERSION, "action": ERASE, "corridor": self.corridor,
                           "erasure_id": self.erasure_id, "key_ids": list(self.key_ids),
                           "at_ms": self.at_ms}, sort_keys=True).encode()

    @classmethod
    def parse(cls, value: bytes | None) -> ErasureAnnouncement | None:
        """The announcement in a control value; None for anything else (other commands)."""
        try:
            obj = json.loads(value or b"")
            if obj.get("action") != ERASE:
                return None
            return cls(str(obj["corridor"]), str(obj["erasure_id"]),
                       tuple(str(k) for k in obj["key_ids"]), int(obj["at_ms"]))
        except (ValueError, KeyError, TypeError, AttributeError):
            return None


class SubjectKeyLookup(Mapping[str, DataKey]):
    """A consumer's view of a SubjectKeyBook for one field: unwraps once per id."""

    def __init__(self, book: SubjectKeyBook, unwrap: Callable[[WrappedKey], DataKey],
                 field_path: str | None) -> None:
        self._book, self._unwrap, self._field = book, unwrap, field_path
        self._keys: dict[str, DataKey] = {}

    def __getitem__(self, key_id: str) -> DataKey:
        state = self._book.get(key_id)
        if isinstance(state, ErasureMarker):
            raise Erased(key_id, self._field, state.erased_at_ms)
        if state is None:
            raise KeyError(key_id)
        if key_id not in self._keys:
            self._keys[key_id] = self._unwrap(state.wrapped)
        return self._keys[key_id]

    def __iter__(self) -> Iterator[str]:
        return iter(self._book)

    def __len__(self) -> int:
        return sum(1 for _ in self._book)


class ErasableSealer:
    """Encrypts one field's values, row by row, under each row's subject key: AES-256-GCM-SIV
    with the key's derived nonce, format and context exactly as
    ``FieldCipher.encrypt_column(deterministic=True)`` (so ``decrypt_column`` opens them).
    Keeps one key schedule per key id (one HKDF per subject key, not per batch): the
    processor keeps a sealer per corridor, dataset and field."""

    def __init__(self, corridor: str, dataset: str, field_path: str) -> None:
        self.corridor, self.dataset, self.field_path = corridor, dataset, field_path
        self._sealers: dict[str, tuple[bytes, bytes, bytes, AESGCMSIV]] = {}

    def _sealer(self, key: DataKey) -> tuple[bytes, bytes, bytes, AESGCMSIV]:
        found = self._sealers.get(key.key_id)
        if found is None:
            if key.corridor != self.corridor:
                raise CryptoError(f"subject key {key.key_id} belongs to corridor "
                                  f"{key.corridor}, not {self.corridor}")
            schedule = KeySchedule(key)
            ctx = context(FORMAT_SIV, self.corridor, self.dataset, self.field_path, key.key_id)
            head = schedule.header(FORMAT_SIV, ctx) + schedule.siv_nonce
            found = self._sealers[key.key_id] = (head, schedule.siv_nonce, ctx, schedule.siv)
        return found

    def seal_column(self, values: pa.Array, key_ids: Sequence[str | None],
                    keys: Mapping[str, DataKey]) -> pa.Array:
        """``pa.binary()``: row *i* sealed under ``keys[key_ids[i]]``; nulls stay null. A
        non-null value without a key id is a bug (its subject was not resolved): CryptoError.
        """
        out: list[bytes | None] = []
        for plaintext, key_id in zip(encode_values(values), key_ids, strict=True):
            if plaintext is None:
                out.append(None)
                continue
            if key_id is None:
                raise CryptoError(f"a value of {self.dataset}.{self.field_path} has no "
                                  "subject key")
            head, nonce, ctx, siv = self._sealer(keys[key_id])
            out.append(head + siv.encrypt(nonce, bytes(plaintext), ctx))
        return pa.array(out, pa.binary())

    def forget(self, key_ids: Iterable[str]) -> None:
        """Drop the schedules of *key_ids* (erased, or drawn in an aborted transaction)."""
        for key_id in key_ids:
            self._sealers.pop(key_id, None)


@dataclass(frozen=True)
class ErasableColumn:
    """A decrypted erasable column: values (null where erased) and the erased rows' errors."""

    values: pa.Array
    erased: Mapping[int, Erased]


def open_erasable_column(values: pa.Array, arrow_type: pa.DataType, *, corridor: str,
                         dataset: str, field_path: str, keys: Mapping[str, DataKey]
                         ) -> ErasableColumn:
    """Decrypt a column sealed by :class:`ErasableSealer`: an erased subject's rows become
    null with an Erased error each; every other row is decrypted, and any other failure
    (KeyNotFound, TamperedCiphertext, ContextMismatch) raises as ``decrypt_column`` does."""
    ids = [None if v is None else split(v)[1].decode(errors="replace")
           for v in values.to_pylist()]
    gone: dict[str, Erased] = {}
    for key_id in {k for k in ids if k is not None}:
        try:
            keys[key_id]
        except Erased as exc:
            gone[key_id] = exc if exc.field is not None else Erased(key_id, field_path,
                                                                    exc.erased_at_ms)
        except KeyError:
            continue  # decrypt_column names it (KeyNotFound)
    erased = {row: gone[k] for row, k in enumerate(ids) if k is not None and k in gone}
    if erased:
        mask = pa.array([row in erased for row in range(len(values))], pa.bool_())
        values = pc.if_else(mask, pa.scalar(None, values.type), values)
    plain = decrypt_column(values, arrow_type, corridor=corridor, dataset=dataset,
                           field=field_path, keys=keys)
    return ErasableColumn(plain, erased)
