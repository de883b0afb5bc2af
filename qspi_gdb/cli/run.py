"""The command harness: runs one command's job with a progress view, turns SIGTERM/SIGHUP into
an orderly interrupt, records failures in the Result (the `--json` object is promised on every
failure) and prints the result. Errors are re-raised typed for `qspi_gdb.cli.main` to render.
A stdout that cannot take the result (closed, broken pipe) does not turn a command that
succeeded into a failure: stderr says so and the exit code stays the command's.
"""

from __future__ import annotations

import shlex
import signal
import sys
import time
from contextlib import contextmanager
from typing import Callable

from qspi_gdb.cli.output import StdoutLost, print_result, summary_line, write_stdout
from qspi_gdb.cli.progress_view import ProgressView, progress_mode
from qspi_gdb.cli.report import check_report, write_report
from qspi_gdb.errors import (
    EXIT_INTERNAL,
    EXIT_INTERRUPTED,
    EXIT_OK,
    EXIT_VERIFY,
    QspiGdbError,
)
from qspi_gdb.flash.progress import ERASING, PROGRAMMING, VERIFYING
from qspi_gdb.flash.result import Result


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, SIGTERM or SIGHUP, with the one line that tells the user what state remains."""


class _Terminated(KeyboardInterrupt):
    """SIGTERM/SIGHUP: unwind like Ctrl-C so every started process is stopped."""


@contextmanager
def _terminate_as_interrupt():
    def handler(signum, _frame):
        raise _Terminated(f"by {signal.Signals(signum).name}")

    previous = {}
    for sig in (signal.SIGTERM, signal.SIGHUP):
        try:
            previous[sig] = signal.signal(sig, handler)
        except (ValueError, OSError):  # not the main thread
            pass
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def _record_failure(args, result: Result, started: float, message: str, exit_code: int) -> None:
    """Mark the result failed; with --json print it now (the caller re-raises the error)."""
    result.ok = False
    result.error = {"message": message, "exit_code": exit_code}
    result.seconds = round(time.monotonic() - started, 3)
    if args.json:
        try:
            print_result(result, as_json=True)
        except StdoutLost:
            pass  # the error itself still goes to stderr
    _report(args, result)


def _report(args, result: Result) -> None:
    """--report FILE: this command as one JUnit test case (its failure with the error text)."""
    if getattr(args, "report", None):
        name = shlex.join(getattr(args, "command_line", None) or [result.command])
        write_report(args.report, result, name, summary_line(result) if result.ok else "")


def progress_view(args) -> ProgressView:
    """The progress view the output options ask for (`main` settled args.log_format)."""
    mode = progress_mode(args.log_format, tty=sys.stderr.isatty(), quiet=args.quiet,
                         no_progress=args.no_progress)
    return ProgressView(sys.stderr, mode=mode, heartbeat=True)


def run(args, command: str, body: Callable[[ProgressView, Result], str | None], *,
        summary_to_stderr: bool = False) -> int:
    """Run body(progress, result) and render the result (after the text body returns, if
    any: a plan, the info lines); errors are re-raised typed. summary_to_stderr: stdout
    carries the command's data (`read -o -`)."""
    started = time.monotonic()
    result = Result(command=command, board=getattr(args, "board", None))
    if getattr(args, "report", None):
        check_report(args.report)  # refused before anything starts
    progress = progress_view(args)
    try:
        with _terminate_as_interrupt():
            text = body(progress, result)
    except KeyboardInterrupt as exc:
        progress.close()  # the message goes on its own line, not after the bar
        message = _interrupted_message(command, exc, progress)
        _record_failure(args, result, started, message, EXIT_INTERRUPTED)
        raise Interrupted(message) from exc
    except QspiGdbError as exc:
        progress.close()
        _record_failure(args, result, started, str(exc), exc.exit_code)
        raise
    except Exception as exc:  # a bug: still end the bar line and keep the --json promise
        progress.close()
        _record_failure(args, result, started, internal_error_text(exc), EXIT_INTERNAL)
        raise
    progress.close()
    result.seconds = round(time.monotonic() - started, 3)
    result.phase_seconds = progress.phase_seconds
    code = EXIT_VERIFY if result.verify == "mismatch" else EXIT_OK
    try:
        if text and not args.json:
            write_stdout(text + "\n")
        print_result(result, as_json=args.json, summary_to_stderr=summary_to_stderr)
    except StdoutLost as exc:
        print(f"qspi-gdb: warning: the result could not be printed on stdout ({exc}); the "
              f"command itself {'succeeded' if code == EXIT_OK else 'ended'}: "
              f"{summary_line(result)}", file=sys.stderr, flush=True)
    _report(args, result)
    return code


def internal_error_text(exc: BaseException) -> str:
    return f"internal error {type(exc).__name__}: {exc} (a bug; -v shows the traceback)"


def _interrupted_message(command: str, exc: KeyboardInterrupt, progress: ProgressView) -> str:
    """'interrupted' plus what it means for the flash: after erasing or programming began, the
    range may hold neither the old contents nor the image."""
    how = f"interrupted {exc}" if isinstance(exc, _Terminated) else "interrupted"
    unfinished = (*progress.running, *progress.failed)
    touched = [p for p in (ERASING, PROGRAMMING)
               if p in unfinished or p in progress.phase_seconds]
    done = "erased" if command == "erase" else "written"
    if command in ("flash", "erase") and touched:
        during = " and ".join(p.lower() for p in touched if p in unfinished)
        if not during and VERIFYING in unfinished:  # every erase and program had finished
            return (f"{how} while verifying: the flash range was {done} but not verified; "
                    "run the command again")
        kept = "".join(f"; {note}" for note in getattr(exc, "__notes__", ()))
        return (f"{how}{' while ' + during if during else ''}: the flash range may be partly "
                f"{done}{kept}; run the command again")
    return f"{how}; nothing was written" if command in ("flash", "erase") else how
