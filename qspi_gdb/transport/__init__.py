"""The way to a target: OpenOCD (`openocd`), a virtual board's process (`virtual_board`),
gdb-multiarch over GDB/MI (`gdbmi`), the TargetLink over it (`gdb_link`), child processes that
die with us (`procgroup`) in private temporary directories (`workdirs`), one command per target
(`locks`), local ports (`ports`) and the session that starts and ends them all (`session`).

May import: `qspi_gdb.errors`, `qspi_gdb.log` and itself. It knows GDB and OpenOCD, nothing about
flash; it starts a virtual board as a process (`python -m qspi_gdb.sim`) and never imports it.
"""
