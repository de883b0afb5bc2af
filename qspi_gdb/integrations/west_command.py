"""`west flash-ext`: write an image into the external QSPI flash from a west workspace, with the
flag names of Zephyr's nRF runners. A west extension command (west >= 1.2, the `west` extra).

west loads extension commands only from files inside a manifest project, named by a
`west-commands.yml` (it has no plugin entry points), so a workspace lists either the qspi-gdb
repository as a project (its `west-commands.yml`) or a one-line file in its own manifest
repository: `from qspi_gdb.integrations.west_command import FlashExt` (README "west").
"""

from __future__ import annotations

from west.commands import WestCommand

from qspi_gdb.errors import QspiGdbError
from qspi_gdb.integrations.request import (
    add_tool_flags,
    add_zephyr_flags,
    describe,
    phase_line,
    request_from_args,
)

DESCRIPTION = """\
Write an image into the external QSPI NOR flash of an nRF52840 / nRF5340 board through a debug
probe (OpenOCD + GDB + a RAM loader), verify it by CRC32 on the target and reset the board.
Bytes outside the image in partly covered sectors are kept; sectors that already hold the
image are skipped. Flags as Zephyr's nRF runners: -i/--dev-id, -f/--file, -t/--file-type,
--erase, --reset/--no-reset, --ext-mem-config-file.

exit codes: 0 done and verified, 2 bad input (nothing written), 3 probe or target failure,
4 verify mismatch."""


class FlashExt(WestCommand):
    def __init__(self):
        super().__init__("flash-ext", "write an image into the external QSPI flash (qspi-gdb)",
                         DESCRIPTION)

    def do_add_parser(self, parser_adder):
        parser = parser_adder.add_parser(self.name, help=self.help,
                                         description=self.description)
        add_zephyr_flags(parser)
        add_tool_flags(parser, board_option="--board")
        return parser

    def do_run(self, args, unknown_args):
        try:
            request = request_from_args(args)
            self.inf(f"qspi-gdb: {request.file} -> {request.board or 'board of the config'}",
                     colorize=True)
            result = request.run(progress=self._progress)
        except QspiGdbError as exc:
            self.die(str(exc), exit_code=exc.exit_code)
        self.inf(describe(result))

    def _progress(self, event) -> None:
        line = phase_line(event)
        if line:
            self.inf(f"  {line}")
