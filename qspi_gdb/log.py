"""structlog set-up: human console lines on a TTY, JSON lines otherwise; always on stderr."""

from __future__ import annotations

import logging
import sys

import structlog


class _CurrentStderr:
    """Writes to whatever sys.stderr is at the time of writing, not at configure time.

    A logger bound to the stderr object of the moment outlives it when that object is replaced
    and closed (pytest's capture, a test harness, a daemon re-opening its streams).
    """

    def write(self, text: str) -> int:
        return sys.stderr.write(text)

    def flush(self) -> None:
        sys.stderr.flush()

    def isatty(self) -> bool:
        return sys.stderr.isatty()


def configure(verbose: int = 0, *, json_lines: bool | None = None, stream=None) -> None:
    """Configure structlog once per process.

    verbose: 0 = info, 1+ = debug. json_lines: force a renderer (None = decide by isatty).
    stream: where log lines go (default: the current sys.stderr, looked up at each write).
    """
    stream = stream or _CurrentStderr()
    if json_lines is None:
        json_lines = not stream.isatty()
    level = logging.DEBUG if verbose else logging.INFO
    renderer = (
        structlog.processors.JSONRenderer()
        if json_lines
        else structlog.dev.ConsoleRenderer(colors=stream.isatty())
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            # JSON lines are for machines (ISO UTC); a person at a terminal needs the time only.
            structlog.processors.TimeStamper(fmt="iso", utc=True) if json_lines
            else structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def configure_unless_configured() -> None:
    """For library use (the Python API, the integrations): our set-up unless the program set
    up structlog itself; structlog's own default prints debug lines on stdout."""
    if not structlog.is_configured():
        configure(0)


def get_logger(name: str):
    return structlog.get_logger(name)
