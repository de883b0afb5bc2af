"""structlog set-up, always on stderr, in one of three formats:

- "console": coloured, aligned lines for a person at a terminal (no colour when NO_COLOR is set,
  https://no-color.org);
- "plain": the same information as plain text, one line per event, for CI logs and pipes;
- "json": one JSON object per line, for machines.

Verbosity: 0 = info and up, 1 = debug of every module except the GDB/MI traffic, 2 = the
traffic too (events logged with `traffic()`); quiet = warnings and errors only.
"""

from __future__ import annotations

import logging
import os
import sys

import structlog

FORMATS = ("console", "plain", "json")
TRAFFIC_KEY = "_traffic"  # marks a GDB/MI traffic event (shown only at verbosity 2)


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


def colour_allowed(stream) -> bool:
    """Colour only on a terminal, and never when NO_COLOR is set to anything non-empty."""
    return bool(stream.isatty()) and not os.environ.get("NO_COLOR")


def default_format(stream=None) -> str:
    """console on a terminal, plain otherwise."""
    stream = stream or _CurrentStderr()
    return "console" if stream.isatty() else "plain"


def _traffic_filter(verbose: int):
    def drop_traffic(_logger, _method, event_dict):
        if event_dict.pop(TRAFFIC_KEY, False) and verbose < 2:
            raise structlog.DropEvent
        return event_dict

    return drop_traffic


def _plain_renderer(_logger, _method, event_dict) -> str:
    """'06:58:23 info    openocd ready pid=26744 gdb=127.0.0.1:39827'."""
    stamp = event_dict.pop("timestamp", "")
    level = event_dict.pop("level", "info")
    event = event_dict.pop("event", "")
    rest = " ".join(f"{key}={_plain_value(value)}" for key, value in event_dict.items())
    return " ".join(part for part in (stamp, f"{level:<7}", str(event), rest) if part)


def _plain_value(value) -> str:
    text = str(value)
    return repr(text) if not text or any(c.isspace() for c in text) else text


def configure(verbose: int = 0, *, json_lines: bool | None = None, stream=None,
              fmt: str | None = None, quiet: bool = False) -> None:
    """Configure structlog once per process.

    fmt: "console" | "plain" | "json"; None = json when json_lines, else console on a terminal
    and plain otherwise. stream: where log lines go (default: the current sys.stderr, looked up
    at each write). quiet: warnings and errors only.
    """
    stream = stream or _CurrentStderr()
    if fmt is None:
        fmt = "json" if json_lines else ("plain" if json_lines is False and not stream.isatty()
                                         else default_format(stream))
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r} is not one of {', '.join(FORMATS)}")
    if quiet:
        level = logging.WARNING
    else:
        level = logging.DEBUG if verbose else logging.INFO
    if fmt == "json":
        renderer = structlog.processors.JSONRenderer()
        # JSON lines are for machines (ISO UTC); a person needs the time of day only.
        stamper = structlog.processors.TimeStamper(fmt="iso", utc=True)
    elif fmt == "console":
        renderer = structlog.dev.ConsoleRenderer(colors=colour_allowed(stream))
        stamper = structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False)
    else:
        renderer = _plain_renderer
        stamper = structlog.processors.TimeStamper(fmt="%H:%M:%S", utc=False)
    structlog.configure(
        processors=[
            _traffic_filter(verbose),
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            stamper,
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


def traffic(logger, event: str, **values) -> None:
    """A debug event of the GDB/MI traffic: shown at verbosity 2 (-vv) only."""
    logger.debug(event, **values, **{TRAFFIC_KEY: True})
