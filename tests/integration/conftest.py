"""Real brokers for the integration tests, started once per run of the suite.

The ``zones`` fixture adopts zones that already run (``make up``) and starts
the others; at the end it stops only what it started. ``CORRIDOR_ZONES=external``
uses clusters that are already running elsewhere.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass

import pytest

from corridor.kafka import admin as kadmin
from corridor.kafka.clients import Endpoint, admin_client
from corridor.zones import local
from corridor.zones.credentials import Credentials
from corridor.zones.launcher import default_specs

pytestmark = pytest.mark.integration


@dataclass
class Zones:
    endpoints: dict[str, Endpoint]
    credentials: Credentials
    started: list[str]

    def endpoint(self, zone: str) -> Endpoint:
        return self.endpoints[zone]

    def admin(self, zone: str):  # -> AdminClient
        return admin_client(self.endpoints[zone], self.credentials.admin)


@pytest.fixture(scope="session")
def zones() -> Iterator[Zones]:
    started: list[str] = []
    registries: list[str] = []
    launcher = registry = None
    if local.backend() == "local":
        launcher = local.launcher()
        started = launcher.up(default_specs(), print)
        # Each local zone's schema registry too (corridors with wire: confluent, the dialect
        # tests, the demo's file): adopted when running, else started and stopped here.
        registry = local.registries()
        registries = registry.up(default_specs(), print)
    yield Zones(local.endpoints(), local.credentials(), started)
    if registry is not None and registries:
        registry.down(default_specs(registries), print)
    if launcher is not None and started:
        launcher.down(default_specs(started), print)


@pytest.fixture
def make_topic(zones: Zones) -> Iterator[Callable[..., str]]:
    """Create uniquely named topics for one test; delete them afterwards."""
    made: list[tuple[str, str]] = []

    def make(zone: str, prefix: str = "t", partitions: int = 3, **config: str) -> str:
        name = f"test.{prefix}.{uuid.uuid4().hex[:10]}"
        kadmin.ensure_topics(zones.admin(zone), [kadmin.TopicSpec(name, partitions, config)])
        made.append((zone, name))
        return name

    yield make
    for zone in {z for z, _ in made}:
        kadmin.delete_topics(zones.admin(zone), [n for z, n in made if z == zone])
