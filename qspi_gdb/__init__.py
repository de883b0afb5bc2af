"""qspi-gdb: program the external QSPI NOR flash of nRF52840 / nRF5340 boards through a debug probe."""

__version__ = "0.1.0"
