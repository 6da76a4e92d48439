"""Principals and least rights from a corridor file (pure: no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest

from corridor.core import acl
from corridor.core.acl import ZoneGrant
from corridor.core.config import load_config

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def config():
    return load_config(REPO / "corridors.yaml")


@pytest.fixture(scope="module")
def granted(config):
    return acl.grants(config)


def rights(granted, principal):
    return {(g.zone, g.operation, g.resource, g.pattern) for g in granted
            if g.principal == principal}


def test_one_principal_per_park_dataset_corridor_and_destination_zone(config):
    names = {p.name: p.role for p in acl.principals(config)}
    parks = {n for n, r in names.items() if r == acl.PARK}
    assert parks == {f"park-{c.origin}-{d}" for c in config.corridors.values() for d in c.datasets}
    assert {n for n, r in names.items() if r == acl.CORRIDOR} == {
        f"corridor-{n}" for n in config.corridors}
    assert {n for n, r in names.items() if r == acl.ANALYTICS} == {
        f"analytics-{c.destination}" for c in config.corridors.values()}


def test_park_writes_only_its_own_outbound_topic_and_its_file_source_progress(granted):
    assert rights(granted, "park-hk-trade.shipment") == {
        ("hk", "write", "topic", "hk.outbound.trade.shipment"),
        ("hk", "describe", "topic", "hk.outbound.trade.shipment"),
        # `corridor connect source file` as the park: progress in its own transactions
        ("hk", "read", "topic", "hk.connect.progress"),
        ("hk", "write", "topic", "hk.connect.progress"),
        ("hk", "describe", "topic", "hk.connect.progress"),
        ("hk", "write", "transactional_id", "corridor-connect.hk.outbound.trade.shipment.*"),
        ("hk", "describe", "transactional_id", "corridor-connect.hk.outbound.trade.shipment.*"),
    }


def test_corridor_processor_rights_are_exactly_its_own(granted):
    assert rights(granted, "corridor-hk-eu") == {
        ("hk", "read", "topic", "hk.outbound.trade.shipment"),
        ("hk", "describe", "topic", "hk.outbound.trade.shipment"),
        ("hk", "read", "topic", "hk.outbound.ecommerce.order"),
        ("hk", "describe", "topic", "hk.outbound.ecommerce.order"),
        ("hk", "read", "group", "corridor.hk-eu"),
        ("hk", "write", "topic", "hk.withheld.hk-eu"),
        ("hk", "describe", "topic", "hk.withheld.hk-eu"),
        ("hk", "write", "topic", "hk.quarantine.hk-eu"),
        ("hk", "describe", "topic", "hk.quarantine.hk-eu"),
        ("hk", "write", "topic", "hk.audit"),
        ("hk", "describe", "topic", "hk.audit"),
        ("hk", "write", "topic", "hk.audit.checkpoints"),
        ("hk", "describe", "topic", "hk.audit.checkpoints"),
        ("eu", "write", "topic", "corridor.hk-eu.trade.shipment"),
        ("eu", "describe", "topic", "corridor.hk-eu.trade.shipment"),
        ("eu", "write", "topic", "corridor.hk-eu.ecommerce.order"),
        ("eu", "describe", "topic", "corridor.hk-eu.ecommerce.order"),
        *{("eu", op, "topic", t) for op in ("write", "describe")
          for t in ("_corridor.offsets.hk-eu", "_corridor.schemas", "_corridor.keys",
                    "_corridor.checkpoints.hk")},
        ("eu", "read", "topic", "_corridor.offsets.hk-eu"),
        ("eu", "read", "topic", "_corridor.keys"),
        ("eu", "read", "topic", "_corridor.control"),
        ("eu", "describe", "topic", "_corridor.control"),
        ("eu", "read", "group", "corridor-offset-reader-*"),
        ("eu", "read", "group", "corridor-reader-*"),
        ("eu", "read", "group", "corridor-control-*"),
        ("eu", "write", "transactional_id", "corridor.hk-eu.*"),
        ("eu", "describe", "transactional_id", "corridor.hk-eu.*"),
        # corridor held release
        ("hk", "read", "topic", "hk.withheld.hk-eu"),
        ("hk", "read", "topic", "hk.quarantine.hk-eu"),
        ("hk", "read", "group", "corridor-reader-*"),
        *{("eu", op, "topic", "_corridor.released.hk-eu") for op in ("read", "write", "describe")},
    }


def test_transactional_prefix_of_one_corridor_does_not_cover_another():
    # "corridor.hk-eu." must not match the ids of a corridor named "hk-eu2".
    assert not "corridor.hk-eu2.t.0".startswith(acl.transactional_prefix("hk-eu"))


def test_analytics_read_their_zone_and_never_side_or_offset_topics(config, granted):
    mine = rights(granted, "analytics-eu")
    read = {name for zone, op, res, name in mine if res == "topic" and op == "read"}
    assert read == {"corridor.hk-eu.trade.shipment", "corridor.hk-eu.ecommerce.order",
                    "corridor.asean-eu.media.playback", "_corridor.schemas", "_corridor.keys"}
    assert {zone for zone, *_ in mine} == {"eu"}
    assert not any(op == "write" for _, op, _, _ in mine)


@pytest.mark.parametrize("role", [acl.PARK, acl.ANALYTICS])
def test_nobody_but_processors_touches_side_topics_or_offsets(config, granted, role):
    names = {p.name for p in acl.principals(config) if p.role == role}
    touched = {g.name for g in granted if g.principal in names}
    assert not any(".withheld." in t or ".quarantine." in t or t.endswith(".audit")
                   or t.startswith("_corridor.offsets") for t in touched)


def test_one_auditor_per_zone_of_the_corridors(config):
    auditors = {p.name: p.serves for p in acl.principals(config) if p.role == acl.AUDITOR}
    zones = {z for c in config.corridors.values() for z in (c.origin, c.destination)}
    assert auditors == {f"auditor-{z}": z for z in zones}


def test_auditor_reads_the_evidence_of_its_zone_and_nothing_else(granted):
    everything = {"hk.audit", "hk.audit.checkpoints", "_corridor.checkpoints.*",
                  "_corridor.schemas"}
    assert rights(granted, "auditor-hk") == {("hk", op, "topic", name) for op in (
        "read", "describe") for name in everything}


def test_auditors_never_write_join_a_group_or_read_data(config, granted):
    auditors = {p.name for p in acl.principals(config) if p.role == acl.AUDITOR}
    mine = [g for g in granted if g.principal in auditors]
    assert {g.operation for g in mine} == {"read", "describe"}
    assert {g.resource for g in mine} == {"topic"}
    for g in mine:
        assert g.name.startswith(f"{g.zone}.audit") or g.name in (
            "_corridor.checkpoints.", "_corridor.schemas"), g
    assert not any(g.principal in auditors for g in granted
                   if g.name.startswith(("corridor.", "_corridor.offsets", "_corridor.keys"))
                   or ".outbound." in g.name or ".withheld." in g.name
                   or ".quarantine." in g.name)


def test_a_processor_may_touch_only_its_own_offsets_topic(config, granted):
    for c in config.corridors:
        mine = {name for _, _, res, name in rights(granted, acl.corridor_principal(c))
                if res == "topic" and name.startswith("_corridor.offsets")}
        assert mine == {f"_corridor.offsets.{c}"}


def test_no_cluster_or_wildcard_rights(granted, config):
    assert all(g.resource in ("topic", "group", "transactional_id") for g in granted)
    assert all(g.name not in ("*", "") for g in granted)
    # Prefixes only where names are random or per-partition.
    assert {(g.resource, g.name) for g in granted if g.prefixed} <= {
        ("group", acl.OFFSET_READER_GROUPS), ("group", acl.SDK_READER_GROUPS),
        ("group", acl.CONTROL_GROUPS),
        *{("group", f"analytics-{z}") for z in ("eu", "hk", "asean")},
        *{("transactional_id", f"corridor.{n}.") for n in
          ("hk-eu", "hk-asean", "asean-eu", "eu-hk", "asean-hk")},
        ("topic", "_corridor.checkpoints."),  # the copies of each origin's checkpoints
        # a file source's transactional ids: one per job name
        *{("transactional_id", f"corridor-connect.{c.origin}.outbound.{d}.")
          for c in config.corridors.values() for d in c.datasets},
    }


def test_grants_are_sorted_unique_and_stable(config, granted):
    assert granted == sorted(set(granted))
    assert acl.grants(config) == granted


def test_changes_adds_missing_and_removes_only_managed_extras():
    want = {ZoneGrant("hk", "park-a", "write", "topic", "t1")}
    have = {ZoneGrant("hk", "park-a", "write", "topic", "old"),
            ZoneGrant("hk", "someone-else", "read", "topic", "x")}
    add, remove = acl.changes(want, have, ["park-a"])
    assert add == [ZoneGrant("hk", "park-a", "write", "topic", "t1")]
    assert remove == [ZoneGrant("hk", "park-a", "write", "topic", "old")]
    assert acl.changes(want, want, ["park-a"]) == ([], [])


def test_describe_marks_prefixes():
    assert acl.describe(ZoneGrant("eu", "c", "write", "transactional_id", "corridor.x.",
                                  prefixed=True)) == "write transactional_id corridor.x.*"
