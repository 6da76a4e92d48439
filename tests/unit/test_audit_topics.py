"""The ``audit:`` section (retention, checkpoint interval) and the topics it shapes: audit
topics kept by time, never compacted; corridor topics kept for the instrument's retention;
the corridor principal may write the checkpoint topics."""

from __future__ import annotations

from pathlib import Path

import pytest

from corridor.core import acl, topics
from corridor.core.config import AuditSettings
from corridor.core.errors import ConfigErrors
from tests.unit.test_instruments import BASE, load

DAY_MS = 86_400_000


def test_audit_topics_are_kept_three_years_by_default_and_never_compacted(tmp_path: Path) -> None:
    config = load(tmp_path)
    assert config.audit == AuditSettings(retention_days=1095, checkpoint_events=100,
                                         checkpoint_seconds=60)
    plans = {(p.zone, p.name): p for p in topics.topic_plan(config)}
    kept = {"cleanup.policy": "delete", "retention.ms": str(1095 * DAY_MS)}
    for where in (("hk", "hk.audit"), ("hk", "hk.audit.checkpoints"),
                  ("eu", "_corridor.checkpoints.hk")):
        assert plans[where].config == kept and plans[where].partitions == 1
    # The instrument's retention (3y) keeps the corridor topic; the source is not governed.
    assert plans[("eu", "corridor.hk-eu.trade.shipment")].config == {
        "retention.ms": str(1095 * DAY_MS)}
    assert plans[("hk", "hk.outbound.trade.shipment")].config == {}


def test_the_audit_section_sets_retention_and_the_checkpoint_interval(tmp_path: Path) -> None:
    text = BASE + "audit:\n  retention: 7y\n  checkpoint_every_events: 10\n" \
                  "  checkpoint_every_seconds: 5\n"
    config = load(tmp_path, text)
    assert config.audit == AuditSettings(7 * 365, 10, 5)
    (plan,) = [p for p in topics.topic_plan(config) if p.name == "hk.audit"]
    assert plan.config["retention.ms"] == str(7 * 365 * DAY_MS)


@pytest.mark.parametrize(("section", "line", "field"), [
    ("audit:\n  retention: forever\n", 31, "audit.retention"),
    ("audit:\n  checkpoint_every_events: 0\n", 31, "audit.checkpoint_every_events"),
    ("audit:\n  retain: 3y\n", 31, "audit.retain"),
    ("audit: 3y\n", 30, "audit"),
])
def test_a_bad_audit_section_is_refused_with_line_and_field(tmp_path: Path, section: str,
                                                             line: int, field: str) -> None:
    with pytest.raises(ConfigErrors) as info:
        load(tmp_path, BASE + section)
    (error,) = info.value.errors
    assert (error.line, error.field) == (line, field), error.render()


def test_the_corridor_principal_may_write_both_checkpoint_topics(tmp_path: Path) -> None:
    granted = {(g.zone, g.operation, g.resource, g.name)
               for g in acl.grants(load(tmp_path)) if g.principal == "corridor-hk-eu"}
    for zone, topic in (("hk", "hk.audit.checkpoints"), ("eu", "_corridor.checkpoints.hk")):
        assert {(zone, "write", "topic", topic), (zone, "describe", "topic", topic)} <= granted


def test_the_reader_splits_the_zone_topic_into_chains_in_log_order() -> None:
    from corridor.core.audit import BatchSummary, ChainId, ChainState, encode_event, next_event
    from corridor.kafka.audit_reader import by_chain

    def events(partition: int) -> list[bytes]:
        state, out = ChainState.start("c", "t", partition), []
        for i in range(2):
            event, state = next_event(state, BatchSummary(None, "b", "h", i, i), 1)
            out.append(encode_event(event))
        return out

    a, b = events(0), events(1)
    old = b'{"corridor": "c", "topic": "t", "partition": 0, "first": 0}'  # unchained format
    chains = by_chain([a[0], b[0], old, a[1], b[1], b"\xff"])
    assert chains == {ChainId("c", "t", 0): a, ChainId("c", "t", 1): b, None: [old, b"\xff"]}
