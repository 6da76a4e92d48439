"""build_plan: topics, egress schemas, constant residency headers, leak and key refusals."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from types import MappingProxyType

import pytest

from corridor.core.config import FieldClass, Transform, WireFormat
from corridor.core.crypto import DataKeyRing, FieldCipher
from corridor.core.errors import PlanError
from corridor.core.plan import build_plan
from tests.unit.plan_fixtures import SECRET, data_key, load, plan_for


def test_topics_and_lookup(tmp_path: Path) -> None:
    plan = plan_for(load(tmp_path), "hk-eu")
    dp = plan.datasets["trade.shipment"]
    assert dp.source_topic == "hk.outbound.trade.shipment"
    assert dp.destination_topic == "corridor.hk-eu.trade.shipment"
    assert plan.withheld_topic == "hk.withheld.hk-eu"
    assert plan.quarantine_topic == "hk.quarantine.hk-eu"
    assert plan.audit_topic == "hk.audit"
    assert plan.source_topics() == ("hk.outbound.trade.shipment",)
    assert plan.dataset_for_topic("hk.outbound.trade.shipment") is dp
    with pytest.raises(PlanError, match="eu.outbound.trade.shipment is not a source"):
        plan.dataset_for_topic("eu.outbound.trade.shipment")


def test_headers_exact(tmp_path: Path) -> None:
    config = load(tmp_path)
    plan = plan_for(config, "hk-eu")
    key_id = data_key("hk-eu").key_id
    policy = config.corridors["hk-eu"].policy_id
    assert plan.datasets["trade.shipment"].headers == (
        ("corridor-origin", b"hk"),
        ("corridor-destination", b"eu"),
        ("corridor-jurisdiction", b"HK"),  # the origin's law governs the data
        ("corridor-classification", b"personal"),  # national_id dropped: sensitive is gone
        ("corridor-legal-basis", b"DEPA"),
        ("corridor-policy", policy.encode()),
        ("corridor-key", key_id.encode()),
    )
    assert policy.startswith("hk-eu@")


def test_encrypted_sensitive_field_keeps_its_class(tmp_path: Path) -> None:
    plan = plan_for(load(tmp_path), "hk-asean")
    dp = plan.datasets["trade.shipment"]
    assert plan.format is WireFormat.ARROW
    assert dp.classification is FieldClass.SENSITIVE
    assert dict(dp.headers)["corridor-jurisdiction"] == b"HK"


def test_no_key_header_without_encryption(tmp_path: Path) -> None:
    config = load(tmp_path)
    corridor = config.corridors["hk-eu"]
    transforms = {"contact_name": Transform.PSEUDONYMIZE, "national_id": Transform.DROP}
    corridor = replace(corridor, transform=MappingProxyType({"trade.shipment": transforms}))
    config = replace(config, corridors=MappingProxyType({**config.corridors, "hk-eu": corridor}))
    plan = build_plan(config, "hk-eu", None, SECRET)
    assert "corridor-key" not in dict(plan.datasets["trade.shipment"].headers)


def test_egress_schema_follows_transforms(tmp_path: Path) -> None:
    dp = plan_for(load(tmp_path), "hk-eu").datasets["trade.shipment"]
    assert "national_id" not in dp.egress.field_names()
    assert dp.egress.field_type("contact_email") == ["null", "bytes"]
    assert dp.egress.field_type("contact_name") == "string"
    assert dp.egress.fingerprint != dp.schema.fingerprint
    assert (
        dp.withhold is not None
        and dp.withhold.text == "consent == false or category == 'strategic'"
    )
    assert [r.text for r in dp.validate] == ["declared_value >= 0"]
    assert dp.important_when is not None


def test_leaking_corridor_is_refused(tmp_path: Path) -> None:
    config = load(tmp_path)
    corridor = config.corridors["hk-eu"]
    leaky = {"contact_name": Transform.PSEUDONYMIZE}  # national_id (sensitive) untransformed
    corridor = replace(corridor, transform=MappingProxyType({"trade.shipment": leaky}))
    config = replace(config, corridors=MappingProxyType({**config.corridors, "hk-eu": corridor}))
    with pytest.raises(PlanError, match="would leak sensitive field national_id of trade.shipment"):
        build_plan(config, "hk-eu", FieldCipher(data_key("hk-eu")), SECRET)


def test_missing_cipher_or_secret_is_refused(tmp_path: Path) -> None:
    config = load(tmp_path)
    with pytest.raises(PlanError, match="contact_email is encrypted but no cipher"):
        build_plan(config, "hk-eu", None, SECRET)
    with pytest.raises(PlanError, match="pseudonymized but no secret 'hk-eu.pseudonym'"):
        build_plan(config, "hk-eu", FieldCipher(data_key("hk-eu")), None)
    with pytest.raises(PlanError, match="no such corridor"):
        build_plan(config, "eu-hk", None, SECRET)


def test_key_ring_and_rotation(tmp_path: Path) -> None:
    config = load(tmp_path)
    ring = DataKeyRing()
    first = ring.rotate("hk-eu")
    plan = build_plan(config, "hk-eu", ring, SECRET)
    assert dict(plan.datasets["trade.shipment"].headers)["corridor-key"] == first.key_id.encode()
    second = ring.rotate("hk-eu")
    rotated = plan.with_cipher(ring.cipher("hk-eu"))
    assert (
        dict(rotated.datasets["trade.shipment"].headers)["corridor-key"] == second.key_id.encode()
    )
    assert rotated.cipher is ring.cipher("hk-eu")


def test_pseudonym_keys_per_corridor(tmp_path: Path) -> None:
    config = load(tmp_path)
    a1, a2 = plan_for(config, "hk-eu"), plan_for(config, "hk-eu")
    b = plan_for(config, "hk-asean")
    assert a1.pseudonym_key is not None and b.pseudonym_key is not None
    assert a1.pseudonym_key == a2.pseudonym_key  # stable
    assert a1.pseudonym_key != b.pseudonym_key  # different across corridors, same master secret
    assert a1.pseudonym_key.reveal() != SECRET  # derived, not the master secret
    assert a1.pseudonym_key.reveal().hex() not in repr(a1) and "SecretBytes" not in repr(a1)
