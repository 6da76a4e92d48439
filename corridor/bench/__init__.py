"""Micro benchmarks: `python -m corridor.bench.<name>`."""
