"""The `qspi-gdb` runner for Zephyr >= 4.1, named by zephyr/module.yml: Zephyr's west imports
this file and finds the runner class (`west flash -r qspi-gdb`)."""

from qspi_gdb.integrations.zephyr_runner import QspiGdbBinaryRunner  # noqa: F401
