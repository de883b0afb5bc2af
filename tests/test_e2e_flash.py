"""End to end: the qspi-gdb CLI through the real OpenOCD + gdb-multiarch + virtual boards.

The flash contents are checked by reading the virtual board's `--sim-image` file directly. One
module-wide seed flash (the case that started the project: 512,583 bytes at 0x11E98000 on the
32 MiB nRF5340 board, configured by the nrfutil JSON from the issue) is reused by the tests that
follow it (re-flash, verify, read, erase), so the expensive write happens once.
"""

from __future__ import annotations

import contextlib
import io
import json
import random
import shutil
import struct
import subprocess
import sys
import time
from pathlib import Path

import pytest
from intelhex import IntelHex
from process_tree import alive, descendants

from qspi_gdb import log
from qspi_gdb.cli import demo, main
from qspi_gdb.transport.openocd import OpenOcd
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                       reason="needs Debian openocd and gdb-multiarch"),
]

REPO = Path(__file__).resolve().parent.parent
CONFIG_JSON = REPO / "examples" / "nrf5340_32mb_ext_mem.json"
BOARD = "sim-nrf5340-32mb"
SEED_ADDR = 0x11E98000
SEED_OFFSET = 0x1E98000
SEED_BYTES = 512_583
MIB32 = 32 << 20


def run_cli(capsys, *argv: str) -> tuple[int, dict | None, str]:
    """Run the CLI in this process with --json; return (exit code, result object, stderr)."""
    code = main([*argv, "--json"])
    captured = capsys.readouterr()
    lines = [line for line in captured.out.splitlines() if line.startswith("{")]
    result = json.loads(lines[-1]) if lines else None
    return code, result, captured.err


def common(flash_file: Path, board: str = BOARD, config: Path | None = CONFIG_JSON) -> list[str]:
    args = ["--board", board, "--sim-image", str(flash_file)]
    return args + (["--config", str(config)] if config else [])


def flash_bytes(flash_file: Path) -> bytes:
    return flash_file.read_bytes()


def assert_only(flash: bytes, offset: int, data: bytes, size: int = MIB32) -> None:
    """flash holds data at offset and 0xFF everywhere else."""
    assert len(flash) == size
    assert flash[offset:offset + len(data)] == data
    assert flash[:offset].count(0xFF) == offset
    rest = flash[offset + len(data):]
    assert rest.count(0xFF) == len(rest)


def one_line_error(stderr: str) -> str:
    errors = [line for line in stderr.splitlines() if line.startswith("qspi-gdb: error:")]
    assert len(errors) == 1, stderr
    return errors[0]


@pytest.fixture(autouse=True)
def fresh_logging():
    """Log to this test's stderr (an earlier test's captured stream may be closed)."""
    log.configure(0)


@pytest.fixture(scope="module")
def work(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("e2e")


@pytest.fixture(scope="module")
def seed(work):
    """The seed scenario, flashed once by `qspi-gdb demo` (what `make demo` runs):
    (image path, image bytes, flash file, (exit code, demo output))."""
    workdir = work / "demo"
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        code = demo.run_demo(main, workdir)
    image_path = workdir / "zephyr.recovery.bin"
    return image_path, image_path.read_bytes(), workdir / "flash-32mb.bin", (code, out.getvalue())


def test_seed_scenario_bin_at_0x11E98000_via_the_demo(seed):
    image_path, image, flash_file, (code, output) = seed
    assert code == 0
    assert len(image) == SEED_BYTES
    assert_only(flash_bytes(flash_file), SEED_OFFSET, image)
    summary = [line for line in output.splitlines() if line.startswith("Erased ")]
    assert summary and summary[0].startswith("Erased 504 KiB (7 blocks of 64 KiB + 14 sectors of 4 KiB), programmed ")
    assert "verified 504 KiB in 1 range (CRC32 on target)" in summary[0]
    assert "Read back 64 bytes at 0x11E98000 (matches the image)" in output
    assert "11E98000  71 73 70 69" in output  # the hexdump excerpt
    assert f"with {CONFIG_JSON}" in output  # the seed's nrfutil JSON from examples/, verbatim


def test_second_identical_flash_writes_nothing_and_says_so(seed, capsys):
    image_path, image, flash_file, _ = seed
    before = flash_bytes(flash_file)
    code = main(["flash", f"{image_path}@0x{SEED_ADDR:08X}", *common(flash_file)])
    out = capsys.readouterr().out
    assert code == 0
    assert "Erased 0 B (0 sectors), programmed 0 B (0 pages), identical" in out
    assert "(126 sectors)" in out and "verified" in out
    code, result, _ = run_cli(capsys, "flash", f"{image_path}@0x{SEED_ADDR:08X}",
                              *common(flash_file))
    assert code == 0
    assert result["sectors_erased"] == 0 and result["pages_programmed"] == 0
    assert result["sectors_skipped_unchanged"] == 126
    assert result["bytes_skipped_unchanged"] == SEED_BYTES
    assert result["verified"] is True
    assert result["image"]["given_address"] == SEED_ADDR
    assert result["image"]["segments"][0]["offset"] == SEED_OFFSET
    assert flash_bytes(flash_file) == before


def test_verify_passes_then_detects_one_flipped_bit(seed, work, capsys):
    image_path, image, flash_file, _ = seed
    code, result, _ = run_cli(capsys, "verify", f"{image_path}@0x{SEED_ADDR:08X}",
                              *common(flash_file))
    assert code == 0 and result["verified"] is True
    flipped = bytearray(image)
    flipped[300_001] ^= 0x08
    bad = work / "flipped.bin"
    bad.write_bytes(flipped)
    code, result, err = run_cli(capsys, "verify", f"{bad}@0x{SEED_ADDR:08X}", *common(flash_file))
    assert code == 4
    assert not result["ok"] and result["verify"] == "mismatch"
    sector = (SEED_OFFSET + 300_001) // 4096 * 4096
    assert [r["offset"] for r in result["mismatched_ranges"]] == [sector]
    assert "differs" in one_line_error(err)


def test_read_returns_what_the_flash_file_holds(seed, work, capsys):
    _, image, flash_file, _ = seed
    out = work / "read.bin"
    start = SEED_OFFSET + SEED_BYTES - 1000  # across the image end into erased bytes
    code, result, _ = run_cli(capsys, "read", f"0x{0x10000000 + start:08X}", "5000", "-o",
                              str(out), *common(flash_file))
    assert code == 0 and result["bytes_read"] == 5000
    assert out.read_bytes() == flash_bytes(flash_file)[start:start + 5000]


def test_erase_range_leaves_the_rest(seed, capsys):
    _, image, flash_file, _ = seed
    before = flash_bytes(flash_file)
    start = SEED_OFFSET + 0x10000  # 64 KiB + 4 KiB: a block erase and a sector erase
    code, result, _ = run_cli(capsys, "erase", f"0x{start:X}", "0x11000", *common(flash_file),
                              "--reset")
    assert code == 0 and result["bytes_erased"] == 0x11000 and result["verified"] is True
    after = flash_bytes(flash_file)
    assert after[start:start + 0x11000] == b"\xff" * 0x11000
    assert after[:start] == before[:start]
    assert after[start + 0x11000:] == before[start + 0x11000:]
    code, result, err = run_cli(capsys, "erase", f"0x{start + 1:X}", "0x1000",
                                *common(flash_file))
    assert code == 2 and "whole 4 KiB sectors" in one_line_error(err)


def _elf(segments: list[tuple[int, bytes]]) -> bytes:
    """A minimal ARM ELF32 with one PT_LOAD per segment (paddr = vaddr = address)."""
    header_size, ph_size = 52, 32
    data_at = header_size + ph_size * len(segments)
    phdrs, blobs = b"", b""
    for address, data in segments:
        phdrs += struct.pack("<8I", 1, data_at + len(blobs), address, address, len(data),
                             len(data), 5, 4)
        blobs += data
    ident = b"\x7fELF\x01\x01\x01" + b"\0" * 9
    header = ident + struct.pack("<HHIIIIIHHHHHH", 2, 40, 1, segments[0][0], header_size, 0,
                                 0x05000200, header_size, ph_size, len(segments), 40, 0, 0)
    return header + phdrs + blobs


@pytest.mark.parametrize("kind", ["hex", "elf"])
def test_seed_address_as_hex_and_elf(kind, work, capsys):
    data = random.Random(kind).randbytes(SEED_BYTES)  # the seed image's size and address
    path = work / f"image.{kind}"
    if kind == "hex":
        ih = IntelHex()
        ih.frombytes(data, offset=SEED_ADDR)
        ih.write_hex_file(str(path))
    else:
        path.write_bytes(_elf([(SEED_ADDR, data)]))
    flash_file = work / f"flash-{kind}.bin"
    code, result, _ = run_cli(capsys, "flash", str(path), *common(flash_file))
    assert code == 0 and result["verified"] is True and result["image"]["kind"] == kind
    assert_only(flash_bytes(flash_file), SEED_OFFSET, data)


def test_scattered_hex_records_keep_every_other_byte(work, capsys):
    flash_file = work / "flash-scatter.bin"
    base = random.Random(9).randbytes(3 * 4096)
    first = work / "base.bin"
    first.write_bytes(base)
    code, _, _ = run_cli(capsys, "flash", f"{first}@0x10100000", *common(flash_file))
    assert code == 0
    ih = IntelHex()
    patches = {0x10100010: b"\x01\x02\x03", 0x10101FFE: b"\xAA\xBB\xCC\xDD",
               0x10102800: b"patch"}
    for address, data in patches.items():
        ih.frombytes(data, offset=address)
    scattered = work / "scattered.hex"
    ih.write_hex_file(str(scattered))
    code, result, _ = run_cli(capsys, "flash", str(scattered), *common(flash_file))
    assert code == 0 and result["verified"] is True
    expected = bytearray(base)
    for address, data in patches.items():
        at = address - 0x10100000
        expected[at:at + len(data)] = data
    assert_only(flash_bytes(flash_file), 0x100000, bytes(expected))
    assert result["bytes_preserved"] == 3 * 4096 - sum(len(d) for d in patches.values())


@pytest.mark.parametrize("board,part,jedec,size", [
    ("sim-nrf5340-32mb", "IS25WP256", "9D7019", 32 << 20),
    ("sim-nrf52840-32mb", "MT25QU256A", "20BB19", 32 << 20),
    ("sim-nrf52840dk", "MX25R6435F", "C22817", 8 << 20),
])
def test_info_on_every_part(board, part, jedec, size, work, capsys):
    flash_file = work / f"info-{board}.bin"
    code, result, _ = run_cli(capsys, "info", *common(flash_file, board, None))
    assert code == 0
    info = result["info"]
    assert (info["part"], info["jedec_id"], info["size"]) == (part, jedec, size)
    sfdp = info["sfdp"]
    assert sfdp["four_byte_entry"] == (None if size <= 1 << 24 else sfdp["four_byte_entry"])
    if size > 1 << 24:
        assert sfdp["four_byte_entry"] in ("B7", "WREN+B7") and info["address_mode"] == 32
    assert {e["size"] for e in sfdp["erase_types"]} >= {4096, 65536}
    assert sfdp["page_size"] == 256 and sfdp["quad_enable"] is not None
    code = main(["info", *common(flash_file, board, None)])
    out = capsys.readouterr().out
    assert code == 0 and part in out and "quad enable" in out


def test_gdb_server_someone_else_runs(work, capsys):
    """--gdb-server: standard GDB remote only (reset by SYSRESETREQ), both chip families."""
    flash_file = work / "flash-remote.bin"
    data = random.Random(3).randbytes(10_000)
    image = work / "remote.bin"
    image.write_bytes(data)
    with VirtualBoardProcess("sim-nrf52840-32mb", image=flash_file) as sim, \
            OpenOcd([*sim.openocd_script(), ("f", "target/nrf52840.cfg")]) as openocd:
        code, result, _ = run_cli(capsys, "flash", f"{image}@0x12F00000", "--board",
                                  "sim-nrf52840-32mb", "--gdb-server", openocd.gdb_address,
                                  "--reset")
        assert code == 0 and result["verified"] is True
        assert result["part"] == "MT25QU256A" and result["address_mode"] == "32-bit"
        assert_only(flash_bytes(flash_file), 0xF00000, data)
        # The server is still there for the next client.
        code, result, _ = run_cli(capsys, "verify", f"{image}@0x12F00000", "--board",
                                  "sim-nrf52840-32mb", "--gdb-server", openocd.gdb_address)
        assert code == 0 and result["verified"] is True


def test_no_verify_says_not_verified(work, capsys):
    flash_file = work / "flash-noverify.bin"
    image = work / "small.bin"
    image.write_bytes(b"hello qspi" * 100)
    loader = REPO / "qspi_gdb" / "loader" / "elf" / "qspi_loader_nrf5340.elf"  # as if built elsewhere
    code = main(["flash", f"{image}@0x10000000", "--no-verify", "--loader", str(loader),
                 *common(flash_file, "sim-nrf5340dk", None)])
    out = capsys.readouterr().out
    assert code == 0 and "not verified" in out and "verified 1" not in out
    assert flash_bytes(flash_file)[:1000] == b"hello qspi" * 100


# -- bad inputs: one line, the right exit code, the flash file unchanged ----------------------


@pytest.fixture(scope="module")
def pristine(work):
    """A small flash file with known contents that no bad input may change."""
    flash_file = work / "flash-pristine.bin"
    image = work / "pristine.bin"
    image.write_bytes(random.Random(4).randbytes(5000))
    assert main(["flash", f"{image}@0x10001000", *common(flash_file)]) == 0
    return flash_file


def _bad_inputs(work: Path) -> dict[str, tuple[list[str], int, str]]:
    bad_hex = work / "bad.hex"
    bad_hex.write_text(":0400000001020304F1\n:00000001FF\n")  # checksum should be F2
    overlap = work / "overlap.elf"
    overlap.write_bytes(_elf([(0x10000000, b"a" * 64), (0x10000020, b"b" * 64)]))
    big = work / "big.bin"
    big.write_bytes(b"\x00" * 8192)
    mode24 = work / "mode24.json"
    mode24.write_text(CONFIG_JSON.read_text().replace("MODE32BIT", "MODE24BIT"))
    broken_json = work / "broken.json"
    broken_json.write_text('{"flash_size": 33554432,')
    broken_ini = work / "broken.ini"
    broken_ini.write_text("[DEFAULT_CONFIGURATION]\nMemSize = lots\n")
    return {
        "missing file": (["flash", str(work / "nope.bin") + "@0x10000000"], 2, "no such file"),
        "bad hex checksum": (["flash", str(bad_hex)], 2, "checksum"),
        "overlapping segments": (["flash", str(overlap)], 2, "overlap"),
        "past the chip end": (["flash", f"{big}@0x11FFF000"], 2, "past the end"),
        "MODE24BIT above 16 MiB": (["flash", f"{big}@0x11000000", "--config", str(mode24)], 2,
                                   "MODE24BIT"),
        "malformed JSON": (["flash", f"{big}@0x10000000", "--config", str(broken_json)], 2,
                           "broken.json"),
        "malformed ini": (["flash", f"{big}@0x10000000", "--config", str(broken_ini)], 2,
                          "broken.ini"),
        "unknown board": (["flash", f"{big}@0x10000000", "--board", "nrf9999dk"], 2,
                          "unknown board"),
        "JEDEC mismatch": (["flash", f"{big}@0x10000000", "--jedec-id", "C22817"], 2,
                           "JEDEC ID mismatch"),
    }


@pytest.mark.parametrize("case", ["missing file", "bad hex checksum", "overlapping segments",
                                  "past the chip end", "MODE24BIT above 16 MiB", "malformed JSON",
                                  "malformed ini", "unknown board", "JEDEC mismatch"])
def test_bad_input_is_one_line_exit_code_and_unchanged_flash(case, pristine, work, capsys):
    argv, exit_code, text = _bad_inputs(work)[case]
    before = flash_bytes(pristine)
    options = ["--sim-image", str(pristine)]
    if "--board" not in argv:
        options += ["--board", BOARD]
    if "--config" not in argv:
        options += ["--config", str(CONFIG_JSON)]
    code = main([*argv, *options])
    err = capsys.readouterr().err
    assert code == exit_code
    assert text.lower() in one_line_error(err).lower()
    assert flash_bytes(pristine) == before


# -- Ctrl-C -------------------------------------------------------------------------------------


def test_interrupted_flash_leaves_no_process_and_never_reports_success(work):
    image = work / "interrupt.bin"
    image.write_bytes(random.Random(5).randbytes(1 << 20))
    flash_file = work / "flash-interrupt.bin"
    proc = subprocess.Popen(
        [sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x11000000",
         *common(flash_file), "--json"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    try:
        seen: set[int] = set()
        deadline = time.monotonic() + 120
        # Wait until the write is under way (sim, OpenOCD and GDB all running).
        while time.monotonic() < deadline:
            seen |= set(descendants(proc.pid))
            if len(seen) >= 3 and flash_file.exists() and \
                    flash_file.read_bytes()[0x1000000:0x1000100] != b"\xff" * 256:
                break
            assert proc.poll() is None, proc.communicate()
            time.sleep(0.2)
        seen |= set(descendants(proc.pid))
        proc.send_signal(2)  # SIGINT, what Ctrl-C sends
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 130
    assert "interrupted" in err and "Finished" not in err + out
    result = json.loads(out.splitlines()[-1])
    assert result["ok"] is False and result["verified"] is False
    assert len(seen) >= 3
    time.sleep(0.5)
    assert [pid for pid in seen if alive(pid)] == []
