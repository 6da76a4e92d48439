"""Running totals of one corridor (``Stats``): what progress output, the demo and
``caught_up`` read. Does not own: how they are counted (``processor.runner``)."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Stats:
    """Running totals of one corridor, for progress output and the demo.

    Times are ``time.monotonic()`` seconds (the runner's clock)."""

    consumed: int = 0
    delivered: int = 0
    withheld: int = 0
    quarantined: int = 0
    batches: int = 0
    aborted: int = 0
    lag: int = -1  # unprocessed records on owned partitions when last idle; -1 unknown
    started: float = field(default_factory=time.monotonic)
    first_batch: float = 0.0  # when the first batch of this run was consumed
    last_delivery: float = 0.0

    def records_per_s(self) -> float:
        """Records consumed per second, first batch to last commit."""
        span = self.last_delivery - self.first_batch
        return self.consumed / span if self.consumed and span > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        skip = ("started", "first_batch", "last_delivery", "lag")
        return {k: v for k, v in self.__dict__.items() if k not in skip}

    def count(self, counts: dict[str, int], consumed: int, now: float) -> None:
        """One committed batch: ``consumed`` source records, ``counts`` by outcome."""
        self.consumed += consumed
        self.delivered += counts["delivered"]
        self.withheld += counts["withheld"]
        self.quarantined += counts["quarantined"]
        self.batches += 1
        self.last_delivery = now
