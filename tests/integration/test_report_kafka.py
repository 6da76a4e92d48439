"""`corridor report`'s reader on a real zone: chained audit events written in transactions
to a topic of hk (one aborted, as a processor's retried batch would be; one committed twice),
read back and reported: the aborted write is not seen, the duplicate is counted once, and
the totals reconcile."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from corridor.core.audit import encode_event
from corridor.core.model import OutMessage
from corridor.core.report import (
    Window,
    build_report,
    chain_statuses,
    report_document,
    split_log,
)
from corridor.kafka.evidence import read_log
from corridor.kafka.io import TransactionalWriter
from tests.integration.conftest import Zones
from tests.unit.report_fixtures import CONSENT, HOUR, INVALID, SHIPMENT, T0, Chain, sample_config

pytestmark = pytest.mark.integration


def test_report_of_events_read_from_a_real_topic(zones: Zones, make_topic: Callable[..., str],
                                                 tmp_path: Path) -> None:
    topic = make_topic("hk", "audit", partitions=1)
    chain = Chain("hk-eu", SHIPMENT)
    writer = TransactionalWriter(zones.endpoint("hk"), zones.credentials.admin,
                                 f"test-report-{topic}")

    def write(*values: bytes, commit: bool = True) -> None:
        writer.write([OutMessage(topic, v, key=f"hk-eu/{SHIPMENT}/0".encode(), partition=0)
                      for v in values], commit=commit)

    for hour in range(4):
        event = encode_event(chain.batch(T0 + hour * HOUR, 90, {CONSENT: 8}, {INVALID: 2}))
        if hour == 1:
            write(event, commit=False)  # the transaction aborted; the batch is retried
        write(event)
        if hour == 2:
            write(event)  # committed twice: a replay
    values = [r.value or b"" for r in read_log(zones.endpoint("hk"), zones.credentials.admin,
                                               topic).records]
    assert len(values) == 5
    log = split_log(values)
    doc = report_document(build_report(
        log.events, sample_config(tmp_path), Window(T0, T0 + 24 * HOUR), corridors=["hk-eu"],
        statuses=chain_statuses(log.chains), undecodable=log.undecodable))
    assert doc["ok"] and doc["replays"] == 1 and doc["events"] == 4
    assert doc["totals"] == {"source": 400, "delivered": 360, "withheld": 32, "quarantined": 8,
                             "withheld_by_reason": {CONSENT: 32},
                             "quarantined_by_reason": {INVALID: 8}}
    chain_doc = doc["corridors"][0]["chains"][0]
    assert chain_doc["offset_ranges"] == [[0, 399]] and chain_doc["reconciles"]
