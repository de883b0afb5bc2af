"""The command line: argparse, console and JSON output, exit codes, signal handling."""

from qspi_gdb.cli.main import main

__all__ = ["main"]
