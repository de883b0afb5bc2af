"""qspi-gdb: program the external QSPI NOR flash of nRF52840 / nRF5340 boards through a debug probe.

Layers (README "Architecture"): `inputs` (image, boards, parts, configs, SFDP) -> `flash` (rules,
plan, programmer, jobs) -> `loader` (mailbox ABI, loader client) -> `transport` (OpenOCD, GDB/MI);
`connect` joins a board with the transport; `api` is the Python API (re-exported here); `cli` is
the command line; `integrations` are west, the Zephyr runner, labgrid and the GDB command; `sim`
is the virtual board, a separate program. `errors` and `log` are leaves every layer may use.
"""

__version__ = "0.1.0"

from qspi_gdb.api import Result, Target, erase, flash, info, read, verify  # noqa: E402

__all__ = ["Target", "Result", "flash", "verify", "read", "erase", "info", "__version__"]
