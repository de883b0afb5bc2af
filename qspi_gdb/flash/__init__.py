"""The flash work: every rule about what may be touched (`rules`), the pure plan of what to erase,
keep, program, skip and verify (`plan`, `plan_text`), the programmer that carries a plan out
through the loader client (`programmer`), typed progress events (`progress`), the result model
(`result`), the typed options (`options`) and the commands as library functions (`jobs`).

May import: `qspi_gdb.errors`, `qspi_gdb.log`, `qspi_gdb.inputs`, `qspi_gdb.loader` and itself.
It never sees argparse and never starts a process: the jobs get a function that opens the target.
"""
