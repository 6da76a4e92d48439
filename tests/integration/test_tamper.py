"""Tampering on a real corridor topic: a record whose ciphertext was altered, or moved to
another encrypted field, is refused by the consumer API with the specific error."""

from __future__ import annotations

import io

import fastavro
import pytest

from corridor.core import topics
from corridor.core.errors import ContextMismatch, TamperedCiphertext
from corridor.core.schema import frame, unframe
from corridor.kafka.io import PlainProducer, read_to_end
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.sdk import CorridorConsumer

from .chaos_env import corridor, record_figures
from .processor_env import DATASET, Processor, produce

pytestmark = pytest.mark.integration


def _two_encrypted_fields(text: str) -> str:
    return text.replace("transform: {national_id: drop, contact_email: encrypt}",
                        "transform: {national_id: drop, contact_email: encrypt, "
                        "contact_name: encrypt}")


def test_altered_or_moved_ciphertext_is_refused(zones, tmp_path):
    admin = zones.credentials.admin
    with corridor(zones, tmp_path, edit=_two_encrypted_fields) as env:
        produce(env, admin, 200, seed=51)
        proc = Processor(env, tmp_path, "tamper", "--until-caught-up", "--idle-ms", "2000")
        try:
            assert proc.wait(180) == 0, proc.log()[-2000:]
        finally:
            proc.close()
        dest = zone_endpoint(env.config, env.dest)
        topic = topics.corridor_topic(env.origin, env.dest, DATASET)
        kek_provider = LocalKekProvider(env.keys)
        consumer = CorridorConsumer(env.config, topic, kek_provider=kek_provider)
        try:
            originals = list(read_to_end(dest, admin, topic))
            good = [consumer.decode(r)[0] for r in originals]  # the untouched ones decrypt
            assert all(isinstance(g.value["contact_name"], str) for g in good)
            victim = next(r for r in originals
                          if consumer.decode(r)[0].value["contact_email"] is not None)
            fingerprint, body = unframe(victim.value)
            schema = consumer.catalog.schema(fingerprint)
            record = fastavro.schemaless_reader(io.BytesIO(body), schema.parsed, None)
            altered, moved = dict(record), dict(record)
            blob = bytearray(record["contact_email"])
            blob[len(blob) // 2] ^= 0x01
            altered["contact_email"] = bytes(blob)
            moved["contact_name"] = record["contact_email"]  # a valid ciphertext, wrong field

            producer = PlainProducer(dest, admin)
            for value in (altered, moved):
                buf = io.BytesIO()
                fastavro.schemaless_writer(buf, schema.parsed, value)
                producer.produce(topic, frame(fingerprint, buf.getvalue()), victim.key,
                                 list(victim.headers), partition=victim.partition)
            producer.flush(60)
            tail = [r for r in read_to_end(dest, admin, topic, timeout_s=30)
                    if r.partition == victim.partition][-2:]
            with pytest.raises(TamperedCiphertext):
                consumer.decode(tail[0])
            with pytest.raises(ContextMismatch):
                consumer.decode(tail[1])
        finally:
            consumer.close()
        # The iterator a consumer uses refuses them too: no plaintext comes out after them.
        with CorridorConsumer(env.config, topic, kek_provider=kek_provider) as follower, \
                pytest.raises((TamperedCiphertext, ContextMismatch)):
            list(follower.records(idle_timeout_s=15))
    record_figures("tamper", scenario="tampered ciphertext", tampered=2, refused=2,
                   errors=["TamperedCiphertext", "ContextMismatch"])
