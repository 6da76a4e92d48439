"""structlog, configured once: JSON lines when not on a terminal, readable on one."""

from __future__ import annotations

import logging
import os
import sys

import structlog

_configured = False


def configure(level: str | None = None, *, json: bool | None = None) -> None:
    """Configure structlog for the process. Safe to call more than once.

    ``json`` defaults to "stderr is not a terminal"; ``CORRIDOR_LOG_JSON=1/0``
    overrides it. ``level`` defaults to ``CORRIDOR_LOG_LEVEL`` or ``info``.
    """
    global _configured
    level_name = (level or os.environ.get("CORRIDOR_LOG_LEVEL", "info")).upper()
    if json is None:
        env = os.environ.get("CORRIDOR_LOG_JSON")
        json = (env == "1") if env in ("0", "1") else not sys.stderr.isatty()
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if json
        # Tracebacks without locals: locals of the data path hold plaintext records.
        else structlog.dev.ConsoleRenderer(
            exception_formatter=structlog.dev.RichTracebackFormatter(show_locals=False)
        )
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(
            getattr(logging, level_name, logging.INFO)
        ),
        logger_factory=structlog.PrintLoggerFactory(file=sys.stderr),
        cache_logger_on_first_use=False,
    )
    _configured = True


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    if not _configured:
        configure()
    return structlog.get_logger(name)
