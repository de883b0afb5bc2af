"""structlog set-up: human console lines on a TTY, JSON lines otherwise; always on stderr."""

from __future__ import annotations

import logging
import sys

import structlog


def configure(verbose: int = 0, *, json_lines: bool | None = None, stream=None) -> None:
    """Configure structlog once per process.

    verbose: 0 = info, 1+ = debug. json_lines: force a renderer (None = decide by isatty).
    """
    stream = stream or sys.stderr
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
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        logger_factory=structlog.PrintLoggerFactory(file=stream),
        cache_logger_on_first_use=False,
    )


def get_logger(name: str):
    return structlog.get_logger(name)
