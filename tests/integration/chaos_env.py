"""Shared pieces of the fault suite (test_faults, test_bad_input, test_zombie, test_tamper).

Each scenario has a short variant (``make test``) and, where length matters, a long one
marked ``chaos`` (``make chaos``); ``SHORT``/``LONG`` parametrize them. Figures for the
report go to ``$CORRIDOR_CHAOS_OUT/<name>.json`` when that variable is set (the
``make chaos`` runner sets it; ``corridor.dev.chaos.report`` merges the files).
"""

from __future__ import annotations

import contextlib
import json
import os
import time
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from corridor.core import topics
from corridor.kafka.io import read_to_end
from corridor.keys.local import LocalKekProvider
from corridor.processor.resolve import zone_endpoint
from corridor.zones import local
from corridor.zones.launcher import default_specs

from .corridor_env import CorridorEnv, drop_topics, make_corridor
from .processor_env import DATASET

needs_launcher = pytest.mark.skipif(local.backend() != "local",
                                    reason="needs the local launcher to kill a broker")


def variants(short: Any, long: Any) -> list[Any]:
    """Parameters for a scenario: the short one always, the long one under ``make chaos``."""
    def args(v: Any) -> tuple[Any, ...]:
        return v if isinstance(v, tuple) else (v,)

    return [pytest.param(*args(short), id="short"),
            pytest.param(*args(long), id="long", marks=pytest.mark.chaos)]


def record_figures(name: str, **figures: Any) -> None:
    """Save a scenario's figures for the chaos report (no-op outside ``make chaos``)."""
    out = os.environ.get("CORRIDOR_CHAOS_OUT")
    if out:
        Path(out).mkdir(parents=True, exist_ok=True)
        Path(out, f"{name}.json").write_text(json.dumps(figures, indent=2) + "\n")


@contextlib.contextmanager
def corridor(zones, tmp_path: Path, partitions: int = 3, edit=None) -> Iterator[CorridorEnv]:
    """A provisioned throwaway corridor (``edit`` may rewrite its YAML text first)."""
    from corridor.commands.provision import provision_topics
    from corridor.core.config import load_config

    env = make_corridor(zones, tmp_path)
    if edit is not None:
        env.path.write_text(edit(env.path.read_text()))
        env.config = load_config(env.path)
    provision_topics(str(env.path), partitions)
    LocalKekProvider(env.keys).init(env.dest)
    try:
        yield env
    finally:
        _drop(zones, env)


def _drop(zones, env: CorridorEnv) -> None:
    """Delete the test's topics; a broker just restarted may need a moment to answer."""
    from corridor.core.errors import KafkaUnavailable

    for attempt in range(3):
        try:
            drop_topics(zones, env)
            return
        except KafkaUnavailable as exc:
            if attempt == 2:
                warnings.warn(f"topics of {env.name} left behind: {exc}", stacklevel=2)
            time.sleep(10)  # the restarted controller catching up; then try again


def assert_exactly_once(report, expected_source: int) -> dict[str, int]:
    """The verify invariant, and the figures the report needs."""
    figures = {"source": report.source, "lost": len(report.missing),
               "duplicates": len(report.delivered_duplicates), "conflicts": len(report.conflicts),
               "accounted": report.accounted}
    assert report.source == expected_source, figures
    assert report.delivered_duplicates == (), figures
    assert report.missing == (), figures
    assert report.conflicts == (), figures
    assert report.unknown == (), figures
    assert report.accounted == expected_source, figures
    assert report.ok
    return figures


@contextlib.contextmanager
def broker_back(zone: str) -> Iterator[Any]:
    """Yields (launcher, [spec]); whatever happens, the zone is running again afterwards."""
    launcher = local.launcher()
    spec = default_specs([zone])
    try:
        yield launcher, spec
    finally:
        launcher.up(spec, print)


def nothing_kept_home_crossed(env: CorridorEnv, admin) -> dict[str, int]:
    """No withheld or quarantined record (by lineage or bytes) is anywhere on the
    destination's disk: read_uncommitted over every destination topic of the corridor
    and the internal ones, so aborted and open transactions count too."""
    origin = zone_endpoint(env.config, env.origin)
    home = (list(read_to_end(origin, admin, topics.withheld(env.corridor)))
            + list(read_to_end(origin, admin, topics.quarantine(env.corridor))))
    lineages = {r.key.decode() for r in home if r.key}
    values = {r.value for r in home if r.value}
    dest = zone_endpoint(env.config, env.dest)
    seen = 0
    corridor_topic = topics.corridor_topic(env.origin, env.dest, DATASET)
    for topic in (corridor_topic, topics.offsets_topic(env.name), topics.SCHEMAS, topics.KEYS):
        for record in read_to_end(dest, admin, topic, uncommitted=True):
            seen += 1
            assert record.header("corridor-lineage") not in lineages, record
            assert record.value not in values, (topic, record.offset)
    return {"kept_home": len(home), "destination_records_read_uncommitted": seen}
