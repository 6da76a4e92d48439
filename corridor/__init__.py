"""corridor: governed data cooperation corridors between regional Kafka clusters.

The public surface, pinned by tests/unit/test_public_surface.py: what a park, an
analytics team or a tool may import from ``corridor`` itself. Everything else is
reachable by its module path but may change without notice. Importing this package
loads the pure core only; the SDK (which needs confluent-kafka) loads on first use of
one of its names.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from corridor.core.config import Config, load_config
from corridor.core.errors import (
    ConfigError,
    ConfigErrors,
    CorridorError,
    CryptoError,
    DecodeError,
    Erased,
    KafkaUnavailable,
    KeyNotFound,
    PlanError,
)
from corridor.core.model import Lineage, Outcome
from corridor.core.pipeline import BatchResult, process
from corridor.core.plan import CorridorPlan, build_plan
from corridor.core.verify import VerifyReport

if TYPE_CHECKING:
    from corridor.sdk import Catalog, CorridorConsumer, CorridorRecord, ParkProducer

__version__ = "0.1.0"

_SDK = ("Catalog", "CorridorConsumer", "CorridorRecord", "ParkProducer")

__all__ = [
    "BatchResult",
    "Catalog",
    "Config",
    "ConfigError",
    "ConfigErrors",
    "CorridorConsumer",
    "CorridorError",
    "CorridorPlan",
    "CorridorRecord",
    "CryptoError",
    "DecodeError",
    "Erased",
    "KafkaUnavailable",
    "KeyNotFound",
    "Lineage",
    "Outcome",
    "ParkProducer",
    "PlanError",
    "VerifyReport",
    "__version__",
    "build_plan",
    "load_config",
    "process",
]


def __getattr__(name: str) -> Any:
    if name in _SDK:  # the SDK pulls in confluent-kafka: loaded when first asked for
        from corridor import sdk

        return getattr(sdk, name)
    raise AttributeError(f"module 'corridor' has no attribute {name!r}")
