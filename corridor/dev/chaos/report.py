"""`make chaos`: run the long fault suite on the local brokers, then merge its figures.

``python -m corridor.dev.chaos.report [pytest args...]`` runs the chaos scenario files
(tests/integration/test_faults.py, test_network.py, test_bad_input.py, test_zombie.py,
test_tamper.py, and the denial suites test_acl.py and test_tls.py) with their long
variants (``-k "not short"``), each test writing its figures to
``chaos/results/parts/<scenario>.json``. It then writes ``chaos/results/latest.json``::

    {"kills": N, "lost": 0, "duplicates": 0, "bad_inputs": {class: count},
     "fuzz_execs": N, "denials_checked": N, "tests": {...}, "scenarios": [...], ...}

and prints a table. ``denials_checked`` is read from ``chaos/results/denials.json``
when the ACL suite wrote one (``{"denials_checked": N}``, ``{"denials": [...]}``,
``{"by_module": {module: [...]}}`` or a list), else 0 and ``denials_source`` says so.
Exit status: pytest's.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[3]
RESULTS = REPO / "chaos" / "results"
SCENARIO_FILES = ("test_faults.py", "test_network.py", "test_bad_input.py", "test_zombie.py",
                  "test_tamper.py", "test_acl.py", "test_tls.py")


def run_suite(extra: list[str]) -> int:
    """Run the long variants of the chaos scenarios; figures land in RESULTS/parts."""
    parts = RESULTS / "parts"
    parts.mkdir(parents=True, exist_ok=True)
    for old in [*parts.glob("*.json"), RESULTS / "denials.json"]:
        old.unlink(missing_ok=True)  # every figure comes from this run
    files = [str(REPO / "tests" / "integration" / f) for f in SCENARIO_FILES]
    cmd = [sys.executable, "-m", "pytest", *files, "-k", "not short", "-p", "no:cacheprovider",
           f"--junitxml={RESULTS / 'junit.xml'}", "-q", *extra]
    env = {**os.environ, "CORRIDOR_CHAOS_OUT": str(parts)}
    return subprocess.call(cmd, cwd=REPO, env=env)


def denials() -> tuple[int, str]:
    """Denials the ACL suite checked, and where the number came from."""
    path = RESULTS / "denials.json"
    if not path.exists():
        return 0, "none: chaos/results/denials.json was not written by the ACL suite"
    data = json.loads(path.read_text())
    if isinstance(data, list):
        return len(data), str(path)
    if isinstance(data, dict):
        if isinstance(data.get("denials_checked"), int):
            return data["denials_checked"], str(path)
        if isinstance(data.get("denials"), list):
            return len(data["denials"]), str(path)
        if isinstance(data.get("by_module"), dict):  # the ACL/TLS suite's shape
            return sum(len(v) for v in data["by_module"].values() if isinstance(v, list)), str(path)
    return 0, f"{path}: unrecognised shape"


def tests_summary() -> dict[str, Any]:
    path = RESULTS / "junit.xml"
    if not path.exists():
        return {}
    root = ET.parse(path).getroot()
    suite = root if root.tag == "testsuite" else root.find("testsuite")
    if suite is None:
        return {}
    failed = [c.get("name") for c in suite.iter("testcase")
              if c.find("failure") is not None or c.find("error") is not None]
    return {k: int(suite.get(k, 0)) for k in ("tests", "failures", "errors", "skipped")} | {
        "seconds": round(float(suite.get("time", 0)), 1), "failed": failed}


def merge(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The headline figures, summed over the scenarios that ran."""
    bad: dict[str, int] = {}
    for part in parts:
        for cls, n in part.get("bad_inputs", {}).items():
            bad[cls] = bad.get(cls, 0) + n
    checked, source = denials()
    return {
        "kills": sum(p.get("kills", 0) for p in parts),
        "lost": sum(p.get("lost", 0) for p in parts),
        "duplicates": sum(p.get("duplicates", 0) for p in parts),
        "bad_inputs": bad,
        "fuzz_execs": sum(p.get("fuzz_execs", 0) for p in parts),
        "denials_checked": checked,
        "denials_source": source,
        "records_verified": sum(p.get("source", 0) for p in parts),
        "aborted_zombie_records": sum(p.get("aborted_records", 0) for p in parts),
        "network_faults": sum(1 for p in parts if p["name"].startswith("network_")),
        "connections_reset": sum(p.get("connections_reset", 0) for p in parts),
    }


def table(figures: dict[str, Any], parts: list[dict[str, Any]]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    head = Table(title="corridor chaos: figures")
    head.add_column("figure")
    head.add_column("value", justify="right")
    for key in ("kills", "lost", "duplicates", "records_verified", "fuzz_execs",
                "denials_checked", "aborted_zombie_records", "network_faults",
                "connections_reset"):
        head.add_row(key, str(figures[key]))
    for cls, n in sorted(figures["bad_inputs"].items()):
        head.add_row(f"bad input: {cls}", str(n))
    console.print(head)
    rows = Table(title="scenarios")
    for col in ("scenario", "records", "kills", "lost", "dup", "notes"):
        rows.add_column(col)
    for p in parts:
        notes = {k: v for k, v in p.items() if k in (
            "restart_s", "outage_s", "held_at", "processor_saw", "aborted_records", "fuzz_execs",
            "seconds", "resets", "delay_ms", "drop_s", "down_s", "connections_refused",
            "fault_s")}
        rows.add_row(str(p.get("scenario", p["name"])), str(p.get("records", p.get("source", ""))),
                     str(p.get("kills", "")), str(p.get("lost", "")), str(p.get("duplicates", "")),
                     json.dumps(notes)[:80])
    console.print(rows)
    console.print(f"denials_checked: {figures['denials_checked']} ({figures['denials_source']})")


def main() -> None:
    started = time.time()
    code = run_suite(sys.argv[1:])
    parts = []
    for path in sorted((RESULTS / "parts").glob("*.json")):
        parts.append({"name": path.stem, **json.loads(path.read_text())})
    figures = merge(parts) | {
        "tests": tests_summary(), "pytest_exit": code,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "minutes": round((time.time() - started) / 60, 1), "scenarios": parts,
    }
    (RESULTS / "latest.json").write_text(json.dumps(figures, indent=2) + "\n")
    table(figures, parts)
    print(f"written: {RESULTS / 'latest.json'}")
    sys.exit(code)


if __name__ == "__main__":
    main()
