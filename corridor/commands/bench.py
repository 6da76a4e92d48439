"""`corridor bench`: corridor against MirrorMaker 2 and a hand-written loop, on the local zones."""

from __future__ import annotations

import os
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import click
from rich.console import Console
from rich.markdown import Markdown
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from corridor.zones import local

REPO = Path(__file__).resolve().parents[2]


@click.command()
@click.option("--records", type=click.IntRange(1000), default=None,
              help="Records in the workload (default: $BENCH_RECORDS or 1,000,000).")
@click.option("--systems", default=None,
              help="Comma-separated subset: mirrormaker2,handwritten,corridor-avro,"
                   "corridor-arrow,corridor-avro-2x, corridor-avro-metrics (default: all but the "
                   "last, which measures the metrics' cost).")
@click.option("--batch", type=click.IntRange(1), default=None,
              help="Corridor batch.max_records (default: corridor's default).")
@click.option("--latency-s", default=10.0, show_default=True, help="Measured paced seconds.")
@click.option("--out", "out_dir", default=str(REPO / "bench" / "results"), show_default=True,
              type=click.Path(file_okay=False), help="Where results are written.")
@click.option("--keep", is_flag=True, help="Keep the run's topics (default: deleted at the end).")
def bench(records: int | None, systems: str | None, batch: int | None, latency_s: float,
          out_dir: str, keep: bool) -> None:
    """Measure MirrorMaker 2, a hand-written loop and corridor on the same seeded records.

    Needs the local zones up (`make up`) and the MirrorMaker 2 jars
    (infra/fetch-mirror.sh; `make bench` fetches them). Writes
    bench/results/<date>.json, latest.json, latest.md and latest.png.
    """
    from corridor.core.config import BatchSettings
    from corridor.dev.bench import report
    from corridor.dev.bench.suite import DEFAULT_SYSTEMS, SYSTEMS, Bench, sample_values
    from corridor.dev.bench.workload import drop, make_env, produce, provision

    n = records or int(os.environ.get("BENCH_RECORDS", "1000000"))
    chosen = tuple(s.strip() for s in systems.split(",")) if systems else DEFAULT_SYSTEMS
    unknown = [s for s in chosen if s not in SYSTEMS]
    if unknown:
        raise click.BadParameter(f"unknown system {unknown[0]!r}", param_hint="--systems")
    console = Console()
    # BENCH_DEST_ZONE: the destination cluster (eu; asean when eu is busy with something else).
    dest = os.environ.get("BENCH_DEST_ZONE", "eu")
    endpoints, admin = local.endpoints(["hk", dest]), local.credentials().admin
    folder = Path(tempfile.mkdtemp(prefix="corridor-bench-"))
    env = make_env(folder, endpoints["hk"], endpoints[dest],
                   batch or BatchSettings().max_records)
    console.print(f"bench run {env.tag}: {n:,} records; logs in {folder}")
    provision(env, admin)
    columns = (TextColumn("[bold]{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
               TextColumn("{task.fields[note]}"), TimeElapsedColumn())
    try:
        with Progress(*columns, console=console) as progress:
            task = progress.add_task("generate", total=n, note="")
            sizes = produce(env, admin, n, 42, lambda k: progress.advance(task, k))
            tasks: dict[str, int] = {}

            def tick(name: str, done: int, total: int) -> None:
                if name not in tasks:
                    tasks[name] = progress.add_task(name, total=total or None, note="")
                progress.update(tasks[name], completed=done, total=total or None)

            runner = Bench(env, admin, n, sizes[0] / n, tick, latency_s=latency_s, logs=folder,
                           paced_values=sample_values(), mm2_tasks=int(
                               os.environ.get("BENCH_MM2_TASKS", "2")))
            results = runner.run(chosen)
    finally:
        if not keep:
            drop(env, admin)
    result = {"machine": report.machine(), "records": n, "value_bytes": round(sizes[0] / n, 1),
              "arrow_source_bytes": sizes[1], "partitions": 6,
              "batch_max_records": batch or BatchSettings().max_records,
              "mm2_tasks": runner.mm2_tasks,
              "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
              "systems": results, "ratios": report.ratios(results)}
    paths = report.write(result, Path(out_dir))
    console.print(Markdown(paths["md"].read_text()))
    console.print(f"written: {', '.join(str(p) for p in paths.values())}")
