"""Report: summary line, --json object, progress view (bar on a TTY, JSON lines otherwise)."""

from __future__ import annotations

import io
import json

from qspi_gdb import log
from qspi_gdb.cli.output import Result, print_result, summary_line
from qspi_gdb.flash.progress import (
    PROGRAMMING,
    PhaseFinished,
    PhaseProgress,
    PhaseStarted,
)


def _flash_result(**changes) -> Result:
    result = Result(
        command="flash", ok=True, board="sim-nrf5340-32mb",
        image={"bytes": 512583, "segments": []},
        sectors_erased=126, bytes_erased=126 * 4096, sectors_written=126, pages_programmed=2003,
        bytes_programmed=512583, verify="verified",
        verified_ranges=[{"offset": 0x1E98000, "length": 126 * 4096, "crc32": 0x12345678}],
        seconds=1.234, stops=20,
    )
    for key, value in changes.items():
        setattr(result, key, value)
    return result


def test_summary_line_names_erased_programmed_identical_rate_and_time():
    """The rate is the programming's own: bytes programmed over the time the erase/program
    pipeline ran (not the command's whole time, which includes OpenOCD's start-up)."""
    line = summary_line(_flash_result(phase_seconds={PROGRAMMING: 0.5}, seconds=3.0))
    assert line.startswith("Erased 504 KiB (126 sectors), programmed 500.6 KiB (2,003 pages) "
                           "in 0.50s (1001.1 KiB/s), identical 0 B (0 sectors); ")
    assert "verified 504 KiB in 1 range" in line
    assert line.endswith("Finished in 3.00s")


def test_summary_says_not_verified():
    line = summary_line(_flash_result(verify="not verified", verified_ranges=[]))
    assert "; not verified." in line


def test_unchanged_reflash_summary():
    line = summary_line(_flash_result(sectors_erased=0, bytes_erased=0, sectors_written=0,
                                      pages_programmed=0, bytes_programmed=0,
                                      sectors_skipped_unchanged=126,
                                      bytes_skipped_unchanged=126 * 4096))
    assert line.startswith("Erased 0 B (0 sectors), programmed 0 B (0 pages), identical 504 KiB "
                           "(126 sectors); verified")
    assert "/s" not in line  # no rate for work not done


def test_json_object_on_stdout_summary_on_stderr():
    out, err = io.StringIO(), io.StringIO()
    print_result(_flash_result(), as_json=True, stdout=out, stderr=err)
    data = json.loads(out.getvalue())
    assert data["schema"] == "qspi-gdb/result/1"
    assert data["verified"] is True and data["sectors_erased"] == 126
    assert data["stops_per_mib"] == round(20 / (512583 / (1 << 20)), 2)
    assert "Finished in" in err.getvalue()


class _Tty(io.StringIO):
    def isatty(self):
        return True


def test_progress_bar_on_tty_shows_bytes_and_rate():
    stream = _Tty()
    from qspi_gdb.cli.progress_view import ProgressView

    view = ProgressView(stream)
    view(PhaseStarted(PROGRAMMING, 8192))
    view(PhaseProgress(PROGRAMMING, 4096, 8192))
    view(PhaseFinished(PROGRAMMING, 8192, 0.5))
    text = stream.getvalue()
    assert "Programming" in text and "8 KiB / 8 KiB" in text and "KiB/s" in text
    assert text.endswith("\n") and view.phase_seconds == {PROGRAMMING: 0.5}


def test_progress_as_json_lines_when_not_a_tty():
    stream = io.StringIO()
    log.configure(0, json_lines=True, stream=stream)
    try:
        from qspi_gdb.cli.progress_view import ProgressView

        view = ProgressView(io.StringIO(), tty=False)
        view(PhaseStarted(PROGRAMMING, 100))
        view(PhaseFinished(PROGRAMMING, 100, 0.1))
    finally:
        log.configure(0)
    records = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [r["event"] for r in records] == ["progress", "progress"]
    assert records[-1]["done"] == 100 and records[-1]["finished"] is True


def test_verify_summary_keeps_units_and_names():
    result = Result(command="verify", ok=True, verify="verified", seconds=1.0,
                    verified_ranges=[{"offset": 0, "length": 4096, "crc32": "0x0"}])
    assert summary_line(result) == "Verified 4 KiB in 1 range (CRC32 on target). Finished in 1.00s"


def test_summary_names_mixed_erase_units_by_size():
    """21 erase units of 504 KiB are 7 blocks of 64 KiB + 14 sectors of 4 KiB, not 21 sectors."""
    line = summary_line(_flash_result(sectors_erased=21, bytes_erased=504 * 1024))
    assert line.startswith("Erased 504 KiB (7 blocks of 64 KiB + 14 sectors of 4 KiB), programmed ")
    assert summary_line(_flash_result(sectors_erased=1, bytes_erased=65536)).startswith(
        "Erased 64 KiB (1 block of 64 KiB), ")


def _screen(text: str) -> list[str]:
    """What a terminal shows: each \\r returns to the line start, later text overwrites."""
    lines = []
    for raw in text.split("\n"):
        line = ""
        for piece in raw.split("\r"):
            line = piece + line[len(piece):]
        lines.append(line.rstrip())
    return lines


def test_pipelined_phases_each_leave_a_line_that_fits_the_terminal():
    from qspi_gdb.cli.progress_view import ProgressView
    from qspi_gdb.flash.progress import ERASING

    stream = _Tty()
    view = ProgressView(stream, columns=80)
    view(PhaseStarted(ERASING, 516096))
    view(PhaseStarted(PROGRAMMING, 512768))
    view(PhaseProgress(PROGRAMMING, 65536, 512768))
    view(PhaseFinished(ERASING, 516096, 2.0))
    view(PhaseProgress(PROGRAMMING, 500000, 512768))
    view(PhaseFinished(PROGRAMMING, 512768, 2.1))
    lines = _screen(stream.getvalue())
    assert lines[0].startswith("Erasing ") and "504 KiB / 504 KiB" in lines[0]
    assert lines[1].startswith("Programming ") and "500.8 KiB / 500.8 KiB" in lines[1]
    assert lines[2:] == [""]
    assert all(len(piece) < 80 for raw in stream.getvalue().split("\n")
               for piece in raw.split("\r"))


def test_progress_close_ends_an_open_bar_line():
    from qspi_gdb.cli.progress_view import ProgressView

    stream = _Tty()
    view = ProgressView(stream, columns=80)
    view(PhaseStarted(PROGRAMMING, 8192))
    view.close()
    view.close()
    assert stream.getvalue().endswith("\n") and stream.getvalue().count("\n") == 1


def test_a_phase_with_nothing_to_do_shows_no_absurd_rate():
    """An unchanged re-flash verifies from CRCs already read: finished in ~0 s, no rate."""
    from qspi_gdb.cli.progress_view import ProgressView
    from qspi_gdb.flash.progress import VERIFYING

    stream = _Tty()
    view = ProgressView(stream, columns=80)
    view(PhaseStarted(VERIFYING, 512583))
    view(PhaseFinished(VERIFYING, 512583, 0.0))
    line = _screen(stream.getvalue())[0]
    assert "500.6 KiB / 500.6 KiB" in line and "/s" not in line
    view(PhaseStarted(VERIFYING, 4 << 20))
    view(PhaseFinished(VERIFYING, 4 << 20, 0.2))
    assert _screen(stream.getvalue())[1].endswith("20.0 MiB/s")


def test_verified_ranges_are_counted_as_contiguous_runs():
    sectors = [{"offset": 0x1000 * i, "length": 0x1000, "crc32": "0x0"} for i in (0, 1, 2, 5)]
    result = Result(command="verify", ok=True, verify="verified", seconds=1.0,
                    verified_ranges=sectors)
    assert summary_line(result) == "Verified 16 KiB in 2 ranges (CRC32 on target). Finished in 1.00s"


def test_chip_erase_summary_says_how_much():
    result = Result(command="erase", ok=True, chip_erased=True, bytes_erased=32 << 20,
                    verify="verified", seconds=6.0,
                    verified_ranges=[{"offset": 0, "length": 32 << 20, "crc32": "0x0"}])
    assert summary_line(result).startswith("Erased the whole chip (32 MiB); verified 32 MiB in 1 range")


def test_a_phase_of_zero_bytes_draws_nothing():
    """A chip-erase flash reads nothing back first: no 'Reading flash 0 B / 0 B' line."""
    from qspi_gdb.cli.progress_view import ProgressView
    from qspi_gdb.flash.progress import READING

    stream = _Tty()
    view = ProgressView(stream, columns=80)
    view(PhaseStarted(READING, 0))
    view(PhaseFinished(READING, 0, 0.0))
    assert stream.getvalue() == "" and view.phase_seconds == {READING: 0.0}
    view(PhaseStarted(PROGRAMMING, 4096))
    view(PhaseFinished(PROGRAMMING, 4096, 0.1))
    assert _screen(stream.getvalue())[0].startswith("Programming ")
