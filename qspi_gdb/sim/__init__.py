"""The virtual board: NOR chip, nRF QSPI peripheral, Cortex-M core, debug port and wire."""
