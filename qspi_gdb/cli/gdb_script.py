"""`qspi-gdb gdb-script`: where the GDB command file is (`source` it inside gdb to get `qspi
flash`, `qspi verify`, ...), or with --gdbinit the gdb commands that also put this
installation's Python paths on gdb's own embedded Python (README "In a GDB session")."""

from __future__ import annotations

import sysconfig
from pathlib import Path

PACKAGE_ROOT = Path(__file__).resolve().parents[2]  # the directory holding qspi_gdb/
SCRIPT = PACKAGE_ROOT / "qspi_gdb" / "integrations" / "gdb_script.py"


def gdbinit_lines() -> list[str]:
    """gdb commands: this interpreter's library paths first on gdb's sys.path, then source."""
    paths = [str(PACKAGE_ROOT)]
    for key in ("purelib", "platlib"):
        path = sysconfig.get_paths()[key]
        if path not in paths:
            paths.append(path)
    return [f"python import sys; sys.path[:0] = [p for p in {paths!r} if p not in sys.path]",
            f"source {SCRIPT}"]


def register(subparsers) -> None:
    parser = subparsers.add_parser(
        "gdb-script", help="print the GDB command file to source in a GDB session",
        description="Print the path of the file that adds the `qspi` command to a GDB session "
        "(`source PATH` inside gdb), or with --gdbinit the gdb commands to source it from any "
        "installation (e.g. qspi-gdb gdb-script --gdbinit >> ~/.gdbinit).")
    parser.add_argument("--gdbinit", action="store_true",
                        help="print gdb commands (Python path + source) instead of the path")
    parser.set_defaults(func=run_gdb_script)


def run_gdb_script(args) -> int:
    print("\n".join(gdbinit_lines()) if args.gdbinit else SCRIPT, flush=True)
    return 0
