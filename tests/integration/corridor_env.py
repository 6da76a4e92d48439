"""A throwaway corridor for one test: unique zone names on the real clusters.

Zone names are fresh (``o<hex>`` on hk's cluster, ``d<hex>`` on eu's), so every
topic the corridor uses is unique to the test (its ``_corridor.offsets.<name>`` too);
only ``_corridor.schemas|keys|control`` are shared with other users of the
destination cluster, keyed by fingerprint or key id.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path

from corridor.core.config import Config, load_config
from corridor.core.topics import topic_plan
from corridor.kafka import admin as kadmin

REPO = Path(__file__).resolve().parents[2]

TEMPLATE = """\
zones:
  {origin}: {{bootstrap: "{ob}", jurisdiction: HK, keys: {{provider: local, path: "{keys}"}}{oreg}}}
  {dest}: {{bootstrap: "{db}", jurisdiction: EU, keys: {dest_keys}{dreg}}}
datasets:
  trade.shipment:
    schema: {repo}/schemas/trade/shipment.avsc
    fields: {{contact_name: personal, contact_email: personal, national_id: sensitive,
              category: public}}
    validate: ["declared_value >= 0"]
corridors:
  {name}:
    from: {origin}
    to: {dest}
    datasets: [trade.shipment]
    legal_basis: TEST-BASIS
    format: {fmt}
{wire}    withhold: "consent == false"
    transform: {transform}
"""
TRANSFORM = "{national_id: drop, contact_email: encrypt}"
PSEUDONYMIZED = "{national_id: drop, contact_email: encrypt, contact_name: pseudonymize}"


@dataclass
class CorridorEnv:
    path: Path
    config: Config
    name: str
    origin: str
    dest: str
    keys: Path

    @property
    def corridor(self):  # -> Corridor
        return self.config.corridors[self.name]


def make_corridor(zones, tmp_path: Path, fmt: str = "avro", dest_keys: str | None = None, *,
                  registries: tuple[str | None, str | None] = (None, None),
                  wire: str | None = None, transform: str = TRANSFORM) -> CorridorEnv:
    """``dest_keys``: the destination zone's ``keys:`` mapping in YAML flow style
    (default: the local kek_provider in ``tmp_path/keys``, shared with the origin).
    ``registries``: the origin's and the destination's schema registry URL (none by
    default); ``wire``: the corridor's ``wire:`` (none by default); ``transform``: its
    ``transform:`` mapping in flow style (``PSEUDONYMIZED`` pseudonymizes contact_name too)."""
    tag = uuid.uuid4().hex[:8]
    origin, dest, name = f"o{tag}", f"d{tag}", f"c{tag}"
    keys = tmp_path / "keys"
    dest_keys = dest_keys or f'{{provider: local, path: "{keys}"}}'
    oreg, dreg = (f', schema_registry: {{url: "{url}"}}' if url else "" for url in registries)
    text = TEMPLATE.format(origin=origin, dest=dest, name=name, fmt=fmt, keys=keys, repo=REPO,
                           dest_keys=dest_keys, oreg=oreg, dreg=dreg,
                           wire=f"    wire: {wire}\n" if wire else "", transform=transform,
                           ob=zones.endpoint("hk").bootstrap, db=zones.endpoint("eu").bootstrap)
    path = tmp_path / "corridors.yaml"
    path.write_text(text)
    return CorridorEnv(path, load_config(path), name, origin, dest, keys)


def drop_topics(zones, env: CorridorEnv) -> None:
    """Delete the test's own topics, its offsets topic included (never the shared
    ``_corridor.schemas|keys|control``)."""
    cluster = {env.origin: "hk", env.dest: "eu"}  # the offsets topic lives in the destination
    for plan in topic_plan(env.config):
        if env.origin in plan.name or env.dest in plan.name or env.name in plan.name:
            kadmin.delete_topics(zones.admin(cluster[plan.zone]), [plan.name])
