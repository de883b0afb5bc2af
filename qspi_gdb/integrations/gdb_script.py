"""The file a GDB session sources to get the `qspi` command: `source <path>`, the path that
`qspi-gdb gdb-script` prints (README "In a GDB session").

gdb runs its own embedded Python, not the one qspi-gdb was installed with: this file puts the
directory that holds the `qspi_gdb` package on gdb's `sys.path` (in a wheel install, the
site-packages that also holds its dependencies); `qspi-gdb gdb-script --gdbinit` prints the
lines that add every path of the installing Python too (needed for editable installs).
"""

import sys
from pathlib import Path

import gdb

_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])
if _PACKAGE_ROOT not in sys.path:
    sys.path.insert(0, _PACKAGE_ROOT)

try:
    from qspi_gdb.integrations import gdb_command
except ImportError as exc:
    raise gdb.GdbError(
        f"qspi: cannot load qspi-gdb into gdb's Python {sys.version.split()[0]} ({exc}); "
        "source the lines `qspi-gdb gdb-script --gdbinit` prints instead") from None

gdb_command.register()
