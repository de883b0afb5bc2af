"""How a command's work is shown: a progress bar on a TTY (JSON lines otherwise) from the
programmer's typed events, one summary line, and the `--json` result object
(`qspi_gdb.flash.result.Result.to_json()`); every count comes from the same events and plan.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import sys
import time
from typing import IO

from qspi_gdb import log
from qspi_gdb.flash.progress import (
    PhaseFailed,
    PhaseFinished,
    PhaseProgress,
    PhaseStarted,
    ProgressEvent,
)
from qspi_gdb.flash.result import Result

_log = log.get_logger(__name__)


def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    return f"{n / (1 << 20):.2f} MiB".replace(".00 MiB", " MiB")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


SECTOR = 4096  # NOR "sector": the 4 KiB erase unit
BLOCK = 65536  # NOR "block": the 64 KiB erase unit


def erase_units_text(result: Result) -> str:
    """The erase units behind bytes_erased, named by size when they are not all 4 KiB sectors.

    The plan erases 4 KiB sectors and 64 KiB blocks, and `sectors_erased` counts both, so
    "504 KiB (21 sectors)" would read as 21 equal sectors; the two counts follow from the unit
    count and the byte total.
    """
    units, total = result.sectors_erased, result.bytes_erased
    blocks, rest = divmod(total - units * SECTOR, BLOCK - SECTOR)
    sectors = units - blocks
    if rest or blocks < 0 or sectors < 0:  # not 4 KiB/64 KiB units: say only how many
        return _plural(units, "erase unit")
    if not blocks:
        return _plural(sectors, "sector")
    text = f"{_plural(blocks, 'block')} of 64 KiB"
    return f"{text} + {_plural(sectors, 'sector')} of 4 KiB" if sectors else text


def summary_line(result: Result) -> str:
    """The one line a user reads: what was erased, programmed, identical; verified; time."""
    took = f"Finished in {result.seconds:.2f}s"
    if result.summary:
        return f"{result.summary}. {took}"
    if result.command in ("flash", "erase"):
        verb = "Would erase" if result.dry_run else "Erased"
        if result.chip_erased:
            erased = "the whole chip" + \
                (f" ({human_size(result.bytes_erased)})" if result.bytes_erased else "")
        else:
            erased = f"{human_size(result.bytes_erased)} ({erase_units_text(result)})"
        parts = [f"{verb} {erased}"]
        if result.command == "flash":
            image_bytes = (result.image or {}).get("bytes") or 0
            rate = image_bytes / result.seconds / 1000 if result.seconds > 0 else 0.0
            parts.append(f"{'would program' if result.dry_run else 'programmed'} "
                         f"{human_size(result.bytes_programmed)} "
                         f"({_plural(result.pages_programmed, 'page')})")
            identical = (f"identical {human_size(result.bytes_skipped_unchanged)} "
                         f"({_plural(result.sectors_skipped_unchanged, 'sector')})")
            parts.append(identical if result.dry_run else f"{identical} at {rate:.1f} kB/s")
        line = ", ".join(parts)
        if not result.dry_run:
            line += f"; {_verify_text(result)}"
        return f"{line}. {took}"
    if result.command == "verify":
        text = _verify_text(result)
        return f"{text[:1].upper()}{text[1:]}. {took}"
    if result.command == "read":
        return f"Read {human_size(result.bytes_read)} into {result.output_file}. {took}"
    return took


def _verify_text(result: Result) -> str:
    if result.verify == "verified":
        total = sum(r["length"] for r in result.verified_ranges)
        return (f"verified {human_size(total)} in "
                f"{_plural(_runs(result.verified_ranges), 'range')} (CRC32 on target)")
    if result.verify == "mismatch":
        first = result.mismatched_ranges[0] if result.mismatched_ranges else None
        where = f", first at offset 0x{first['offset']:08X}" if first else ""
        n = len(result.mismatched_ranges)
        return f"verify FAILED: {_plural(n, 'range')} {'differs' if n == 1 else 'differ'}{where}"
    return result.verify


def _runs(ranges: list[dict]) -> int:
    """Contiguous runs in the ranges: CRCs are checked per sector, but a 500 KiB image written
    in one piece is one range to the user."""
    runs, end = 0, None
    for r in sorted(ranges, key=lambda r: r["offset"]):
        if r["offset"] != end:
            runs += 1
        end = r["offset"] + r["length"]
    return runs


class StdoutLost(Exception):
    """stdout is closed or nobody reads it any more (a broken pipe): the result could not be
    printed there. The command's outcome is unchanged; the caller says so on stderr."""


def write_stdout(text: str, stdout: IO[str] | None = None) -> None:
    """Write and flush text on stdout; StdoutLost when that is impossible (and from then on
    stdout goes to /dev/null, so the interpreter's final flush cannot fail again)."""
    stream = stdout or sys.stdout
    try:
        if stream is None:  # started with stdout closed
            raise StdoutLost("stdout is closed")
        stream.write(text)
        stream.flush()
    except (OSError, ValueError) as exc:
        _discard_stdout()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise StdoutLost(reason) from exc


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def print_result(result: Result, *, as_json: bool, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None) -> None:
    """--json: the object on stdout and the summary on stderr; else the summary on stdout.
    StdoutLost when stdout cannot take it."""
    stderr = stderr or sys.stderr
    if as_json:
        write_stdout(json.dumps(result.to_json(), sort_keys=True) + "\n", stdout)
        if result.ok or result.error is None:
            stderr.write(summary_line(result) + "\n")
    else:
        write_stdout(summary_line(result) + "\n", stdout)


class ProgressView:
    """Consumes progress events: a bar with bytes and rate on a TTY, throttled JSON-line log
    records (`event: "progress"`) otherwise. Also records each phase's duration.

    On a TTY the running phases share one line redrawn with \\r, never wider than the terminal
    (a wrapped line cannot be redrawn and would scroll a new line per update). Phases that run
    together (erase and program are pipelined) share that line; each phase that finishes leaves
    its own completed line behind, so the screen ends with one line per phase.
    """

    def __init__(self, stream: IO[str] | None = None, *, tty: bool | None = None,
                 min_interval_s: float = 0.5, width: int = 30, columns: int | None = None):
        self.stream = stream or sys.stderr
        self.tty = self.stream.isatty() if tty is None else tty
        self.min_interval_s = min_interval_s
        self.width = width
        self.columns = columns or _terminal_columns(self.stream)
        self.phase_seconds: dict[str, float] = {}
        self.failed: list[str] = []  # phases that ended with an error or an interrupt
        self._started: dict[str, float] = {}
        self._last_emit = 0.0
        self._line_open = False
        self._active: dict[str, tuple[int, int]] = {}  # running phase -> (done, total)
        self._last_len = 0

    def __call__(self, event: ProgressEvent) -> None:
        now = time.monotonic()
        if isinstance(event, PhaseStarted):
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
            self.close()
            _log.debug("phase failed", phase=event.phase, message=event.message)

    @property
    def running(self) -> tuple[str, ...]:
        """Phases started and not yet finished or failed."""
        return tuple(self._active)

    def close(self) -> None:
        """End an open bar line (before an error or the summary is printed)."""
        if self._line_open:
            self.stream.write("\n")
            self.stream.flush()
            self._line_open = False
            self._last_len = 0

    def _rate(self, phase: str, now: float) -> float:
        elapsed = max(now - self._started.get(phase, now), 1e-6)
        return self._active[phase][0] / elapsed / 1000

    def _rate_text(self, phase: str, now: float) -> str:
        """13 columns: kB/s, MB/s from 10 MB/s up, blank while too short to mean anything (a
        phase that found nothing to do finishes in microseconds)."""
        if now - self._started.get(phase, now) < _MIN_RATE_S:
            return " " * 13
        rate = self._rate(phase, now)
        return f"{rate:8.1f} kB/s" if rate < 10_000 else f"{rate / 1000:8.1f} MB/s"

    def _emit(self, phase: str, now: float, *, force: bool = False,
              finished: bool = False) -> None:
        if not force and now - self._last_emit < (0.1 if self.tty else self.min_interval_s):
            return
        self._last_emit = now
        done, total = self._active[phase]
        if not self.tty:
            _log.info("progress", phase=phase, done=done, total=total,
                      rate_kBps=round(self._rate(phase, now), 1), finished=finished)
            if finished:
                self._active.pop(phase, None)
            return
        if finished:
            # The finished phase gets its own completed line; the others are redrawn below it.
            if total:  # a phase with nothing to do (0 bytes) leaves no line
                self._draw(self._single_line(phase, now))
                self.close()
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


_MIN_RATE_S = 0.05  # below this a rate is noise (0.0 or millions of kB/s)


def _bar(done: int, total: int, width: int) -> str:
    filled = int(width * (min(done / total, 1.0) if total else 1.0))
    return f"[{'#' * filled}{'-' * (width - filled)}]"


def _terminal_columns(stream: IO[str]) -> int:
    try:
        return os.get_terminal_size(stream.fileno()).columns
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return shutil.get_terminal_size().columns
