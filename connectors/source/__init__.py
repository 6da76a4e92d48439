"""File sources: CSV, JSON Lines, Parquet and Avro container files into a park's topic.

Owns: finding files and telling them apart (``discover``), reading rows with where each
is (``formats``), converting rows to the dataset's schema (``convert``; per value
``scalars`` and ``logical``, failing with ``problems.Bad``), the progress committed with
the records (``progress``), the rejects file and the summary (``rejects``), and the
exactly-once load loop (``loader``).

Does not own: the records' encoding (``corridor.sdk.ParkProducer.encode``), transactions
(``corridor.kafka.sink.TransactionalSink``), endpoints and credentials (the caller's),
the progress bar (``corridor/commands/connect.py``).
"""
