"""What the user and the chip give: the image (.bin@addr, .hex, .elf -> flash segments), the board
table (`boards`), the flash part table (`parts`), config files and command-line values
(`config_files`, `config_values`), SFDP (`sfdp`, `sfdp_decode`), the layered FlashConfig
(`flash_config`) and the detected chip folded into it (`detect`).

May import: `qspi_gdb.errors`, `qspi_gdb.log` and itself. Pure: no process, no target. `boards`
and `parts` are leaves (they import no module of the product) so the virtual board may share
them. This `__init__` imports nothing.
"""
