"""The stored-position records of ``_corridor.offsets``: old ones (no topic id) still read."""

from __future__ import annotations

import json

from corridor.core.errors import SourceRecreated
from corridor.core.offsets import StoredOffset, decode_stored, encode_offset


def test_a_position_round_trips_with_its_source_topic_id() -> None:
    value = encode_offset(1234, "1000-1233", "q+pPhWCMRRyL4NKGWhDWWg")
    assert decode_stored(value) == StoredOffset(1234, "q+pPhWCMRRyL4NKGWhDWWg")


def test_a_record_written_before_topic_ids_reads_without_one() -> None:
    old = json.dumps({"next": 77, "batch": "0-76"}).encode()
    assert decode_stored(old) == StoredOffset(77, None)
    assert "topic_id" not in json.loads(encode_offset(5, "0-4"))


def test_the_refusal_names_the_topic_both_ids_and_what_to_do() -> None:
    error = SourceRecreated("hk-eu", "hk.outbound.trade.shipment", "AAA", "BBB")
    text = str(error)
    assert "hk.outbound.trade.shipment was deleted and recreated" in text
    assert "AAA" in text and "BBB" in text and "Nothing of the new topic was read" in text
    assert error.fields()["stored_topic_id"] == "AAA"


def test_audit_events_and_a_checkpoint_ride_in_the_record_byte_for_byte() -> None:
    events = ('{"corridor":"hk-eu","note":"caf\u00e9 \u6e2f"}'.encode(), b'{"seq":1}')
    value = encode_offset(10, "5-9", "id", events, b'{"seq":1,"signature":"ab"}')
    stored = decode_stored(value)
    assert stored.audit == events and stored.checkpoint == b'{"seq":1,"signature":"ab"}'
    assert decode_stored(encode_offset(10, "5-9")).audit == ()
