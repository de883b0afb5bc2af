"""qspi-gdb where users already work, as thin adapters over the Python API (`qspi_gdb.api`):

- `request`: the flash request west, the Zephyr runner and labgrid share (Zephyr's flag names),
  turned into an API call or a `qspi-gdb flash` command line; framework-free.
- `west_command`: `west flash-ext` (a west extension command; needs the `west` extra).
- `zephyr_runner`: `west flash -r qspi-gdb` (a Zephyr runner; imported by Zephyr's west only).
- `labgrid_driver`: `QspiGdbDriver` and the `QspiGdbVirtualBoard` resource (`labgrid` extra).
- `gdb_session`, `gdb_command`, `gdb_script`: the `qspi` command inside a GDB session
  (`source` the file `qspi-gdb gdb-script` prints).

Each framework is imported only by its own module, so the package and its command line work
without any of them. May import the API and the layers below it; never the command line or the
virtual board.
"""
