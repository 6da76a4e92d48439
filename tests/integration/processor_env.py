"""Running real processor subprocesses against a throwaway corridor, and reading the result."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from corridor.core import topics
from corridor.core.verify import VerifyReport
from corridor.dev.sample import generate_records
from corridor.kafka.io import PlainProducer, watermarks
from corridor.kafka.offsets import OffsetReader
from corridor.kafka.verify_reader import read_verify_input
from corridor.processor.resolve import zone_endpoint

from .corridor_env import REPO, CorridorEnv

DATASET = "trade.shipment"


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str,
               every_s: float = 0.25) -> None:
    """Poll ``condition`` until it holds; fail with ``what`` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s:.0f}s waiting for {what}")
        time.sleep(every_s)


def produce(env: CorridorEnv, admin, count: int, seed: int, bad_ratio: float = 0.0) -> list[bytes]:
    values = generate_records(DATASET, count, seed=seed, bad_ratio=bad_ratio)
    producer = PlainProducer(zone_endpoint(env.config, env.origin), admin)
    source = topics.outbound(env.origin, DATASET)
    for i, value in enumerate(values):
        producer.produce(source, value, f"k{i}".encode())
    producer.flush(120)
    return values


class Processor:
    """One `corridor run` subprocess; its JSON log goes to a file."""

    def __init__(self, env: CorridorEnv, log_dir: Path, name: str, *args: str) -> None:
        self.log_path = log_dir / f"processor-{name}.log"
        self.log_file = open(self.log_path, "ab")  # noqa: SIM115 (closed in close())
        cmd = [sys.executable, "-m", "corridor.cli", "run", "--config", str(env.path),
               "--corridor", env.name, "--instance", name, *args]
        environment = {**os.environ, "CORRIDOR_HOME": str(REPO), "CORRIDOR_LOG_JSON": "1"}
        self.proc = subprocess.Popen(cmd, stdout=self.log_file, stderr=subprocess.STDOUT,
                                     cwd=REPO, env=environment)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def kill(self) -> None:
        self.proc.kill()
        self.proc.wait(30)

    def stop(self) -> int:
        self.proc.terminate()
        return self.proc.wait(60)

    def wait(self, timeout_s: float) -> int:
        try:
            return self.proc.wait(timeout_s)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            raise AssertionError(f"processor did not finish in {timeout_s:.0f}s; log tail:\n"
                                 + "\n".join(self.log().splitlines()[-15:])) from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(30)
        self.log_file.close()


def committed(env: CorridorEnv, admin) -> int:
    """Source records behind the committed positions (sum of next offsets)."""
    reader = OffsetReader(zone_endpoint(env.config, env.dest), admin, env.name)
    source = topics.outbound(env.origin, DATASET)
    parts = watermarks(zone_endpoint(env.config, env.origin), admin, source)
    stored = reader.read([(source, p) for p in parts], reader.partitions())
    return sum(stored.values())


def source_end(env: CorridorEnv, admin) -> int:
    source = topics.outbound(env.origin, DATASET)
    return sum(high for _, high in watermarks(zone_endpoint(env.config, env.origin), admin,
                                              source).values())


def verify(env: CorridorEnv, admin) -> VerifyReport:
    return read_verify_input(zone_endpoint(env.config, env.origin),
                             zone_endpoint(env.config, env.dest), env.corridor, admin).check()
