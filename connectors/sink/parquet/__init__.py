"""The Parquet dataset sink: hive-partitioned by corridor, dataset and event date.

Owns: file names that carry the offset range they hold (``names``, pure) and writing them
so that a batch appears whole or not at all (``target``). Does not own the rows (``..table``).
"""
