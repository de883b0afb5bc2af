"""Issue 11 end to end, through the real OpenOCD + gdb-multiarch + virtual boards: the loader
that keeps running (stopped by request, no halt for the debugger to notice), over our OpenOCD and
over --gdb-server; compressed program blocks, and a corrupt one refused by the loader with
nothing programmed; the chip erase chosen by weight and the 0xFF pages skipped after it."""

from __future__ import annotations

import random
import shutil

import lz4.block
import pytest
from test_e2e_flash import run_cli

from qspi_gdb import log
from qspi_gdb.loader import pipeline
from qspi_gdb.transport.openocd import OpenOcd
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                       reason="needs Debian openocd and gdb-multiarch"),
]

DK = "sim-nrf5340dk"  # MX25R6435F, 8 MiB: the smallest part, so a whole-chip image stays quick
DK_XIP = 0x10000000
DK_SIZE = 8 << 20


@pytest.fixture(autouse=True)
def _quiet_log():
    log.configure(0)


def _text(n: int, seed: int) -> bytes:
    """Compressible, like a file system's text: words from a small vocabulary."""
    rng = random.Random(seed)
    words = [b"sensor", b"value", b"log", b"boot", b"ok", b"error", b"retry", b"\n", b"0x1f"]
    out = bytearray()
    while len(out) < n:
        out += rng.choice(words) + b" "
    return bytes(out[:n])


def test_compressed_blocks_over_the_running_loader(tmp_path, capsys):
    """Text goes as LZ4 blocks (bytes_sent < bytes_programmed), random data as it is; the
    loader is never halted by itself (noticed_halts 0) and the flash holds the image."""
    flash_file = tmp_path / "flash.img"
    data = _text(96 << 10, 1) + random.Random(2).randbytes(32 << 10)
    image = tmp_path / "mixed.bin"
    image.write_bytes(data)
    code, result, err = run_cli(capsys, "flash", f"{image}@{DK_XIP + 0x20000:#x}", "--board", DK,
                                "--sim-image", str(flash_file))
    assert code == 0, err
    assert result["verified"] is True and result["noticed_halts"] == 0 and result["stops"] > 0
    assert result["bytes_programmed"] == len(data)
    assert (32 << 10) < result["bytes_sent"] < (64 << 10)  # the random 32 KiB do not shrink
    assert result["compression_ratio"] > 2
    assert flash_file.read_bytes()[0x20000:0x20000 + len(data)] == data
    # --no-compress: every byte as it is
    flash_file.unlink()
    code, result, err = run_cli(capsys, "flash", f"{image}@{DK_XIP + 0x20000:#x}", "--board", DK,
                                "--sim-image", str(flash_file), "--no-compress")
    assert code == 0, err
    assert result["bytes_sent"] == len(data) and result["verified"] is True


def _malformed(data: bytes) -> bytes:
    """A block whose first sequence copies from before the start of the output."""
    return b"\x00\x10\x00" + lz4.block.compress(data, store_size=False)


def _wrong_byte(data: bytes) -> bytes:
    """A well-formed block that decodes to different bytes (one literal changed): only the
    CRC-32 check on the target can tell."""
    packed = bytearray(lz4.block.compress(data, store_size=False))
    packed[1] ^= 0x01  # the first literal (token, then literals: the text starts with one)
    return bytes(packed)


@pytest.mark.parametrize("corrupt", [_malformed, _wrong_byte], ids=["malformed", "wrong-crc"])
def test_a_corrupt_compressed_block_is_refused_and_nothing_programmed(corrupt, tmp_path, capsys,
                                                                      monkeypatch):
    flash_file = tmp_path / "flash.img"
    data = _text(16 << 10, 3)
    image = tmp_path / "text.bin"
    image.write_bytes(data)
    real_pack = pipeline.pack

    def pack(block: bytes) -> bytes | None:
        packed = real_pack(block)
        return corrupt(block) if packed is not None else None

    monkeypatch.setattr(pipeline, "pack", pack)  # the host's packer goes wrong; loader is real
    code, result, err = run_cli(capsys, "flash", f"{image}@{DK_XIP + 0x40000:#x}", "--board", DK,
                                "--sim-image", str(flash_file))
    assert code == 3, err
    assert "compressed block did not decode to its length and CRC32; nothing programmed" in err
    assert result["ok"] is False
    # the range was erased (blank before, blank after) and nothing was programmed
    assert flash_file.read_bytes()[0x40000:0x40000 + (64 << 10)] == b"\xff" * (64 << 10)


def test_whole_chip_image_chooses_chip_erase_and_skips_blank_pages_through_a_gdb_server(
        tmp_path, capsys):
    """An image that rewrites every sector of the MX25R6435F: one chip erase (52 s typical)
    instead of 128 block erases (61 s), the pages that are 0xFF after it not programmed, over a
    GDB server someone else runs (standard remote operations only). Its probe is unknown, so
    the choice counts the slowest modelled link (J-Link OB): 240 KB to program take ~2.3 s
    there, the chip erase still pays (an 8 MiB random image would not: tests/test_plan.py)."""
    flash_file = tmp_path / "flash.img"
    flash_file.write_bytes(b"\x00" * DK_SIZE)  # every sector differs from the image
    head = random.Random(4).randbytes(40_000) + _text(200_000, 5)
    data = head + b"\xff" * (DK_SIZE - len(head))
    image = tmp_path / "whole.bin"
    image.write_bytes(data)
    # the modelled clock may run 8x wall time while the core runs: the 52 s chip erase needs
    # 6.5 s of it (the test still takes about a minute: emulating the loader's 1 ms heartbeat
    # wake-ups through the erase cannot keep up with 8x; 94 s at 1x)
    with VirtualBoardProcess(DK, image=flash_file, extra_args=["--time-rate", "8"]) as sim, \
            OpenOcd([*sim.openocd_script(), ("f", "target/nrf5340.cfg")]) as openocd:
        code, result, err = run_cli(capsys, "flash", f"{image}@{DK_XIP:#x}", "--board", DK,
                                    "--gdb-server", openocd.gdb_address)
    assert code == 0, err
    assert result["chip_erased"] is True and result["verified"] is True
    assert result["noticed_halts"] == 0
    pages = -(-len(head) // 256)
    assert result["pages_programmed"] == pages
    assert result["pages_skipped_blank"] == DK_SIZE // 256 - pages
    assert result["bytes_sent"] < len(head)
    assert flash_file.read_bytes() == data
