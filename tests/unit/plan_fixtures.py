"""A small corridor file, a fixed data key and messages, shared by the plan/policy/pipeline tests."""

from __future__ import annotations

from pathlib import Path

from corridor.core.config import Config
from corridor.core.crypto import DataKey, FieldCipher, new_data_key
from corridor.core.model import Lineage, RawMessage
from corridor.core.plan import CorridorPlan, build_plan
from tests.unit.config_fixtures import HK_EU, head, load_text
from tests.unit.config_fixtures import SHIP as SHIP  # the plan tests import it from here

SECRET = b"test pseudonym secret, fixed...."

CONFIG = head("hk", "eu", "asean") + """\
    fields:
      contact_name: personal
      contact_email: personal
      national_id: sensitive
      hs_code: public
    record_class: {field: category, important_when: "category in ['strategic', 'dual_use']"}
    validate: ["declared_value >= 0"]
""" + HK_EU + """\
    admit: [normal]
    withhold: "consent == false or category == 'strategic'"
    transform:
      contact_name: pseudonymize
      contact_email: encrypt
      national_id: drop
      location.port: mask
  hk-asean:
    from: hk
    to: asean
    datasets: [trade.shipment]
    legal_basis: PDPO-RMCC
    format: arrow
    key: encrypt-deterministic
    withhold: "consent == false"
    transform:
      contact_name: pseudonymize
      contact_email: encrypt-deterministic
      national_id: encrypt
      location.port: drop
"""


def load(tmp_path: Path) -> Config:
    return load_text(tmp_path, CONFIG)


def data_key(corridor: str, seed: int = 7) -> DataKey:
    return new_data_key(corridor, 1, random=lambda n: bytes([seed]) * n, clock=lambda: 0.0)


def plan_for(config: Config, corridor: str) -> CorridorPlan:
    return build_plan(config, corridor, FieldCipher(data_key(corridor)), SECRET)


def messages(topic: str, values: list[bytes | None], partitions: int = 3) -> list[RawMessage]:
    """Messages of *topic*, spread round-robin over partitions, with keys (every fifth one
    null, every seventh not UTF-8) and timestamps."""
    return [
        RawMessage(Lineage(topic, i % partitions, 100 + i // partitions), v, _key(i),
                   1_700_000_000_000 + 1000 * i)
        for i, v in enumerate(values)
    ]


def _key(i: int) -> bytes | None:
    if i % 5 == 4:
        return None
    return b"\xff\xfe" + bytes([i % 256]) if i % 7 == 6 else f"k{i}".encode()
