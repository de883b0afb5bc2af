"""The virtual board: a separate program (`python -m qspi_gdb.sim`, also `qspi-gdb sim`) that
real OpenOCD and gdb-multiarch connect to. Inner layers, each testable alone: the NOR chip
(`parts`, `nor`) <- the nRF QSPI peripheral (`qspi`) <- core and bus (`core`, `bus`, `nvic`,
`scs`, `periph`, `clock`, `board`) <- debug port (`dap`, `jtag`) <- wire (`wire`, remote_bitbang),
and its command line (`cli`).

May import of the product only leaf modules (`qspi_gdb.errors`, `qspi_gdb.log`,
`qspi_gdb.inputs.boards`, `qspi_gdb.inputs.parts`); the product never imports it.
"""
