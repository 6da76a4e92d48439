"""tag: residency headers of one delivered record or Arrow batch (docs/DESIGN.md section 6).

The constant headers are built once per plan and epoch (``DatasetPlan.headers``);
only ``corridor-lineage`` is per record (avro) or per batch (arrow).
"""

from __future__ import annotations

from collections.abc import Sequence

from corridor.core.model import Lineage
from corridor.core.wire import LINEAGE


def lineage_header(lineage: Lineage) -> tuple[str, bytes]:
    """``corridor-lineage: topic/partition/offset[#row]``."""
    return (LINEAGE, str(lineage).encode())


def record_headers(
    constant: Sequence[tuple[str, bytes]], lineage: Lineage
) -> list[tuple[str, bytes]]:
    """Headers of one avro-format record: the plan's constant ones plus its lineage."""
    return [*constant, lineage_header(lineage)]


def lineage_range(topic: str, partition: int, offsets: Sequence[int]) -> str:
    """``topic/partition/first-last`` of an arrow-format batch (offsets need not be contiguous:
    the batch's ``_lineage_offset`` column lists the ones inside)."""
    return f"{topic}/{partition}/{min(offsets)}-{max(offsets)}"
