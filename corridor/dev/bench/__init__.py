"""Micro benchmarks: `python -m corridor.dev.bench.<name>`."""
