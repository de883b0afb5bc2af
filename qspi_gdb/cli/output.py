"""What a command prints: one summary line and the `--json` result object
(`qspi_gdb.flash.result.Result.to_json()`), stdout handling; the progress view is
`qspi_gdb.cli.progress_view`. Every count comes from the same events and plan.

Figures are honest: a rate is computed over the phase it describes (programming: the bytes
programmed over the time the erase/program pipeline ran, not OpenOCD's start-up), no rate is
shown for work not done, and sizes are B / KiB / MiB throughout (rates KiB/s, MiB/s).
"""

from __future__ import annotations

import json
import os
import sys
from typing import IO

from qspi_gdb.errors import UsageError
from qspi_gdb.flash.progress import PROGRAMMING
from qspi_gdb.flash.result import Result

MIN_RATE_S = 0.05  # below this a rate is noise (0.0 or millions of KiB/s)

def human_size(n: int) -> str:
    if n < 1024:
        return f"{n} B"
    if n < 1 << 20:
        return f"{n / 1024:.1f} KiB".replace(".0 KiB", " KiB")
    return f"{n / (1 << 20):.2f} MiB".replace(".00 MiB", " MiB")


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}{'' if n == 1 else 's'}"


def rate_text(n_bytes: float, seconds: float) -> str:
    """'22.8 KiB/s', '1.6 MiB/s'; '' when the time is too short to mean anything."""
    if seconds < MIN_RATE_S or n_bytes <= 0:
        return ""
    rate = n_bytes / seconds
    return f"{rate / 1024:.1f} KiB/s" if rate < 10 << 20 else f"{rate / (1 << 20):.1f} MiB/s"


def _range_text(r: dict | None) -> str:
    if not r or not r.get("length"):
        return ""
    return f"0x{r['offset']:08X}..0x{r['offset'] + r['length'] - 1:08X}"


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
    """The one line a user reads: what was erased (where), programmed (at what rate over the
    programming), identical; verified; reset; time."""
    took = f"Finished in {result.seconds:.2f}s"
    if result.summary:
        return f"{result.summary}. {took}"
    if result.command in ("flash", "erase"):
        line = _erase_text(result)
        if result.command == "flash":
            line += ", " + _program_text(result)
        if result.dry_run:
            line += _dry_run_text(result)
        else:
            line += f"; {_verify_text(result)}{_retries_text(result)}"
        return f"{line}{_reset_text(result)}. {took}"
    if result.command == "verify":
        text = _verify_text(result)
        return f"{text[:1].upper()}{text[1:]}{_reset_text(result)}. {took}"
    if result.command == "read":
        where = _range_text(result.range)
        into = result.output_file if result.output_file is not None else "stdout"
        return (f"Read {human_size(result.bytes_read)}{' at ' + where if where else ''} into "
                f"{into}{_reset_text(result)}. {took}")
    return (f"Reset ({result.reset}). " if result.reset else "") + took


def _erase_text(result: Result) -> str:
    verb = "Would erase" if result.dry_run else "Erased"
    if result.chip_erased:
        where = _range_text(result.range) if result.command == "erase" else ""
        size = f"{human_size(result.bytes_erased)}" if result.bytes_erased else ""
        inside = ", ".join(p for p in (where, size) if p)
        return f"{verb} the whole chip" + (f" ({inside})" if inside else "")
    units = f"{human_size(result.bytes_erased)} ({erase_units_text(result)})"
    if result.command == "erase":
        where = _range_text(result.range)
        units = erase_units_text(result)
        if units.endswith(("sector", "sectors")):  # "8 sectors" alone hides their size
            units += " of 4 KiB"
        return f"{verb} {where} ({human_size(result.bytes_erased)}: {units})"
    return f"{verb} {units}"


def _program_text(result: Result) -> str:
    verb = "would program" if result.dry_run else "programmed"
    extra = (f", {_plural(result.pages_skipped_blank, 'blank page')} skipped"
             if result.pages_skipped_blank else "")
    if result.bytes_sent and result.bytes_sent < result.bytes_programmed:
        extra += (f", {human_size(result.bytes_sent)} sent compressed "
                  f"({result.bytes_programmed / result.bytes_sent:.1f}:1)")
    text = (f"{verb} {human_size(result.bytes_programmed)} "
            f"({_plural(result.pages_programmed, 'page')}{extra})")
    seconds = result.phase_seconds.get(PROGRAMMING, 0.0)
    rate = "" if result.dry_run else rate_text(result.bytes_programmed, seconds)
    if rate:  # over the erase/program pipeline only; nothing programmed, no rate
        text += f" in {seconds:.2f}s ({rate})"
    return (f"{text}, identical {human_size(result.bytes_skipped_unchanged)} "
            f"({_plural(result.sectors_skipped_unchanged, 'sector')})")


def _dry_run_text(result: Result) -> str:
    plan = result.plan or {}
    parts = []
    estimate = plan.get("estimate")
    if estimate:
        parts.append(f"estimated {estimate['total_s']:.1f} s with a {estimate['profile']} probe")
    if plan.get("flash"):
        parts.append(plan["flash"])
    return "".join(f"; {p}" for p in parts)


def _retries_text(result: Result) -> str:
    """Second tries that got past a fault (qspi_gdb.flash.retry): said, never hidden."""
    n = len(result.retries)
    if not n:
        return ""
    return f" after {'a second try' if n == 1 else f'{n + 1} tries'}"


def _reset_text(result: Result) -> str:
    return f"; reset ({result.reset})" if result.reset else ""


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


def write_stdout_bytes(data: bytes) -> None:
    """`read -o -`: the data onto stdout (binary). Here the data is the command's output, so a
    stdout that cannot take it fails the command like an unwritable -o FILE (exit 2)."""
    try:
        if sys.stdout is None:
            raise OSError("stdout is closed")
        sys.stdout.flush()
        sys.stdout.buffer.write(data)
        sys.stdout.buffer.flush()
    except (OSError, ValueError, AttributeError) as exc:
        _discard_stdout()
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        raise UsageError(f"--output -: cannot write the data on stdout: {reason}") from exc


def _discard_stdout() -> None:
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (AttributeError, OSError, ValueError):
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 - lives as long as the process


def print_result(result: Result, *, as_json: bool, stdout: IO[str] | None = None,
                 stderr: IO[str] | None = None, summary_to_stderr: bool = False) -> None:
    """--json: the object on stdout and the summary on stderr; else the summary on stdout
    (on stderr with summary_to_stderr: stdout carries data, `read -o -`). StdoutLost when
    stdout cannot take it."""
    stderr = stderr or sys.stderr
    if as_json:
        write_stdout(json.dumps(result.to_json(), sort_keys=True) + "\n", stdout)
        if result.ok or result.error is None:
            stderr.write(summary_line(result) + "\n")
    elif summary_to_stderr:
        stderr.write(summary_line(result) + "\n")
        stderr.flush()
    else:
        write_stdout(summary_line(result) + "\n", stdout)

