"""Analytics sinks: a corridor topic landed in DuckDB, a Parquet dataset or Apache Iceberg.

Owns: reading a corridor topic from stored offsets (``feed``), the rows a sink lands and
their schema (``table``), the loop (``loop``), and one target per store (``duckdb_target``,
``parquet/``, ``iceberg_target``), each keeping the consumed offsets in the same atomic
step as the rows, so a sink killed at any moment resumes with nothing twice or missing.

Does not own: decoding and decryption (``corridor.sdk.CorridorConsumer``), the key
provider and endpoints (resolved by the caller), what crosses (the corridor: a sink never
sees withheld or quarantined records, which never reach corridor topics).
"""
