"""Progress on stderr from the programmer's typed events: a bar on a terminal, plain lines for
logs and pipes, JSON events with --log-format json, nothing with -q / --no-progress; every
running phase reports at a steady rate in every mode. Also records each phase's duration (the
summary's rates are computed over them)."""

from __future__ import annotations

import io
import os
import shutil
import sys
import threading
import time
from typing import IO

from qspi_gdb import log
from qspi_gdb.cli.output import MIN_RATE_S, human_size, rate_text
from qspi_gdb.flash.progress import (
    PhaseFailed,
    PhaseFinished,
    PhaseProgress,
    PhaseStarted,
    ProgressEvent,
)

_log = log.get_logger(__name__)


PROGRESS_MODES = ("bar", "lines", "events", "off")


def progress_mode(log_format: str, *, tty: bool, quiet: bool = False,
                  no_progress: bool = False) -> str:
    """bar on a terminal with the console format, plain lines with the plain format (or a
    console format that is not a terminal), JSON events with the json format; off for -q /
    --no-progress."""
    if quiet or no_progress:
        return "off"
    if log_format == "json":
        return "events"
    return "bar" if log_format == "console" and tty else "lines"


class ProgressView:
    """Consumes progress events and records each phase's duration. Modes:

    - "bar": a bar with bytes and rate on a terminal, redrawn at most every 0.1 s. The running
      phases share one line redrawn with \\r, never wider than the terminal (a wrapped line
      cannot be redrawn); phases that run together (erase and program are pipelined) share it,
      and each phase that finishes leaves its own completed line behind;
    - "lines": one plain line per phase at a steady rate (every `interval_s`, default 1 s) and
      when it ends, for logs and pipes;
    - "events": structlog records (`event: "progress"`, JSON lines with --log-format json) per
      phase at a steady rate (every 0.5 s) and when it ends;
    - "off": nothing shown (-q, --no-progress); durations are still recorded.

    Every running phase reports at the same steady rate, also one whose events come while
    another phase is reporting (erase and program run together). With `heartbeat`, a phase
    whose work gives no events for a while (a chip erase runs a minute in one piece) is
    reported again at that rate with its elapsed time, so a log never falls silent.
    """

    def __init__(self, stream: IO[str] | None = None, *, tty: bool | None = None,
                 mode: str | None = None, interval_s: float | None = None, width: int = 30,
                 columns: int | None = None, heartbeat: bool = False):
        self.stream = stream or sys.stderr
        if mode is None:
            is_tty = self.stream.isatty() if tty is None else tty
            mode = "bar" if is_tty else "events"
        if mode not in PROGRESS_MODES:
            raise ValueError(f"progress mode {mode!r}")
        self.mode = mode
        self.tty = mode == "bar"
        default = {"bar": 0.1, "lines": 1.0, "events": 0.5, "off": 0.0}[mode]
        self.interval_s = interval_s if interval_s is not None else default
        self.width = width
        self.columns = columns or _terminal_columns(self.stream)
        self.phase_seconds: dict[str, float] = {}
        self.failed: list[str] = []  # phases that ended with an error or an interrupt
        self._started: dict[str, float] = {}
        self._last_emit: dict[str, float] = {}  # per phase ("" for the shared bar line)
        self._line_open = False
        self._active: dict[str, tuple[int, int]] = {}  # running phase -> (done, total)
        self._last_len = 0
        self._lock = threading.RLock()  # events and the heartbeat draw one at a time
        self._heartbeat = heartbeat and mode != "off"
        self._ticker: threading.Thread | None = None
        self._stop = threading.Event()

    def __call__(self, event: ProgressEvent) -> None:
        with self._lock:
            self._handle(event)

    def _handle(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if isinstance(event, PhaseStarted):
            self._start_heartbeat()
            self._started[event.phase] = now
            self._active[event.phase] = (0, event.total_bytes)
            self._emit(event.phase, now, force=True)
        elif isinstance(event, PhaseProgress):
            self._active[event.phase] = (event.done_bytes, event.total_bytes)
            self._emit(event.phase, now)
        elif isinstance(event, PhaseFinished):
            self.phase_seconds[event.phase] = round(
                self.phase_seconds.get(event.phase, 0.0) + event.seconds, 3)
            self._active[event.phase] = (event.total_bytes, event.total_bytes)
            self._started[event.phase] = now - event.seconds  # the programmer's own timing
            self._emit(event.phase, now, force=True, finished=True)
        elif isinstance(event, PhaseFailed):
            # the error itself is rendered once, by the command line; here the bar ends
            self._active.pop(event.phase, None)
            self.failed.append(event.phase)
            self._end_line()
            _log.debug("phase failed", phase=event.phase, message=event.message)

    @property
    def running(self) -> tuple[str, ...]:
        """Phases started and not yet finished or failed."""
        return tuple(self._active)

    def close(self) -> None:
        """Stop the heartbeat and end an open bar line (before an error or the summary is
        printed)."""
        ticker, self._ticker = self._ticker, None
        if ticker is not None:
            self._stop.set()
            if ticker is not threading.current_thread():
                ticker.join(timeout=2 * self.interval_s + 1)
        with self._lock:
            self._end_line()

    def _start_heartbeat(self) -> None:
        if not self._heartbeat or self._ticker is not None:
            return
        self._stop = threading.Event()
        self._ticker = threading.Thread(target=self._beat, args=(self._stop,), daemon=True,
                                        name="qspi-gdb progress")
        self._ticker.start()

    def _beat(self, stop: threading.Event) -> None:
        while not stop.wait(self.interval_s):
            with self._lock:
                now = time.monotonic()
                for phase in list(self._active):
                    self._emit(phase, now)  # each phase at most once per interval

    def _end_line(self) -> None:
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
            self._last_len = 0

    def _elapsed(self, phase: str, now: float) -> float:
        return now - self._started.get(phase, now)

    def _rate_text(self, phase: str, now: float) -> str:
        """13 columns: KiB/s, MiB/s from 10 MiB/s up, blank while too short to mean anything
        (a phase that found nothing to do finishes in microseconds)."""
        return f"{rate_text(self._active[phase][0], self._elapsed(phase, now)):>13}"

    def _due(self, key: str, now: float, force: bool) -> bool:
        if not force and now - self._last_emit.get(key, -1e9) < self.interval_s:
            return False
        self._last_emit[key] = now
        return True

    def _emit(self, phase: str, now: float, *, force: bool = False,
              finished: bool = False) -> None:
        if self.mode == "off":
            if finished:
                self._active.pop(phase, None)
            return
        if self.mode == "bar":
            self._draw_bar(phase, now, force=force, finished=finished)
            return
        if not self._due(phase, now, force):
            return
        done, total = self._active[phase]
        if finished:
            self._active.pop(phase, None)
        if self.mode == "events":
            seconds = self._elapsed(phase, now)
            rate = done / seconds / 1024 if seconds >= MIN_RATE_S and done else None
            _log.info("progress", phase=phase, done=done, total=total,
                      rate_KiBps=None if rate is None else round(rate, 1),
                      seconds=round(seconds, 2), finished=finished)
        elif total:  # lines: a phase with nothing to do leaves no line
            self.stream.write(self._plain_line(phase, done, total, now, finished) + "\n")
            self.stream.flush()

    def _plain_line(self, phase: str, done: int, total: int, now: float,
                    finished: bool) -> str:
        seconds = self._elapsed(phase, now)
        rate = rate_text(done, seconds)
        if finished:
            return (f"{phase}: {human_size(total)} done in {seconds:.2f}s"
                    + (f" ({rate})" if rate else ""))
        return (f"{phase}: {human_size(done)} / {human_size(total)} "
                f"({100 * done // max(total, 1)}%) after {seconds:.0f}s"
                + (f", {rate}" if rate else ""))

    def _draw_bar(self, phase: str, now: float, *, force: bool, finished: bool) -> None:
        if not self._due("", now, force):
            return
        if finished:
            # The finished phase gets its own completed line; the others are redrawn below it.
            if self._active[phase][1]:  # a phase with nothing to do (0 bytes) leaves no line
                self._draw(self._single_line(phase, now))
                self._end_line()
            self._active.pop(phase, None)
        if self._visible():
            self._draw(self._line(now))
        self.stream.flush()

    def _visible(self) -> dict[str, tuple[int, int]]:
        return {name: v for name, v in self._active.items() if v[1]}

    def _line(self, now: float) -> str:
        active = self._visible()
        if len(active) == 1:
            return self._single_line(next(iter(active)), now)
        # Phases that run together: a short bar and the bytes done for each, then the rate of
        # the phase started last (programming, which paces the pipeline).
        fixed = sum(len(name) + 13 for name in active) + 2 * (len(active) - 1) + 14
        width = max(5, min(self.width // 2, (self.columns - 1 - fixed) // len(active)))
        parts = []
        for name, (d, t) in active.items():
            parts.append(f"{name} {_bar(d, t, width)} {human_size(d):>9}")
        last = list(active)[-1]
        return f"{'  '.join(parts)} {self._rate_text(last, now)}"

    def _single_line(self, phase: str, now: float) -> str:
        done, total = self._active[phase]
        width = max(10, min(self.width, self.columns - 1 - 52))
        return (f"{phase:<13} {_bar(done, total, width)} {human_size(done):>9} / "
                f"{human_size(total):<9} {self._rate_text(phase, now)}")

    def _draw(self, text: str) -> None:
        text = text[: self.columns - 1]
        self.stream.write("\r" + text.ljust(self._last_len))  # blank out a longer previous line
        self._last_len = len(text)
        self._line_open = True


def _bar(done: int, total: int, width: int) -> str:
    filled = int(width * (min(done / total, 1.0) if total else 1.0))
    return f"[{'#' * filled}{'-' * (width - filled)}]"


def _terminal_columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return shutil.get_terminal_size().columns
