"""`corridor run`: run one or more corridors in this process."""

from __future__ import annotations

import os
import signal
import threading
from pathlib import Path
from types import FrameType

import click

from corridor import log as corridor_log
from corridor.commands.options import config_option
from corridor.core.config import load_config
from corridor.core.errors import CorridorError


@click.command()
@config_option
@click.option("--corridor", "names", multiple=True, metavar="NAME",
              help="Run this corridor (repeatable). Default: every corridor in the file.")
@click.option("--instance", default=None, help="A name for this instance in logs (default: pid).")
@click.option("--until-caught-up", is_flag=True,
              help="Exit once every source partition is processed to its end (demo, tests).")
@click.option("--idle-ms", default=2000, show_default=True,
              help="With --until-caught-up: how long nothing new must arrive before exiting.")
@click.option("--rotate-every-records", type=click.IntRange(1), default=None, metavar="N",
              help="Start a new data key epoch every N source records (per instance).")
@click.option("--rotate-every-minutes", type=click.FloatRange(min=0, min_open=True),
              default=None, metavar="T", help="Start a new data key epoch every T minutes.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=0, show_default=True,
              envvar="CORRIDOR_METRICS_PORT", show_envvar=True,
              help="Serve Prometheus /metrics, /healthz and /readyz on this port (0: off).")
@click.option("--metrics-host", default="0.0.0.0", show_default=True,
              help="Address the metrics port listens on.")
def run(config_path: str, names: tuple[str, ...], instance: str | None,
        until_caught_up: bool, idle_ms: int, rotate_every_records: int | None,
        rotate_every_minutes: float | None, metrics_port: int, metrics_host: str) -> None:
    """Run corridors: consume the origin, apply the policy, deliver exactly once.

    Each corridor reads its source topics in its origin zone as consumer group
    `corridor.<name>` (start more instances to spread the partitions), writes
    transformed, tagged records to its destination zone in transactions that
    also hold the source offsets, and writes withheld, quarantined and audit
    records to the origin. SIGTERM or Ctrl-C finishes the current batch and
    exits; a second signal exits at once (the open transaction aborts).

    Corridors that encrypt rotate their data keys on the schedule the
    --rotate-every-* options set (they replace the corridor's `rotate` from
    the file), and whenever `corridor keys rotate` asks.
    While the destination's key provider (KMS) is unreachable such a corridor
    pauses (logged once: kms_unavailable) and resumes when it answers.

    With --metrics-port, /metrics (Prometheus), /healthz (the loop turned within
    two minutes) and /readyz (partitions assigned, data key published, KMS
    reachable) answer on that port, 200 or 503.
    """
    from corridor.core.config.rotation import schedule_from_flags
    from corridor.processor.wiring import caught_up, start_runners

    config = load_config(Path(config_path))
    chosen = list(names) or list(config.corridors)
    unknown = [n for n in chosen if n not in config.corridors]
    if unknown:
        raise click.BadParameter(f"unknown corridor {unknown[0]!r}; known: "
                                 f"{', '.join(config.corridors)}", param_hint="--corridor")
    stop = threading.Event()
    install_signals(stop)
    logger = corridor_log.get_logger("corridor.run")
    schedule = schedule_from_flags(rotate_every_records, rotate_every_minutes)
    metrics, health, server = None, {}, None
    if metrics_port:
        from corridor.processor.metrics import CorridorMetrics, serve

        metrics = CorridorMetrics()
        server = serve(metrics, health, metrics_port, metrics_host)
        logger.info("metrics_serving", port=metrics_port, host=metrics_host,
                    paths=["/metrics", "/healthz", "/readyz"])
    runners, threads, failures = start_runners(config, chosen, instance or str(os.getpid()),
                                               stop, logger, schedule, metrics, health)
    try:
        while any(t.is_alive() for t in threads):
            if until_caught_up and not stop.is_set() and caught_up(runners, idle_ms):
                logger.info("caught_up", corridors=chosen)
                stop.set()
            for t in threads:
                t.join(0.2)
    finally:
        stop.set()
        for t in threads:
            t.join()
        if server is not None:
            server.shutdown()
            server.server_close()
    if failures:
        raise CorridorError(f"corridor {failures[0][0]} failed: {failures[0][1]}")


def install_signals(stop: threading.Event) -> None:
    def handler(signum: int, _frame: FrameType | None) -> None:
        if stop.is_set():
            os._exit(128 + signum)  # second signal: at once; the open transaction aborts
        stop.set()

    signal.signal(signal.SIGTERM, handler)
    signal.signal(signal.SIGINT, handler)
