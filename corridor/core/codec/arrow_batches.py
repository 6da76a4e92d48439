"""Arrow IPC messages on Kafka: sized by bytes, recognised by their framing. Pure.

A Kafka message of the arrow format is one Arrow IPC stream (schema + one
record batch). Kafka refuses a message above the topic's ``max.message.bytes``
(8 MiB on arrow corridor topics, 1 MiB by default elsewhere), and a 10k-row
trade.shipment batch is about 3 MB, so batches are cut by bytes, not rows.

``arrow_rows(value)`` decides how many *records* a source message holds, and is
the single rule the processor and ``corridor verify`` share: a value that starts
with the IPC continuation marker and reads as an IPC stream holds one record per
row (lineage ``topic/partition/offset#row``); any other value is one record
(lineage ``topic/partition/offset``), Avro or unreadable.
"""

from __future__ import annotations

import pyarrow as pa

from corridor.core.codec import from_ipc, to_ipc
from corridor.core.errors import DecodeError

IPC_MARKER = b"\xff\xff\xff\xff"  # every IPC stream message starts with the continuation marker
DEFAULT_MAX_BYTES = 4 * 1024 * 1024


def looks_like_ipc(value: bytes | None) -> bool:
    return value is not None and value[:4] == IPC_MARKER


def read_arrow(value: bytes | None) -> pa.RecordBatch | None:
    """The batch of an Arrow IPC message, or None when the value is not one (see module doc)."""
    if not looks_like_ipc(value):
        return None
    assert value is not None
    try:
        return from_ipc(value)
    except DecodeError:
        return None


def arrow_rows(value: bytes | None) -> int | None:
    """Records in an Arrow IPC message, or None for a value that is one record on its own."""
    batch = read_arrow(value)
    return None if batch is None else batch.num_rows


def row_slices(batch: pa.RecordBatch, max_bytes: int) -> list[pa.RecordBatch]:
    """Consecutive slices of ``batch`` of at most ~``max_bytes`` of Arrow buffers each.

    Sized on uncompressed buffer bytes (``nbytes``), an upper bound of what the
    compressed IPC message carries for data like ours.
    """
    if batch.num_rows == 0:
        return [batch]
    per_row = max(1, batch.nbytes // batch.num_rows)
    rows = max(1, max_bytes // per_row)
    return [batch.slice(i, rows) for i in range(0, batch.num_rows, rows)]


def ipc_messages(batch: pa.RecordBatch, max_bytes: int = DEFAULT_MAX_BYTES,
                 compression: str | None = "zstd") -> list[bytes]:
    """``batch`` as Arrow IPC messages of at most ``max_bytes`` each (a slice whose message
    still comes out larger is halved). A single row larger than ``max_bytes`` is refused."""
    out: list[bytes] = []
    pending = row_slices(batch, max_bytes)
    while pending:
        part = pending.pop(0)
        data = to_ipc(part, compression)
        if len(data) <= max_bytes or part.num_rows == 0:
            out.append(data)
        elif part.num_rows == 1:
            raise DecodeError(f"one row is {len(data)} bytes of Arrow IPC, above {max_bytes}")
        else:
            half = part.num_rows // 2
            pending[:0] = [part.slice(0, half), part.slice(half)]
    return out
