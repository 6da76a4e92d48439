"""The log4j2 configuration of the Java Kafka processes corridor starts beside the brokers:
a Kafka Connect worker (connectors.debezium.worker) and MirrorMaker 2 (the bench's
corridor.dev.bench.mirror). Text only: the caller writes it and points
``-Dlog4j2.configurationFile`` at it. Does not own the brokers' own configuration
(corridor.zones.properties, a rolling file with Kafka's loggers quieted)."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

TEMPLATE = """\
status = warn
appender.file.type = File
appender.file.name = file
appender.file.fileName = {log}
appender.file.layout.type = PatternLayout
appender.file.layout.pattern = [%d] %p %m (%c)%n
rootLogger.level = INFO
rootLogger.appenderRef.file.ref = file
"""


def log4j2_properties(log: Path, errors_only: Sequence[str] = ()) -> str:
    """INFO and up to the one file *log* (log4j's own messages from WARN), and only ERROR
    from each logger *errors_only* names (its properties id is the name's last part)."""
    text = TEMPLATE.format(log=log)
    for name in errors_only:
        short = name.rsplit(".", 1)[-1]
        text += f"logger.{short}.name = {name}\nlogger.{short}.level = ERROR\n"
    return text
