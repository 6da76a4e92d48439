"""Development tooling: bench, chaos, sample data, the per-record reference pipeline.

Never imported by the runtime (kafka, keys, zones, processor, sdk, core); only
commands (bench, demo, generate) and tests use it.
"""
