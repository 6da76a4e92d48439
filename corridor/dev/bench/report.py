"""Bench results: the JSON the issue specifies, a markdown table, and a PNG chart."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import shutil
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

LABELS = {"mirrormaker2": "MirrorMaker 2", "handwritten": "hand-written loop",
          "corridor-avro": "corridor avro", "corridor-arrow": "corridor arrow",
          "corridor-avro-2x": "corridor avro, 2 instances",
          "corridor-avro-metrics": "corridor avro, metrics on"}


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    mem = 0
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) // 1024
    except OSError:
        pass
    model = ""
    with contextlib.suppress(OSError):
        model = next((ln.split(":", 1)[1].strip() for ln in
                      Path("/proc/cpuinfo").read_text().splitlines()
                      if ln.startswith("model name")), "")
    return {"cpus": os.cpu_count(), "cpu": model, "memory_mib": mem,
            "os": platform.platform(), "python": platform.python_version(),
            "java": shutil.which("java") is not None}


def ratios(systems: dict[str, dict[str, Any]]) -> dict[str, float]:
    """The issue's target ratios, from records/s of the same run."""
    rate = {k: v["records_per_s"] for k, v in systems.items()}
    out = {}
    if "mirrormaker2" in rate:
        for k in ("corridor-avro", "corridor-arrow", "corridor-avro-2x"):
            if k in rate:
                out[f"{k} / mirrormaker2"] = round(rate[k] / rate["mirrormaker2"], 2)
    if "corridor-avro-metrics" in rate and "corridor-avro" in rate:
        out["corridor-avro-metrics / corridor-avro"] = round(
            rate["corridor-avro-metrics"] / rate["corridor-avro"], 2)
    if "handwritten" in rate and "corridor-avro" in rate:
        out["corridor-avro / handwritten"] = round(rate["corridor-avro"] / rate["handwritten"], 2)
    return out


def table(result: dict[str, Any]) -> str:
    """The markdown table of one run."""
    title = (f"{result['records']:,} trade.shipment records (~{result['value_bytes']:.0f} bytes "
             f"each), {result['partitions']} partitions; {result['machine']['cpus']} CPUs; "
             f"{result['date']}")
    lines = [title, "",
             "| system | records/s | MB/s | p50 ms | p99 ms | CPU s / M records | peak RSS MiB |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for key, r in result["systems"].items():
        lines.append(f"| {LABELS.get(key, key)} | {r['records_per_s']:,} | {r['mb_per_s']} | "
                     f"{r['p50_ms']} | {r['p99_ms']} | {r['cpu_s_per_million']} | "
                     f"{r['peak_rss_mib']} |")
    if result.get("ratios"):
        lines += ["", "| ratio (records/s) | value |", "|---|---:|"]
        lines += [f"| {k} | {v}x |" for k, v in result["ratios"].items()]
    return "\n".join(lines) + "\n"


def chart(result: dict[str, Any], path: Path) -> None:
    """Throughput and latency per system, side by side."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = [LABELS.get(k, k).replace(", ", "\n") for k in result["systems"]]
    systems = list(result["systems"].values())
    fig, (left, right) = plt.subplots(1, 2, figsize=(12, 4.5))
    colors = ["#8c8c8c", "#bf8040", "#2f6db5", "#2a9d5c", "#6a51a3"][: len(names)]
    left.barh(names, [s["records_per_s"] / 1000 for s in systems], color=colors)
    left.set_xlabel("thousand records / s (higher is better)")
    left.set_title("throughput")
    left.invert_yaxis()
    y = range(len(names))
    right.barh([i - 0.2 for i in y], [s["p50_ms"] for s in systems], 0.4, label="p50",
               color="#9ecae1")
    right.barh([i + 0.2 for i in y], [s["p99_ms"] for s in systems], 0.4, label="p99",
               color="#3182bd")
    right.set_yticks(list(y), names)
    right.invert_yaxis()
    right.set_xlabel("ms, at half of each system's own throughput (lower is better)")
    right.set_title("end-to-end latency")
    right.legend()
    fig.suptitle(f"{result['records']:,} trade.shipment records, {result['machine']['cpus']} CPUs "
                 "(brokers on the same machine)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write(result: dict[str, Any], folder: Path) -> dict[str, Path]:
    """bench/results/<date>.json, latest.json, latest.md and latest.png."""
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H%M%SZ")
    text = json.dumps(result, indent=2) + "\n"
    paths = {"json": folder / f"{stamp}.json", "latest": folder / "latest.json",
             "md": folder / "latest.md", "png": folder / "latest.png"}
    paths["json"].write_text(text)
    paths["latest"].write_text(text)
    paths["md"].write_text(table(result))
    chart(result, paths["png"])
    return paths
