"""The denials the security tests checked, collected for the `make chaos` report.

Each test module records its checked denials under its own key in
``chaos/results/denials.json``::

    {"denials_checked": N, "by_module": {"test_acl": [{"who", "action", "error"}, ...]}}

so that the fault suite's report can include ``"denials_checked": N``
(``read_denials()`` returns the file's content, or None).
"""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[2]
DENIALS_FILE = REPO / "chaos" / "results" / "denials.json"


@dataclass(frozen=True)
class Denial:
    who: str
    action: str
    error: str


def record_denials(module: str, denials: list[Denial], path: Path = DENIALS_FILE) -> None:
    """Replace ``module``'s entry in the denials file and recount the total."""
    path.parent.mkdir(parents=True, exist_ok=True)
    current = read_denials(path) or {"by_module": {}}
    current["by_module"][module] = [asdict(d) for d in denials]
    current["denials_checked"] = sum(len(v) for v in current["by_module"].values())
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    tmp.write_text(json.dumps(current, indent=2) + "\n")
    os.replace(tmp, path)


def read_denials(path: Path = DENIALS_FILE) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text())
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) and "by_module" in data else None
