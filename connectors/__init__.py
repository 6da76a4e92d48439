"""connectors: parks bring data from files and PostgreSQL into their zone; analytics land
corridor streams in tables.

Owns:

- ``connectors.source``: file sources (CSV, JSON Lines, Parquet, Avro container files) into
  ``<zone>.outbound.<dataset>``, exactly once across crashes: each batch of records and the
  file's progress are one Kafka transaction; rows that do not fit the dataset's schema go to
  a rejects file with their file, line (or row group and row) and column.
- ``connectors.debezium``: a PostgreSQL table into ``<zone>.outbound.<dataset>`` through
  Debezium on a standalone Kafka Connect worker (at least once: the worker's offsets are a
  file), and a local PostgreSQL cluster for development and tests.
- ``connectors.sink``: analytics sinks that read ``corridor.<from>-<to>.<dataset>`` in the
  destination zone and land it in DuckDB, a Parquet dataset or an Apache Iceberg table,
  exactly once: the consumed offsets live in the target, committed with the rows.
- ``connectors.resources``: the peak memory a run reports.

Does not own: the corridor policy (a sink only ever sees what a corridor delivered;
withheld and quarantined records never reach corridor topics), endpoints, credentials and
key providers (the caller resolves them: ``corridor/commands/connect.py``), the CLI.

Built only on the public SDK (``corridor.sdk``), the pure core (``corridor.core``) and the
Kafka clients (``corridor.kafka``) where the SDK has no equivalent: a transactional
producer for the sources, a consumer that starts at given offsets for the sinks.
"""

from connectors.errors import ConnectError

__all__ = ["ConnectError"]
