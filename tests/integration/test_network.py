"""Network faults between the processor and both brokers, without root: every byte the
processor exchanges with the origin and the destination crosses a ``FaultProxy`` of our
own, which resets connections, delays them, drops traffic (a black hole: nothing
forwarded, sockets left open) or takes the link down (resets, then refuses). Records keep
arriving while each fault lasts; afterwards ``corridor verify`` must pass with nothing
lost and nothing duplicated, and nothing withheld or quarantined may be on the
destination's disk.

How the traffic is made to cross the proxy: each local zone has a second client listener
(``ZoneSpec.proxied_listener_port``) that advertises ``ZoneSpec.proxy_port``; the proxy
listens there and forwards to the listener, and the processor's corridors.yaml
bootstraps at the proxy port. The test itself (producing, reading committed offsets,
verify) talks to the brokers directly.
"""

from __future__ import annotations

import contextlib
import dataclasses
import time
from collections.abc import Iterator

import pytest

from corridor.core.config import load_config
from corridor.dev.chaos.proxy import FaultProxy
from corridor.zones.launcher import default_specs

from .chaos_env import (
    assert_exactly_once,
    corridor,
    needs_launcher,
    nothing_kept_home_crossed,
    record_figures,
    variants,
)
from .corridor_env import CorridorEnv
from .processor_env import Processor, committed, produce, verify, wait_until

pytestmark = [pytest.mark.integration, needs_launcher]


@dataclasses.dataclass
class Link:
    """The processor's two network paths, each through its own proxy."""

    origin: FaultProxy
    destination: FaultProxy

    @property
    def both(self) -> tuple[FaultProxy, FaultProxy]:
        return (self.origin, self.destination)


@contextlib.contextmanager
def proxied(env: CorridorEnv, tmp_path) -> Iterator[tuple[CorridorEnv, Link]]:
    """The corridor as the processor sees it (bootstraps at the proxies), and the proxies."""
    hk, eu = default_specs(["hk", "eu"])
    text = env.path.read_text()
    assert text.count(hk.bootstrap) == 1 and text.count(eu.bootstrap) == 1, text
    text = (text.replace(hk.bootstrap, f"127.0.0.1:{hk.proxy_port}")
                .replace(eu.bootstrap, f"127.0.0.1:{eu.proxy_port}"))
    path = tmp_path / "corridors-via-proxy.yaml"
    path.write_text(text)
    via = dataclasses.replace(env, path=path, config=load_config(path))
    with FaultProxy(hk.proxied_listener_port, port=hk.proxy_port) as origin, \
            FaultProxy(eu.proxied_listener_port, port=eu.proxy_port) as destination:
        yield via, Link(origin, destination)


class Stream:
    """Feeds the corridor in chunks and waits for the processor to catch up."""

    def __init__(self, env: CorridorEnv, admin, chunk: int) -> None:
        self.env, self.admin, self.chunk = env, admin, chunk
        self.sent = 0
        self.proc: Processor | None = None

    def more(self) -> None:
        produce(self.env, self.admin, self.chunk, seed=1000 + self.sent, bad_ratio=0.01)
        self.sent += self.chunk

    def committed(self) -> int:
        """Source records behind the committed positions; fails at once if the processor
        has exited (it must ride out every fault)."""
        if self.proc is not None and self.proc.proc.poll() is not None:
            raise AssertionError("the processor exited during the fault:\n"
                                 + self.proc.log()[-3000:])
        return committed(self.env, self.admin)

    def progressed(self, since: int, what: str, timeout_s: float = 120) -> int:
        wait_until(lambda: self.committed() > since, timeout_s, what)
        return self.committed()

    def caught_up(self, what: str, timeout_s: float = 300) -> None:
        wait_until(lambda: self.committed() == self.sent, timeout_s, what)


def _resets(stream: Stream, link: Link, rounds: int) -> dict:
    """Reset every connection on both paths, then again once the processor has committed
    something more: each reset lands mid-stream, and recovery from each is shown."""
    resets = 0
    for n in range(rounds):
        before = stream.committed()
        stream.more()
        resets += sum(p.reset() for p in link.both)
        stream.progressed(before, f"a commit after reset {n + 1}")
    return {"resets": rounds, "connections_reset": resets}


def _delay(stream: Stream, link: Link, rounds: int) -> dict:
    """100 ms on every chunk in both directions of both paths (a slow, distant link)."""
    for p in link.both:
        p.delay(0.1)
    for n in range(rounds):
        stream.more()
        stream.caught_up(f"every record committed through the slow link (round {n + 1})", 300)
    for p in link.both:
        p.delay(0)
    return {"delay_ms": 100, "rounds": rounds}


def _drop(stream: Stream, link: Link, seconds: float) -> dict:
    """A black hole on the destination path, then on the origin path (longer than the
    group's session timeout: the processor is evicted and must rejoin), each while
    records arrive. While the destination path drops everything, nothing commits."""
    held = {}
    for name, proxy in (("destination", link.destination), ("origin", link.origin)):
        before = stream.committed()
        proxy.stall(True)
        stream.more()
        # The fault itself: the path drops everything for this long.
        time.sleep(2)
        plateau = stream.committed()
        time.sleep(seconds - 2)
        held[name] = stream.committed() - plateau
        proxy.stall(False)
        stream.progressed(before, f"commits after the {name} path came back", 180)
    assert held["destination"] == 0, held  # nothing can commit without the destination
    return {"drop_s": seconds, "committed_while_destination_dropped": held["destination"]}


def _link_down(stream: Stream, link: Link, seconds: float) -> dict:
    """Both paths down at once: open connections reset and new ones refused."""
    before = stream.committed()
    for p in link.both:
        p.refuse(True)
        p.reset()
    stream.more()
    # The fault itself: the link stays down this long.
    time.sleep(seconds)
    refused = sum(p.stats.refused for p in link.both)
    for p in link.both:
        p.refuse(False)
    stream.progressed(before, "commits after the link came back", 180)
    assert refused > 0, "the processor never tried to reconnect while the link was down"
    return {"down_s": seconds, "connections_refused": refused}


FAULTS = {
    "reset": (_resets, 3, 20),
    "delay": (_delay, 2, 5),
    "drop": (_drop, 15.0, 45.0),
    "link_down": (_link_down, 15.0, 60.0),
}


@pytest.mark.parametrize("length", variants("short", "long"))
@pytest.mark.parametrize("fault", list(FAULTS))
def test_network_fault_loses_and_duplicates_nothing(zones, tmp_path, fault, length):
    admin = zones.credentials.admin
    action, short, long = FAULTS[fault]
    chunk = 5_000 if length == "short" else 20_000
    with corridor(zones, tmp_path) as env, proxied(env, tmp_path) as (via, link):
        stream = Stream(env, admin, chunk)
        stream.more()
        proc = stream.proc = Processor(via, tmp_path, f"net-{fault}")
        try:
            stream.progressed(0, "first commits through the proxies")
            started = time.monotonic()
            details = action(stream, link, short if length == "short" else long)
            stream.more()  # and the stream goes on after it
            stream.caught_up("every record committed after the fault")
            took = time.monotonic() - started
            assert proc.stop() == 0, proc.log()[-3000:]
        finally:
            proc.close()
        # The processor's traffic really went through the proxies (not around them).
        assert all(p.stats.bytes_up > 0 and p.stats.bytes_down > 0 for p in link.both)
        figures = assert_exactly_once(verify(env, admin), stream.sent)
        figures |= nothing_kept_home_crossed(env, admin)
    record_figures(f"network_{fault}_{length}", scenario=f"network {fault}", records=stream.sent,
                   fault_s=round(took, 1), **details, **figures,
                   proxy_connections=sum(p.stats.connections for p in link.both))
