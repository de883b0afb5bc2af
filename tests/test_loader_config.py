"""The host's loader configuration tells the loader how to read the chip's address mode, so
DEINIT leaves a 32 MiB chip in the mode it had before INIT (issue 5), through the programmer on
the in-process virtual board for both 32 MiB parts."""

from __future__ import annotations

import pytest

from qspi_gdb.flash.programmer import Programmer
from qspi_gdb.inputs import flash_config as flashcfg
from qspi_gdb.inputs.image import image_from_segments
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.config import loader_config, probe_config

board_mod = pytest.importorskip("qspi_gdb.sim.board")

BOARDS = {"sim-nrf5340-32mb": ("IS25WP256", 0x16, 7, False),
          "sim-nrf52840-32mb": ("MT25QU256A", 0x70, 0, True)}


@pytest.fixture(params=sorted(BOARDS))
def rig(request):
    board = board_mod.Board(request.param)
    preset = flashcfg.build_config(request.param, [])
    programmer = Programmer(board_mod.InProcessLink(board), chip=preset.chip)
    try:
        yield request.param, board, preset, programmer
    finally:
        board.close()


def _enter_4byte(programmer: Programmer, preset, wren: bool) -> None:
    """What an application (or a bootloader) might do before we attach: EN4B."""
    client = programmer.client
    client.start()
    client.init(probe_config(preset))
    client.cinstr(0xB7, wren=wren)
    client.wait_idle()
    client.deinit()


def test_config_names_the_parts_mode_register(rig):
    name, _board, preset, programmer = rig
    part, op, bit, _wren = BOARDS[name]
    cfg = programmer.connect(preset)
    assert cfg.part == part
    lc = loader_config(cfg)
    assert (lc.mode_query_op, lc.mode_query_bit) == (op, bit)
    assert probe_config(preset).mode_query_op == mb.NO_QUERY  # probe never switches modes


def test_3byte_chip_returns_to_3byte_mode(rig):
    _name, board, preset, programmer = rig
    assert not board.flash.four_byte_mode
    programmer.connect(preset)
    assert board.flash.four_byte_mode  # working in 4-byte mode
    programmer.close()
    assert not board.flash.four_byte_mode


def test_4byte_chip_stays_in_4byte_mode(rig):
    name, board, preset, programmer = rig
    _enter_4byte(programmer, preset, wren=BOARDS[name][3])
    assert board.flash.four_byte_mode
    programmer.connect(preset)
    assert programmer.client.header.addr4_before == 1
    data = bytes(range(256)) * 16
    programmer.flash(image_from_segments([(0x1000000, data)], xip_base=programmer.config.xip_base))
    assert board.flash.peek(0x1000000, len(data)) == data
    programmer.close()
    assert board.flash.four_byte_mode  # left as found

