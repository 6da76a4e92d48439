"""What a connector run cost this process: its peak resident memory."""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mib() -> float:
    """Peak resident set size of this process, in MiB.

    ``VmHWM`` of ``/proc/self/status`` where there is one: ``getrusage``'s ``ru_maxrss`` is
    carried across ``execve`` on Linux, so a loader started from a large parent (a test
    runner) would report the parent's peak, not its own. Elsewhere ``ru_maxrss`` (KiB).
    """
    try:
        for line in STATUS.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
