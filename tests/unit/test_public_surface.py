"""The public surface of ``corridor`` is curated and pinned, and the pure core loads without
Kafka or logging libraries (the import contract in pyproject.toml checks the source; this
checks what actually gets imported)."""

from __future__ import annotations

import subprocess
import sys

import corridor

PUBLIC = [
    "BatchResult", "Catalog", "Config", "ConfigError", "ConfigErrors", "CorridorConsumer",
    "CorridorError", "CorridorPlan", "CorridorRecord", "CryptoError", "DecodeError", "Erased",
    "KafkaUnavailable", "KeyNotFound", "Lineage", "Outcome", "ParkProducer", "PlanError",
    "VerifyReport", "__version__", "build_plan", "load_config", "process",
]


def test_public_surface_is_exactly_the_curated_list() -> None:
    assert sorted(corridor.__all__) == sorted(PUBLIC)
    for name in PUBLIC:
        assert getattr(corridor, name) is not None, name


def test_sdk_names_resolve_to_the_sdk() -> None:
    from corridor.sdk import CorridorConsumer

    assert corridor.CorridorConsumer is CorridorConsumer


def _loaded_after(statement: str) -> set[str]:
    code = f"import sys; {statement}; print(' '.join(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, timeout=120).stdout
    return set(out.split())


def test_importing_the_pipeline_loads_no_kafka_and_no_logging() -> None:
    loaded = _loaded_after("import corridor.core.pipeline")
    assert "confluent_kafka" not in loaded
    assert "structlog" not in loaded


def test_importing_corridor_loads_no_kafka_until_the_sdk_is_asked_for() -> None:
    assert "confluent_kafka" not in _loaded_after("import corridor")
    assert "confluent_kafka" in _loaded_after("import corridor; corridor.CorridorConsumer")
