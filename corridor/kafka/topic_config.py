"""Changing one topic's configuration at run time (fault tests: make a broker refuse writes)."""

from __future__ import annotations

from collections.abc import Mapping

from confluent_kafka import KafkaException
from confluent_kafka.admin import AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource

from corridor.core.errors import KafkaUnavailable

TIMEOUT_S = 30.0


def set_topic_config(admin: AdminClient, topic: str, settings: Mapping[str, str | None]) -> None:
    """Set (value) or remove back to the broker default (None) each of ``settings`` on ``topic``."""
    entries = [
        ConfigEntry(name, value, incremental_operation=(
            AlterConfigOpType.DELETE if value is None else AlterConfigOpType.SET))
        for name, value in settings.items()
    ]
    resource = ConfigResource("topic", topic, incremental_configs=entries)
    try:
        for future in admin.incremental_alter_configs([resource],
                                                      request_timeout=TIMEOUT_S).values():
            future.result()
    except KafkaException as exc:
        raise KafkaUnavailable(f"altering {topic} config: {exc.args[0].str()}") from None


def topic_config(admin: AdminClient, topic: str, name: str) -> str | None:
    """The current value of one setting of ``topic``."""
    resource = ConfigResource("topic", topic)
    try:
        configs = next(iter(admin.describe_configs([resource],
                                                   request_timeout=TIMEOUT_S).values())).result()
    except KafkaException as exc:
        raise KafkaUnavailable(f"describing {topic} config: {exc.args[0].str()}") from None
    entry = configs.get(name)
    return None if entry is None else entry.value
