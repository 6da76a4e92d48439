"""The optional top-level ``audit:`` section: retention of the audit topics and how often the
processor signs a checkpoint::

    audit:
      retention: 3y                  # days (an integer) or N d | w | m | y; default 3y
      checkpoint_every_events: 100   # sign a chain's head after this many events ...
      checkpoint_every_seconds: 60   # ... or this many seconds, whichever comes first

``retention`` sets ``retention.ms`` of ``<zone>.audit``, ``<zone>.audit.checkpoints`` and
``_corridor.checkpoints.<origin>`` (kept by time, never compacted: ``core.topics``). Bad
values are refused with file, line and field like the rest of the file.
"""

from __future__ import annotations

from corridor.core.config.document import MapView, Problems, int_value
from corridor.core.config.instruments import retention_days
from corridor.core.config.model import AuditSettings

AUDIT_KEYS = ("retention", "checkpoint_every_events", "checkpoint_every_seconds")


def build_audit(view: MapView | None, problems: Problems) -> AuditSettings:
    """The section's settings (defaults for what it leaves out, or for a bad value, which
    is reported)."""
    default = AuditSettings()
    if view is None:
        return default
    view.check_keys(AUDIT_KEYS, problems)
    days = retention_days(view, problems) if "retention" in view.data else None
    return AuditSettings(
        retention_days=days or default.retention_days,
        checkpoint_events=int_value(view, "checkpoint_every_events",
                                    default.checkpoint_events, 1, problems),
        checkpoint_seconds=int_value(view, "checkpoint_every_seconds",
                                     default.checkpoint_seconds, 1, problems))
