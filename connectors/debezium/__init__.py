"""Change data capture: a PostgreSQL table into a park's topic through Debezium on Kafka Connect.

Owns:

- ``postgres``: a local PostgreSQL cluster for development and tests (``initdb`` into a
  folder, run as the ``postgres`` user, ``wal_level=logical``, a replication role, a
  publication per captured table);
- ``config``: what the Kafka Connect worker and the Debezium connector are given, rendered
  from a ``Capture`` (pure: values in, properties out);
- ``worker``: one standalone Kafka Connect worker process per capture: started, watched
  through its REST API, stopped.

Does not own: the corridor policy (a change event is one JSON record of the park topic,
decoded like any other: ``corridor.core.codec.json_decode``), endpoints and principals
(the caller resolves them: ``corridor/commands/connect_postgres.py``), the Java runtime
(the caller finds one), the jars (``make install``: infra/fetch-connect.sh).
"""
