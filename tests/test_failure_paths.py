"""What a failed command leaves behind, on the in-process virtual board (no processes): exit
codes that tell the truth about the flash, and the chip's address mode restored."""

from __future__ import annotations

import contextlib
import json

import pytest

from qspi_gdb.cli import main
from qspi_gdb.errors import UsageError
from qspi_gdb.flash import programmer as programmer_mod
from qspi_gdb.sim.board import Board, InProcessLink
from qspi_gdb.transport import session as session_mod

SEED = 0x11E98000
SEED_OFFSET = 0x1E98000


@pytest.fixture
def board(monkeypatch):
    """`main()` runs against one in-process sim-nrf5340-32mb board instead of OpenOCD + GDB."""
    the_board = Board("sim-nrf5340-32mb")

    @contextlib.contextmanager
    def in_process_session(options, *, elf=None):
        yield session_mod.Session(link=InProcessLink(the_board), openocd=None, board_process=None,
                                  address="in-process")

    monkeypatch.setattr(session_mod, "open_session", in_process_session)
    yield the_board
    the_board.close()


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "image.bin"
    path.write_bytes(bytes(range(256)) * 64)
    return path


def test_verify_mismatch_exits_4_and_restores_3_byte_mode(board, image, monkeypatch):
    flash = board.flash
    real_finish = flash._finish

    def lose_a_bit() -> None:  # a cell that does not keep what it was programmed with
        real_finish()
        if flash._mem[SEED_OFFSET + 10] == 10:  # the image's byte there
            flash._mem[SEED_OFFSET + 10] ^= 0x01

    monkeypatch.setattr(flash, "_finish", lose_a_bit)
    assert main(["flash", f"{image}@0x{SEED:08X}", "--board", "sim-nrf5340-32mb"]) == 4
    assert not board.flash.four_byte_mode  # deinit ran although the command failed


def test_a_refusal_after_writing_began_is_not_exit_2(board, image, monkeypatch, capsys):
    def refuse(self, *args, **kwargs):
        raise UsageError("loader: CRC32 refused")

    monkeypatch.setattr(programmer_mod.Programmer, "_verify_ranges", refuse)
    code = main(["flash", f"{image}@0x{SEED:08X}", "--board", "sim-nrf5340-32mb"])
    err = capsys.readouterr().err
    assert code == 3, err
    assert "loader: CRC32 refused; the flash range was written but not verified" in err
    assert not board.flash.four_byte_mode


def test_chip_erase_that_cannot_be_verified_in_24_bit_mode_is_refused(board, tmp_path, capsys):
    config = tmp_path / "cfg24.json"
    config.write_text(json.dumps({
        "firmware_config": {"peripheral": "QSPI"},
        "pins": {"sck": 17, "csn": 18, "io0": 13, "io1": 14, "io2": 15, "io3": 16},
        "flash_size": 33554432, "sck_frequency": 8000000, "address_mode": "MODE24BIT",
        "readoc": "READ4IO", "writeoc": "PP4IO", "pp_size": "PPSIZE256",
        "sck_delay": 0, "rx_delay": 0, "page_size": 4096}))
    board.flash._mem[0:4] = b"\x00\x11\x22\x33"  # something an erase would destroy
    for extra in (["--dry-run"], []):
        code = main(["erase", "--all", "--board", "sim-nrf5340-32mb", "--config", str(config),
                     *extra])
        err = capsys.readouterr().err
        assert code == 2, err
        assert "cannot be verified above 16 MiB in 24-bit address mode" in err
        assert [line for line in err.splitlines() if "error:" in line] == [err.splitlines()[-1]]
    assert bytes(board.flash._mem[0:4]) == b"\x00\x11\x22\x33"


def test_interrupt_while_verifying_says_written_but_not_verified(board, image, monkeypatch,
                                                                   capsys):
    """Ctrl-C after every erase and program finished: not "while erasing and programming"."""
    real_verify = programmer_mod.Programmer._verify_ranges

    def interrupted_verify(self, *args, **kwargs):
        def ctrl_c(*_a, **_k):
            raise KeyboardInterrupt
        monkeypatch.setattr(self, "crcs", ctrl_c)
        kwargs["read_early"] = None  # as if read after the writing: Ctrl-C in that read
        return real_verify(self, *args, **kwargs)

    monkeypatch.setattr(programmer_mod.Programmer, "_verify_ranges", interrupted_verify)
    code = main(["flash", f"{image}@0x{SEED:08X}", "--board", "sim-nrf5340-32mb", "--json"])
    captured = capsys.readouterr()
    assert code == 130
    line = ("interrupted while verifying: the flash range was written but not verified; run "
            "the command again")
    assert captured.err.strip().splitlines()[-1] == f"qspi-gdb: {line}"
    result = json.loads(captured.out)
    assert result["error"] == {"message": line, "exit_code": 130}
    assert result["bytes_programmed"] == 16384 and result["pages_programmed"] == 64
    assert result["bytes_erased"] == 16384 and result["sectors_erased"] == 4
    assert result["sectors_written"] == 4
    assert not board.flash.four_byte_mode  # deinit ran
