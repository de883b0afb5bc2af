"""`qspi-gdb` command line: argument parsing, logging set-up, error rendering, exit codes.

Each group of subcommands lives in its own module with a `register(subparsers)` function; the
parser it adds sets `func(args) -> int` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import json
import os
import sys

from qspi_gdb import __version__, log
from qspi_gdb.errors import EXIT_INTERRUPTED, EXIT_USAGE, QspiGdbError

# Modules that add subcommands, in help order.
COMMAND_MODULES = (
    "qspi_gdb.cli.commands",  # flash, verify, read, erase, info
    "qspi_gdb.sim.cli",  # sim
)


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
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    parser.commands = frozenset(sub.choices)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    argv = sys.argv[1:] if argv is None else argv
    try:
        args = parser.parse_args(argv)
    except ArgumentError as exc:
        command = next((a for a in argv if a in parser.commands), "")
        if "--json" in argv:  # the result object is promised on every failure
            print(json.dumps(_usage_failure(command, exc.message)), flush=True)
        # Unknown options are found by the top-level parser; the help to read is the command's.
        prog = f"{exc.prog} {command}" if exc.prog == parser.prog and command else exc.prog
        print(f"{exc.prog}: {_red('error:')} {exc.message} (see '{prog} --help')",
              file=sys.stderr)
        raise SystemExit(EXIT_USAGE) from None  # as argparse itself exits
    log.configure(args.verbose)
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
        from qspi_gdb.cli.commands import EXIT_INTERNAL, internal_error_text

        print(f"qspi-gdb: {_red('error:')} {internal_error_text(exc)}", file=sys.stderr)
        return EXIT_INTERNAL


def _red(text: str) -> str:
    """Bold red on a terminal (as the log's console renderer colours), plain otherwise or
    when NO_COLOR is set."""
    if sys.stderr.isatty() and not os.environ.get("NO_COLOR"):
        return f"\033[1;31m{text}\033[0m"
    return text


def _usage_failure(command: str, message: str) -> dict:
    from qspi_gdb.cli.output import Result

    result = Result(command=command)
    result.error = {"message": message, "exit_code": EXIT_USAGE}
    return result.to_json()
