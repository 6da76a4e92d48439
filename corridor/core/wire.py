"""The wire contract, spelled once: what a corridor record looks like to anyone who reads it.

Every name here is read by code that is not ours (consumers, connectors, auditors):
change one and every reader breaks. Topic names live in ``corridor.core.topics``.

- Avro single-object framing: ``AVRO_MAGIC`` + 8-byte fingerprint + body (Avro spec).
- Residency headers on every corridor record (docs/DESIGN.md section 6), and ``REASON`` and
  ``SOURCE_KEY`` on withheld and quarantined records in the origin; ``RELEASED`` on a record
  that crossed later, by `corridor held release`; ``KEY_TREATMENT`` on a tombstone (a delete).
- Lineage text: ``topic/partition/offset`` for a record, ``...#row`` for a row of an
  Arrow IPC source message; ``topic/partition/first-last`` for an Arrow corridor batch,
  whose Kafka key is ``topic/partition``.
- Arrow corridor batches: the per-row columns and the schema metadata keys.
- Egress schema attributes: ``corridor.transform`` / ``corridor.original`` on a changed
  field, ``corridor.key`` on the record.
"""

from __future__ import annotations

from corridor.core.errors import DecodeError

AVRO_MAGIC = b"\xc3\x01"

# -- headers ---------------------------------------------------------------------------
HEADER_PREFIX = "corridor-"  # reserved: a park header named so never crosses
ORIGIN = "corridor-origin"
DESTINATION = "corridor-destination"
JURISDICTION = "corridor-jurisdiction"
CLASSIFICATION = "corridor-classification"
LEGAL_BASIS = "corridor-legal-basis"
POLICY = "corridor-policy"  # value: policy_id(corridor, hash)
LINEAGE = "corridor-lineage"
KEY_ID = "corridor-key"  # the data key id, when any field is encrypted
INSTRUMENT = "corridor-instrument"  # the transfer instrument's id, when the corridor names one
REASON = "corridor-reason"  # withheld / quarantined records, in the origin
# Withheld / quarantined records: the source record's key (absent: the key was null), so
# `corridor held release` re-runs the record as it came even after the source expired.
SOURCE_KEY = "corridor-source-key"
RELEASED = "corridor-released"  # a record delivered by `corridor held release`: the release id
# On a tombstone (a delete crossing: null value) only: the treatment of its record key
# (``pseudonymize``, ``encrypt-deterministic``, ``keep``), which a record carries in its egress
# schema (avro) or batch metadata (arrow) and a null value cannot.
KEY_TREATMENT = "corridor-key-treatment"

# -- Arrow corridor batches -------------------------------------------------------------
LINEAGE_OFFSET = "_lineage_offset"  # int64: each row's source offset
LINEAGE_ROW = "_lineage_row"  # int32: each row's row in an Arrow IPC source message, or -1
KEY_COLUMN = "_key"  # binary: each row's outgoing record key
TIMESTAMP_COLUMN = "_timestamp"  # timestamp[ms, UTC]: each row's source timestamp
HEADERS_COLUMN = "_headers"  # list<struct<name, value>>: allowed park headers
META_COLUMNS = (LINEAGE_OFFSET, LINEAGE_ROW, KEY_COLUMN, TIMESTAMP_COLUMN, HEADERS_COLUMN)
META_LINEAGE = b"corridor.lineage"  # schema metadata: the batch's lineage range
META_KEY = b"corridor.key"  # schema metadata: the treatment of the _key column
SEALED_PREFIX = "corridor.sealed."  # schema metadata: + field path -> whole-column ciphertext

# -- egress schema attributes -----------------------------------------------------------
ATTR_TRANSFORM = "corridor.transform"
ATTR_ORIGINAL = "corridor.original"
ATTR_KEY = "corridor.key"  # {"class": ..., "treatment": ...}


def lineage_text(topic: str, partition: int, offset: int, row: int = -1) -> str:
    """``topic/partition/offset``, or ``topic/partition/offset#row`` for a row of an Arrow
    IPC source message (``row >= 0``). ``corridor.core.model.Lineage`` prints the same."""
    if row < 0:
        return f"{topic}/{partition}/{offset}"
    return f"{topic}/{partition}/{offset}#{row}"


def lineage_source(text: str) -> str:
    """``topic/partition`` of a lineage text (record or batch range)."""
    return text.rsplit("/", 1)[0]


def batch_key(topic: str, partition: int) -> bytes:
    """The Kafka key of an Arrow corridor batch: its source ``topic/partition``."""
    return f"{topic}/{partition}".encode()


def policy_id(corridor: str, policy_hash: str) -> str:
    """Value of the ``corridor-policy`` header: ``name@hash``."""
    return f"{corridor}@{policy_hash}"


def policy_corridor(value: str) -> str:
    """The corridor name of a ``corridor-policy`` header value."""
    return value.rpartition("@")[0]


# -- Confluent wire format ------------------------------------------------------------------
# What the Kafka ecosystem's serializers write (confluent-kafka's AvroSerializer, Kafka
# Connect's AvroConverter, ...): one zero byte, the writer schema's id in a schema registry
# as a 4-byte big-endian int (Java's signed int, so ids above 2**31 - 1 read negative and are
# simply unknown), then the Avro binary datum. The id means nothing without that registry.
CONFLUENT_MAGIC = b"\x00"
CONFLUENT_HEADER_LEN = 5  # magic (1) + schema id (4)


def confluent_header(schema_id: int) -> bytes:
    """The 5 bytes in front of an Avro binary datum written with schema ``schema_id``."""
    return CONFLUENT_MAGIC + schema_id.to_bytes(4, "big", signed=True)


def confluent_frame(schema_id: int, body: bytes) -> bytes:
    """The Confluent framing of an Avro binary datum written with schema ``schema_id``."""
    return confluent_header(schema_id) + body


def registry_subject(topic: str) -> str:
    """The subject a topic's value schemas are registered under (Confluent's default
    ``TopicNameStrategy``): ``<topic>-value``."""
    return f"{topic}-value"


def confluent_header_problem(value: bytes | None) -> str | None:
    """Why ``value`` is not Confluent-framed, or None if its header is fine."""
    if value is None or value[:1] != CONFLUENT_MAGIC:
        head = b"" if value is None else bytes(value[:1])
        return f"bad magic {head.hex() or 'none'} (Confluent framing starts with 00)"
    if len(value) < CONFLUENT_HEADER_LEN:
        return f"truncated Confluent header ({len(value)} of {CONFLUENT_HEADER_LEN} bytes)"
    return None


def confluent_unframe(value: bytes | None) -> tuple[int, bytes]:
    """(schema id, Avro body) of a Confluent-framed value. Raises DecodeError with the reason."""
    problem = confluent_header_problem(value)
    if problem is not None:
        raise DecodeError(problem)
    assert value is not None
    schema_id = int.from_bytes(value[1:CONFLUENT_HEADER_LEN], "big", signed=True)
    return schema_id, bytes(value[CONFLUENT_HEADER_LEN:])
