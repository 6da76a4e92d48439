"""What a connector run cost: the peak resident memory of this process (or of another one,
such as a Kafka Connect worker)."""

from __future__ import annotations

import resource
from pathlib import Path

STATUS = Path("/proc/self/status")


def peak_rss_mib(pid: int | None = None) -> float:
    """Peak resident set size of this process (or of process ``pid``), in MiB.

    ``VmHWM`` of ``/proc/self/status`` where there is one: ``getrusage``'s ``ru_maxrss`` is
    carried across ``execve`` on Linux, so a loader started from a large parent (a test
    runner) would report the parent's peak, not its own. Elsewhere ``ru_maxrss`` (KiB);
    for another process, 0 when it cannot be read (gone, or no ``/proc``).
    """
    status = STATUS if pid is None else Path(f"/proc/{pid}/status")
    try:
        for line in status.read_text().splitlines():
            if line.startswith("VmHWM:"):
                return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        pass
    if pid is not None:
        return 0.0
    return round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1)
