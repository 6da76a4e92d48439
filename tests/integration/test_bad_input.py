"""Hostile input on real brokers: every class of bad record ends in quarantine with its own
specific reason (matched by lineage) while the processor keeps running; and the decoder
fuzz (20 s here, 10 min under ``make chaos``)."""

from __future__ import annotations

import math
import os
import re
from collections import Counter

import pytest

from corridor.core import topics
from corridor.core.pipeline import MAX_RECORD_BYTES
from corridor.core.schema import MAGIC, frame, load_schema
from corridor.dev.chaos.fuzz import run_fuzz
from corridor.dev.sample import SCHEMAS, encode, generate_records, generate_rows
from corridor.kafka.io import PlainProducer, read_to_end
from corridor.processor.resolve import zone_endpoint

from .chaos_env import assert_exactly_once, corridor, record_figures, variants
from .processor_env import DATASET, Processor, verify

pytestmark = pytest.mark.integration
SHIPMENT = load_schema(SCHEMAS / "trade" / "shipment.avsc")
ORDER = load_schema(SCHEMAS / "ecommerce" / "order.avsc")
COPIES = 3  # records per class


def _with_rules(text: str) -> str:
    """NaN/inf money must fail a rule; a second dataset makes 'another schema' a known one."""
    text = text.replace('validate: ["declared_value >= 0"]',
                        'validate: ["is_finite(declared_value)", "declared_value >= 0"]')
    order = (f"  ecommerce.order:\n    schema: {SCHEMAS}/ecommerce/order.avsc\n"
             "    fields: {id_number: sensitive}\n")
    return text.replace("corridors:\n", order + "corridors:\n", 1)


def _row(i: int, **changes: object) -> dict:
    row = generate_rows(DATASET, 1, seed=100 + i, withheld_share=0.0)[0]
    row.update(consent=True, category="general", shipment_id=f"SHP-{i:06d}", **changes)
    return row


def _good(i: int, **changes: object) -> bytes:
    return encode(_row(i, **changes), SHIPMENT)


def _body_with(i: int, marker: str, replacement: bytes) -> bytes:
    value = _good(i, description=marker)
    assert value.count(marker.encode()) == 1
    return value.replace(marker.encode(), replacement)


# class -> (builder of the i-th bad value, the reason it must get, as a regex)
CLASSES = {
    "empty_value": (lambda i: b"", r"decode: empty value$"),
    "one_byte": (lambda i: b"\xc3", r"decode: bad magic c3 "),
    "wrong_magic": (lambda i: b"\xc3\x02" + _good(i)[2:], r"decode: bad magic c302 "),
    "unknown_fingerprint": (lambda i: frame(bytes([0xAB, i, 0, 0, 0, 0, 0, 0x7F]), _good(i)[10:]),
                            r"decode: unknown schema fingerprint ab"),
    "truncated_avro": (lambda i: _good(i)[:-1], r"decode: truncated varint at offset \d+$"),
    "other_schema": (lambda i: generate_records("ecommerce.order", COPIES, seed=5)[i % COPIES],
                     (r"decode: schema ecommerce\.order \([0-9a-f]{16}\) is not dataset "
                      r"trade\.shipment$")),
    "oversized": (lambda i: _good(i, description="x" * (MAX_RECORD_BYTES + 1)),
                  rf"oversized: \d+ bytes exceeds the limit of {MAX_RECORD_BYTES} bytes"),
    "invalid_utf8": (lambda i: _body_with(i, "MARKER!!", b"\xff\xfe\xfd\xfc\x80\x81\xc0\xc1"),
                     r"decode: invalid UTF-8 in string at offset \d+$"),
    "nan_money": (lambda i: _good(i, declared_value=math.nan),
                  r"validate: is_finite\(declared_value\)$"),
    "inf_money": (lambda i: _good(i, declared_value=-math.inf if i % 2 else math.inf),
                  r"validate: is_finite\(declared_value\)$"),
    # The first field's length (zig-zag varint) replaced by -1.
    "negative_length": (lambda i: MAGIC + SHIPMENT.fingerprint + b"\x01" + _good(i)[11:],
                        r"decode: negative string length -1 at offset \d+$"),
}


def test_every_bad_input_class_is_quarantined_with_its_reason(zones, tmp_path):
    admin = zones.credentials.admin
    with corridor(zones, tmp_path, edit=_with_rules) as env:
        source = topics.outbound(env.origin, DATASET)
        origin = zone_endpoint(env.config, env.origin)
        producer = PlainProducer(origin, admin, {"message.max.bytes": 4 * 1024 * 1024})
        sent = 0
        for n in range(COPIES):
            for cls, (build, _) in CLASSES.items():
                producer.produce(source, build(n), f"{cls}:{n}".encode())
                producer.produce(source, _good(1000 + sent), f"good:{sent}".encode())
                sent += 2
        producer.flush(120)
        lineage_of = {r.key.decode(): f"{r.topic}/{r.partition}/{r.offset}"
                      for r in read_to_end(origin, admin, source)}
        proc = Processor(env, tmp_path, "bad", "--until-caught-up", "--idle-ms", "3000")
        try:
            assert proc.wait(240) == 0, proc.log()[-3000:]  # never exited on bad input
        finally:
            proc.close()
        figures = assert_exactly_once(verify(env, admin), sent)
        quarantined = {r.key.decode(): r.header("corridor-reason")
                       for r in read_to_end(origin, admin, topics.quarantine(env.corridor))}
    caught: Counter[str] = Counter()
    for key, lineage in lineage_of.items():
        cls = key.split(":")[0]
        if cls == "good":
            assert lineage not in quarantined, (key, quarantined.get(lineage))
            continue
        reason = quarantined.get(lineage)
        assert reason is not None and re.match(CLASSES[cls][1], reason), (cls, reason)
        caught[cls] += 1
    assert caught == {cls: COPIES for cls in CLASSES}
    record_figures("bad_inputs", scenario="bad input classes", bad_inputs=dict(caught),
                   good=sent // 2, **figures)


FUZZ_LONG_S = float(os.environ.get("CORRIDOR_FUZZ_S", "600"))


# The suite's 600 s per-test timeout would cut the 10-minute fuzz run short.
@pytest.mark.timeout(FUZZ_LONG_S + 300)
@pytest.mark.parametrize("seconds", variants(20.0, FUZZ_LONG_S))
def test_decoder_fuzz(seconds):
    report = run_fuzz(seconds)
    assert report.execs > 0 and report.slowest_s < 2.0
    record_figures(f"fuzz_{int(seconds)}s", scenario="decoder fuzz (hypothesis)",
                   fuzz_execs=report.execs, **report.as_dict())
