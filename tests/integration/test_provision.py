"""`corridor provision` creates every topic of the corridor file once, in its zone."""

from __future__ import annotations

import pytest

from corridor.commands.provision import provision_topics
from corridor.core.topics import topic_plan

from .corridor_env import drop_topics, make_corridor

pytestmark = pytest.mark.integration


def test_provision_twice_creates_nothing_the_second_time(zones, tmp_path) -> None:
    env = make_corridor(zones, tmp_path)
    try:
        first = provision_topics(str(env.path), 2)
        planned = {(p.zone, p.name) for p in topic_plan(env.config)}
        made = {(z, n) for z, (created, existing) in first.items() for n in created + existing}
        assert made == planned
        own = {(z, n) for z, n in planned if env.origin in n or env.dest in n}
        assert own <= {(z, n) for z, (created, _) in first.items() for n in created}
        second = provision_topics(str(env.path), 2)
        assert all(created == [] for created, _ in second.values())
        assert {(z, n) for z, (_, existing) in second.items() for n in existing} == planned
    finally:
        drop_topics(zones, env)
