"""The command line: argparse (`commands`, `main`), the typed options built once from it
(`options`), the command harness with signal handling and failure records (`run`), console and
JSON output (`output`) and the demo (`demo`).

May import every layer of the product except the virtual board (`qspi-gdb sim` runs it as a
child process). The only place that knows argparse besides the virtual board's own `sim.cli`.
"""

from qspi_gdb.cli.main import main

__all__ = ["main"]
