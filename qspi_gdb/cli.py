"""`qspi-gdb` command line: argument parsing, logging set-up, error rendering, exit codes.

Each group of subcommands lives in its own module with a `register(subparsers)` function; the
parser it adds sets `func(args) -> int` (the exit code).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from qspi_gdb import __version__, log
from qspi_gdb.errors import EXIT_INTERRUPTED, EXIT_USAGE, QspiGdbError

# Modules that add subcommands, in help order.
COMMAND_MODULES = (
    "qspi_gdb.commands",  # flash, verify, read, erase, info
    "qspi_gdb.sim.command",  # sim
)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qspi-gdb",
        description="Program the external QSPI NOR flash of nRF52840 / nRF5340 boards "
        "through OpenOCD + GDB (or a virtual board).",
    )
    parser.add_argument("--version", action="version", version=f"qspi-gdb {__version__}")
    parser.add_argument("-v", "--verbose", action="count", default=0, help="more log output")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name in COMMAND_MODULES:
        importlib.import_module(name).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    log.configure(args.verbose)
    if not getattr(args, "func", None):
        parser.print_help(sys.stderr)
        return EXIT_USAGE
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt as exc:
        print(f"qspi-gdb: {str(exc) or 'interrupted'}", file=sys.stderr)
        return EXIT_INTERRUPTED
    except QspiGdbError as exc:
        print(f"qspi-gdb: error: {exc}", file=sys.stderr)
        return exc.exit_code
