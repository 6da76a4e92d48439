"""One column of one batch as bytes, for the arrow format's whole-column encryption.

The column is written as a one-column Arrow IPC stream (field name ``v``,
no compression: compressing before encrypting would let ciphertext length
reveal content). Reading it back gives the exact Arrow type, nulls included.
"""

from __future__ import annotations

import pyarrow as pa

from corridor.core.errors import CryptoError, TamperedCiphertext


def column_to_bytes(values: pa.Array | pa.ChunkedArray) -> bytes:
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    batch = pa.RecordBatch.from_arrays([values], ["v"])
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, batch.schema) as writer:
        writer.write_batch(batch)
    out: bytes = sink.getvalue().to_pybytes()
    return out


def column_from_bytes(data: bytes, arrow_type: pa.DataType | None = None) -> pa.Array:
    """Inverse of ``column_to_bytes``; checks the type when ``arrow_type`` is given."""
    try:
        table = pa.ipc.open_stream(pa.py_buffer(data)).read_all()
    except pa.ArrowInvalid:
        raise TamperedCiphertext("decrypted column is not an Arrow IPC stream") from None
    if table.num_columns != 1:
        raise TamperedCiphertext("decrypted column holds more than one column")
    column = table.column(0)
    values = column.combine_chunks() if column.num_chunks != 1 else column.chunk(0)
    if arrow_type is not None and not values.type.equals(arrow_type):
        raise CryptoError(f"decrypted column has type {values.type}, expected {arrow_type}")
    return values
