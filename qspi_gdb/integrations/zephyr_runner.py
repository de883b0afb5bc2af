"""`west flash -r qspi-gdb`: a Zephyr runner that writes the build's image (or `-f FILE`) into
the external QSPI flash through the Python API.

Zephyr imports this module itself (`runners.core` exists only inside Zephyr's west): a Zephyr
module's `zephyr/module.yml` names a runner file (Zephyr >= 4.1), and the board must list
`qspi-gdb` among its runners (`board_runner_args(qspi-gdb ...)`; README "west"). The common
flags (-i/--dev-id, -f/--file, -t/--file-type, --erase, --reset/--no-reset) come from
`ZephyrBinaryRunner.add_parser`; this runner adds only qspi-gdb's own long options.
"""

from __future__ import annotations

import os

from runners.core import RunnerCaps, ZephyrBinaryRunner

from qspi_gdb.errors import QspiGdbError
from qspi_gdb.integrations.request import (
    FlashRequest,
    add_tool_flags,
    describe,
    phase_line,
    request_from_args,
)


class QspiGdbBinaryRunner(ZephyrBinaryRunner):
    """Runner front-end for qspi-gdb (external QSPI flash of nRF52840 / nRF5340)."""

    def __init__(self, cfg, request: FlashRequest):
        super().__init__(cfg)
        self.request = request

    @classmethod
    def name(cls):
        return "qspi-gdb"

    @classmethod
    def capabilities(cls):
        # keywords only: RunnerCaps gains fields from one Zephyr release to the next
        return RunnerCaps(commands={"flash"}, dev_id=True, erase=True, reset=True, file=True)

    @classmethod
    def dev_id_help(cls) -> str:
        return "serial number of the debug probe (OpenOCD `adapter serial`)"

    @classmethod
    def do_add_parser(cls, parser):
        add_tool_flags(parser, board_option="--qspi-board")

    @classmethod
    def do_create(cls, cfg, args):
        return cls(cfg, request_from_args(args, **build_image(cfg, args)))

    def do_run(self, command, **kwargs):
        self.logger.info(f"qspi-gdb: {self.request.file} -> {self.request.board}")
        try:
            result = self.request.run(progress=self._progress)
        except QspiGdbError as exc:
            raise RuntimeError(f"qspi-gdb: {exc}") from exc
        self.logger.info(describe(result))

    def _progress(self, event) -> None:
        line = phase_line(event)
        if line:
            self.logger.info(line)


def build_image(cfg, args) -> dict:
    """The file, its type and the board from the runner configuration, where the user gave
    none: -f FILE (Zephyr puts it in cfg.file), else the build's zephyr.hex, of which only the
    parts in the QSPI window are written; the board from the board directory's name."""
    out = {}
    file = getattr(cfg, "file", None) or args.file
    if not file and getattr(cfg, "hex_file", None):
        file = cfg.hex_file
        out["only_qspi"] = True
    out["file"] = file
    file_type = getattr(getattr(cfg, "file_type", None), "name", "OTHER").lower()
    if file_type in ("hex", "bin", "elf"):
        out["file_type"] = file_type
    if not args.qspi_board and getattr(cfg, "board_dir", None):
        out["board"] = os.path.basename(os.path.normpath(cfg.board_dir))
    return out
