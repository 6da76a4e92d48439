"""Time-boxed fuzzing of the Avro decoders with hypothesis: no crash, no hang, invariant holds.

Three targets, each checked on every generated input:

- ``corridor.core.codec.decode_avro`` on a batch of values (1-40: small batches take the
  strict path, larger ones the native polars path with its verification and
  screening): it must not raise, must return within ``per_input_s``, and its
  ``Decoded`` must satisfy ``len(rows) + len(errors) == n`` with rows and error
  indices together covering ``range(n)`` exactly once, one batch row per row.
- ``corridor.core.codec.avro_strict.decode_body`` on single bodies of every sample schema
  (maps, nullable enums, nested records): it may only raise ``Malformed``.
- the input dialects (``corridor.core.codec.arrow_input.decode_inputs`` with writer
  schemas): Confluent-framed records (known id, an incompatible writer's id, an unknown
  id) and JSON objects, mutated the same way; the same invariant as decode_avro.

Inputs are valid sample records mutated by hypothesis (bit flips, truncation,
insertions, overwrites with extreme varints, splices of two records, headers of
other schemas) plus raw random bytes. ``run_fuzz`` repeats hypothesis runs until
its time is up and counts every decoder execution.

A hang is caught twice: an input slower than ``per_input_s`` fails the check, and
a hard watchdog (``faulthandler``) kills the process with a traceback of every
thread after ``10 * per_input_s`` (a hang inside native code never returns to the
check at all).
"""

from __future__ import annotations

import faulthandler
import json
import time
from collections import Counter
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st

from corridor.core.codec import Decoded, decode_avro
from corridor.core.codec.arrow_input import decode_inputs
from corridor.core.codec.avro_strict import Malformed, compile_reader, decode_body
from corridor.core.model import Lineage, RawMessage
from corridor.core.schema import HEADER_LEN, AvroSchema, SchemaStore, load_schema
from corridor.core.wire import confluent_frame
from corridor.dev.sample import generate_records

DATASETS = ("trade.shipment", "ecommerce.order", "media.playback")
EXTREME_VARINTS = (
    b"\x01",  # -1: a negative length or count
    b"\x7f",  # -64
    b"\xff\xff\xff\xff\x0f",  # -2^31 (zig-zag)
    b"\xfe\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # 2^63 - 1
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # -2^63
    b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\x01",  # longer than 10 bytes
    b"\x80\x80\x80\x80\x08",  # 2^31: over int range
)


@dataclass
class FuzzReport:
    """Figures of one fuzz run."""

    seconds: float = 0.0
    execs: int = 0  # decoder executions (decode_avro batches + strict bodies)
    values: int = 0  # values fed to decode_avro
    decoded: int = 0
    rejected: int = 0
    reasons: Counter[str] = field(default_factory=Counter)  # rejected values by reason kind
    slowest_s: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return {"seconds": round(self.seconds, 1), "execs": self.execs, "values": self.values,
                "decoded": self.decoded, "rejected": self.rejected,
                "slowest_input_s": round(self.slowest_s, 3),
                "reasons": dict(self.reasons.most_common(25))}


@lru_cache(maxsize=1)
def _corpus() -> tuple[dict[str, AvroSchema], dict[str, list[bytes]]]:
    root = __import__("corridor.dev.sample", fromlist=["SCHEMAS"]).SCHEMAS
    schemas = {d: load_schema(root / d.split(".")[0] / f"{d.split('.')[1]}.avsc")
               for d in DATASETS}
    seeds = {d: generate_records(d, 40, seed=7, withheld_share=0.3) for d in DATASETS}
    return schemas, seeds


def _mutate(draw: st.DrawFn, value: bytes) -> bytes:
    """One to three mutations of ``value``, chosen by hypothesis."""
    data = bytearray(value)
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["flip", "truncate", "insert", "varint", "overwrite",
                                     "delete", "header"]))
        at = draw(st.integers(0, max(0, len(data))))
        if kind == "flip" and data:
            i = min(at, len(data) - 1)
            data[i] ^= 1 << draw(st.integers(0, 7))
        elif kind == "truncate":
            del data[at:]
        elif kind == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=8))
        elif kind == "varint":
            data[at:at + draw(st.integers(0, 3))] = draw(st.sampled_from(EXTREME_VARINTS))
        elif kind == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=16))
            data[at:at + len(chunk)] = chunk
        elif kind == "delete":
            del data[at:at + draw(st.integers(1, 16))]
        else:  # a header that is not this dataset's, or a damaged one
            data[:HEADER_LEN] = draw(st.binary(min_size=0, max_size=HEADER_LEN))
    return bytes(data)


@st.composite
def _value(draw: st.DrawFn, dataset: str) -> bytes | None:
    _, seeds = _corpus()
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.one_of(st.none(), st.binary(max_size=64)))
    if choice == 1:  # a valid record of another dataset
        return draw(st.sampled_from(seeds[draw(st.sampled_from(DATASETS))]))
    if choice == 2:  # two records spliced
        a, b = draw(st.sampled_from(seeds[dataset])), draw(st.sampled_from(seeds[dataset]))
        return a[: draw(st.integers(0, len(a)))] + b[draw(st.integers(0, len(b))):]
    value = draw(st.sampled_from(seeds[dataset]))
    return value if choice == 3 else _mutate(draw, value)


@st.composite
def _batch(draw: st.DrawFn) -> tuple[str, list[bytes | None]]:
    dataset = draw(st.sampled_from(DATASETS))
    size = draw(st.one_of(st.integers(1, 8), st.integers(17, 40)))  # strict / native paths
    return dataset, draw(st.lists(_value(dataset), min_size=size, max_size=size))


def check_decoded(decoded: Decoded, n: int) -> None:
    """AssertionError unless ``decoded`` satisfies the Decoded invariant for n inputs."""
    errors = [i for i, _ in decoded.errors]
    assert len(decoded.rows) + len(errors) == n, (len(decoded.rows), len(errors), n)
    assert sorted(decoded.rows + errors) == list(range(n))
    assert decoded.batch.num_rows == len(decoded.rows)
    assert all(isinstance(r, str) and r for _, r in decoded.errors)


def _timed(report: FuzzReport, per_input_s: float, fn: Any, *args: Any) -> Any:
    faulthandler.dump_traceback_later(10 * per_input_s, exit=True)
    start = time.monotonic()
    try:
        return fn(*args)
    finally:
        faulthandler.cancel_dump_traceback_later()
        took = time.monotonic() - start
        report.slowest_s = max(report.slowest_s, took)
        report.execs += 1
        assert took < per_input_s, f"input took {took:.2f}s (limit {per_input_s}s): a hang"


def _one_batch(report: FuzzReport, per_input_s: float, dataset: str,
               values: list[bytes | None]) -> None:
    schemas, _ = _corpus()
    store = SchemaStore(list(schemas.values()))
    decoded = _timed(report, per_input_s, decode_avro, values, store, schemas[dataset])
    check_decoded(decoded, len(values))
    report.values += len(values)
    report.decoded += len(decoded.rows)
    report.rejected += len(decoded.errors)
    report.reasons.update(reason_kind(r) for _, r in decoded.errors)


def _one_body(report: FuzzReport, per_input_s: float, dataset: str, body: bytes) -> None:
    schemas, _ = _corpus()
    reader = _reader(schemas[dataset])
    try:
        _timed(report, per_input_s, decode_body, reader, body)
    except Malformed as exc:
        assert exc.reason


@lru_cache(maxsize=8)
def _reader(schema: AvroSchema) -> Any:
    return compile_reader(schema.expanded)


def reason_kind(reason: str) -> str:
    """A reason without its offsets and values, to count by kind:
    'truncated varint at offset 12' -> 'truncated varint'; 'bad magic ffff (...)' -> 'bad magic'."""
    words: list[str] = []
    for word in reason.replace(":", " ").split():
        numeric = word != "UTF-8" and (any(c.isdigit() for c in word) or _hexish(word))
        if word in ("at", "for") or word.startswith("(") or (numeric and words):
            break
        if not numeric:
            words.append(word)
    return " ".join(words[:5]) or reason[:30]


def _hexish(word: str) -> bool:
    return len(word) >= 4 and all(c in "0123456789abcdef" for c in word)


@lru_cache(maxsize=1)
def _json_seeds() -> dict[str, list[bytes]]:
    from corridor.dev.sample import generate_rows
    from corridor.sdk.client import _jsonable

    return {d: [json.dumps({k: _jsonable(v) for k, v in row.items()}).encode()
                for row in generate_rows(d, 20, seed=7)] for d in DATASETS}


@st.composite
def _dialect_batch(draw: st.DrawFn) -> tuple[str, list[bytes | None]]:
    """A batch of Confluent-framed and JSON records of one dataset, some mutated."""
    dataset = draw(st.sampled_from(DATASETS))
    _, seeds = _corpus()
    values: list[bytes | None] = []
    for _ in range(draw(st.integers(1, 12))):
        if draw(st.booleans()):
            body = draw(st.sampled_from(seeds[dataset]))[HEADER_LEN:]
            value = confluent_frame(draw(st.sampled_from([1, 2, 999])), body)
        else:
            value = draw(st.sampled_from(_json_seeds()[dataset]))
        values.append(value if draw(st.booleans()) else _mutate(draw, value))
    return dataset, values


def _one_dialect_batch(report: FuzzReport, per_input_s: float, dataset: str,
                       values: list[bytes | None]) -> None:
    schemas, _ = _corpus()
    store = SchemaStore(list(schemas.values()))
    other = next(s for d, s in schemas.items() if d != dataset)  # id 2: an incompatible writer
    messages = [RawMessage(Lineage("fuzz", 0, i), v) for i, v in enumerate(values)]
    inputs = _timed(report, per_input_s, decode_inputs, messages, store, schemas[dataset],
                    frozenset(), {1: schemas[dataset], 2: other})
    check_decoded(inputs.decoded, len(values))
    report.values += len(values)
    report.decoded += len(inputs.decoded.rows)
    report.rejected += len(inputs.decoded.errors)
    report.reasons.update(reason_kind(r) for _, r in inputs.decoded.errors)


def run_fuzz(seconds: float, per_input_s: float = 2.0, examples_per_round: int = 200) -> FuzzReport:
    """Fuzz both decoders for ``seconds``; raise on a crash, a hang or a broken invariant."""
    report = FuzzReport()
    common = settings(max_examples=examples_per_round, deadline=None, database=None,
                      suppress_health_check=list(HealthCheck),
                      phases=[Phase.generate, Phase.shrink], print_blob=True)

    @common
    @given(_batch())
    def batches(case: tuple[str, list[bytes | None]]) -> None:
        _one_batch(report, per_input_s, *case)

    @common
    @given(st.sampled_from(DATASETS).flatmap(
        lambda d: st.tuples(st.just(d), _value(d).map(lambda v: (v or b"")[HEADER_LEN:])))
    )
    def bodies(case: tuple[str, bytes]) -> None:
        _one_body(report, per_input_s, *case)

    @common
    @given(_dialect_batch())
    def dialects(case: tuple[str, list[bytes | None]]) -> None:
        _one_dialect_batch(report, per_input_s, *case)

    start = time.monotonic()
    while time.monotonic() - start < seconds:
        batches()
        bodies()
        dialects()
    report.seconds = time.monotonic() - start
    return report


def main() -> None:
    """``python -m corridor.dev.chaos.fuzz SECONDS [OUT.json]``: fuzz, print and save the figures."""
    import json
    import sys

    seconds = float(sys.argv[1]) if len(sys.argv) > 1 else 60.0
    report = run_fuzz(seconds)
    text = json.dumps(report.as_dict(), indent=2)
    print(text)
    if len(sys.argv) > 2:
        with open(sys.argv[2], "w") as fh:
            fh.write(text + "\n")


if __name__ == "__main__":
    main()
