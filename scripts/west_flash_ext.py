"""`west flash-ext` for a workspace that lists this repository as a project: west loads
extension commands only from files inside a project (west-commands.yml names this one)."""

from qspi_gdb.integrations.west_command import FlashExt  # noqa: F401
