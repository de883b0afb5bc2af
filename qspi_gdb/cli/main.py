"""`qspi-gdb` command line: the top-level parser, logging set-up, error rendering, exit codes.

The subcommands' parsers come from `qspi_gdb.cli.commands` (each sets `func(args) -> int`, the
exit code). `qspi-gdb sim ...` runs the virtual board's own program (`python -m qspi_gdb.sim`)
as a child: the product never imports the virtual board.
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import signal
import sys

from qspi_gdb import __version__, log
from qspi_gdb.cli import commands, demo
from qspi_gdb.cli.output import StdoutLost, write_stdout
from qspi_gdb.cli.report import report_in, write_report
from qspi_gdb.cli.run import internal_error_text
from qspi_gdb.errors import EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_USAGE, QspiGdbError
from qspi_gdb.flash.result import Result
from qspi_gdb.transport.procgroup import spawn

TOP_LEVEL_OPTIONS = ("-v", "--verbose", "-vv", "-vvv")


class ArgumentError(Exception):
    """A command line argparse refused; rendered by main() as one line with exit code 2."""

    def __init__(self, prog: str, message: str):
        super().__init__(message)
        self.prog = prog
        self.message = message


class _Parser(argparse.ArgumentParser):
    """argparse, but a refused command line is one error line (no usage block) and exit 2,
    like every other usage error; subcommand parsers inherit this class."""

    def error(self, message: str):
        raise ArgumentError(self.prog, message)


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="qspi-gdb",
        description="Program the external QSPI NOR flash of nRF52840 / nRF5340 boards\n"
        "through OpenOCD + GDB (or a virtual board).",
        epilog="exit codes: 0 success, 2 usage or bad input (nothing written),\n"
        "  3 connection or target failure, 4 verify mismatch, 130 interrupted.\n"
        "'qspi-gdb COMMAND --help' shows a command's options.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"qspi-gdb {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="debug log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.register(sub)
    demo_parser = sub.add_parser(
        "demo", help="flash the seed case onto a virtual board and show it verified",
        description="Create a 512,583-byte image, flash it at 0x11E98000 of the 32 MiB virtual "
        "nRF5340 board with the nrfutil JSON from examples/, verify it and read it back.")
    demo_parser.add_argument("--workdir", default="build/demo", help="where the image and the "
                             "virtual board's flash file go (default: build/demo)")
    demo_parser.add_argument("--keep-flash", dest="fresh", action="store_false",
                             help="keep the flash file of a previous run (shows skip-unchanged)")
    demo_parser.set_defaults(func=lambda args: demo.run_demo(main, args.workdir, fresh=args.fresh))
    parser.commands = frozenset(sub.choices)
    return parser


def _sim_arguments(argv: list[str]) -> list[str] | None:
    """The virtual board's arguments when the command is `sim` (after top-level options)."""
    for i, arg in enumerate(argv):
        if arg == "sim":
            return argv[i + 1:]
        if arg not in TOP_LEVEL_OPTIONS:
            return None
    return None


def run_sim(arguments: list[str]) -> int:
    """`qspi-gdb sim ...`: the virtual board's program as a child in our process group, so a
    terminal's Ctrl-C reaches it directly, and dying with us; we wait for it and pass its exit
    code on."""
    with spawn([sys.executable, "-m", "qspi_gdb.sim", *arguments], new_session=False) as child:
        forward = {sig: signal.signal(sig, lambda signum, _frame: child.send_signal(signum))
                   for sig in (signal.SIGTERM, signal.SIGHUP)}
        try:
            while True:
                try:
                    return child.wait()
                except KeyboardInterrupt:
                    continue  # the child got the same SIGINT and shuts down by itself
        finally:
            for sig, previous in forward.items():
                signal.signal(sig, previous)


def _standard_fds_open() -> None:
    """A closed stdin/stdout/stderr at start becomes /dev/null: otherwise the next file we
    open (a lock, a log) would get its number and the children would write into it."""
    for fd in (0, 1, 2):
        try:
            os.fstat(fd)
        except OSError:
            os.open(os.devnull, os.O_RDWR)  # takes the lowest free number: this one


def main(argv: list[str] | None = None) -> int:
    _standard_fds_open()
    argv = sys.argv[1:] if argv is None else argv
    sim_arguments = _sim_arguments(argv)
    if sim_arguments is not None:
        return run_sim(sim_arguments)
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        command = next((a for a in argv if a in parser.commands), "")
        if "--json" in argv:  # the result object is promised on every failure
            try:
                write_stdout(json.dumps(_usage_failure(command, exc.message).to_json()) + "\n")
            except StdoutLost:
                pass  # the error line below still says it
        _report_refusal(argv, command, exc.message)
        # Unknown options are found by the top-level parser; the help to read is the command's.
        prog = f"{exc.prog} {command}" if exc.prog == parser.prog and command else exc.prog
        print(f"{exc.prog}: {_red('error:')} {exc.message} (see '{prog} --help')",
              file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None  # as argparse itself exits
    log.configure(args.verbose)
    args.command_line = ["qspi-gdb", *argv]  # names the test case of --report
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print(f"qspi-gdb: {_red(str(exc) or 'interrupted')}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except QspiGdbError as exc:
        print(f"qspi-gdb: {_red('error:')} {exc}", file=sys.stderr)
        return exc.exit_code
    except Exception as exc:
        if args.verbose:
            raise
        print(f"qspi-gdb: {_red('error:')} {internal_error_text(exc)}", file=sys.stderr)
        return EXIT_INTERNAL


def _red(text: str) -> str:
    """Bold red on a terminal (as the log's console renderer colours), plain otherwise or
    when NO_COLOR is set."""
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[1;31m{text}\033[0m"
    return text


def _usage_failure(command: str, message: str) -> Result:
    result = Result(command=command)
    result.error = {"message": message, "exit_code": EXIT_USAGE}
    return result


def _report_refusal(argv: list[str], command: str, message: str) -> None:
    """--report FILE on a refused command line: the refusal as a failed test case."""
    path = report_in(argv)
    if path:
        try:
            write_report(path, _usage_failure(command, message), shlex.join(["qspi-gdb", *argv]))
        except (QspiGdbError, OSError):
            pass  # the refusal itself is what the user must see
