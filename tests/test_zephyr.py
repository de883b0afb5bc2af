"""Zephyr for real (opt-in: needs a Zephyr tree in ZEPHYR_BASE, else skipped with that reason).

- `make zephyr-loader` builds loader_fw/zephyr for both DKs with Debian's arm-none-eabi-gcc; the
  ELFs flash and verify an image through `qspi-gdb flash --loader` on every virtual board (above
  16 MiB on the 32 MiB ones), leaving the same flash contents as the packaged loader.
- The build id follows the sources on an incremental rebuild.
- Zephyr's own samples/drivers/spi_flash, unmodified, built for both DKs, is written into the
  virtual board's internal flash through the real OpenOCD and gdb-multiarch (NVMC in write mode,
  as a debugger loads an application), reset, and its console (UARTE0 -> `qspi-gdb sim
  --console FILE`) shows its erase / write / read-back checks passing.

Builds go to pytest's cache directory (`.pytest_cache/d/zephyr`), so a second run only
rebuilds what changed. ZEPHYR_CMAKE_ARGS / ZEPHYR_MODULES / the toolchain variables reach the
build as for `make zephyr-loader`.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

REPO = Path(__file__).resolve().parent.parent
ZEPHYR_BASE = os.environ.get("ZEPHYR_BASE", "")
DK_BOARDS = {"nrf52840dk": "sim-nrf52840dk", "nrf5340dk": "sim-nrf5340dk"}
CHIP_OF = {"nrf52840dk": "nrf52840", "nrf5340dk": "nrf5340"}
needs_zephyr = pytest.mark.skipif(
    not ZEPHYR_BASE, reason="needs a Zephyr tree: set ZEPHYR_BASE (see README 'Zephyr')")
pytestmark = pytest.mark.integration

# every virtual board, and where the image goes (above 16 MiB on the 32 MiB parts)
FLASH_TARGETS = {
    "sim-nrf52840dk": ("nrf52840dk", 0x12100000),
    "sim-nrf5340dk": ("nrf5340dk", 0x10100000),
    "sim-nrf52840-32mb": ("nrf52840dk", 0x13E98000),
    "sim-nrf5340-32mb": ("nrf5340dk", 0x11E98000),
}
IMAGE_BYTES = 96 * 1024
# samples/drivers/spi_flash/sample.yaml's harness regexes, in order
SPI_FLASH_EXPECTED = ["Test 1: Flash erase", "Flash erase succeeded!", "Test 2: Flash write",
                      "Attempting to write 4 bytes", "Data read matches data written. Good!!"]
NVMC_CONFIG = {"nrf52840": 0x4001E504, "nrf5340": 0x50039504}


def make_zephyr(target: str, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MAKE")}
    env.setdefault("ZEPHYR_JOBS", "2")
    return subprocess.run(["make", "--no-print-directory", target, *args], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=1200)


def build_or_fail(target: str, *args: str) -> None:
    result = make_zephyr(target, *args)
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]


@pytest.fixture(scope="session")
def zephyr_builds(request) -> Path:
    return Path(request.config.cache.mkdir("zephyr"))


@pytest.fixture(scope="session")
def zephyr_loaders(zephyr_builds) -> dict[str, Path]:
    build = zephyr_builds / "loader"
    build_or_fail("zephyr-loader", f"ZEPHYR_LOADER_BUILD={build}")
    return {board: build / board / "zephyr" / "zephyr.elf" for board in DK_BOARDS}


@pytest.fixture(scope="session")
def spi_flash_sample(zephyr_builds) -> dict[str, Path]:
    build = zephyr_builds / "spi_flash"
    build_or_fail("zephyr-app", f"ZEPHYR_APP={ZEPHYR_BASE}/samples/drivers/spi_flash",
                  f"ZEPHYR_APP_BUILD={build}")
    return {board: build / board / "zephyr" for board in DK_BOARDS}


def elf_word(elf_path: Path, symbol: str) -> tuple[int, int]:
    """(address, 32-bit value) of a symbol in an ELF's loaded data."""
    with open(elf_path, "rb") as f:
        elf = ELFFile(f)
        addr = elf.get_section_by_name(".symtab").get_symbol_by_name(symbol)[0]["st_value"]
        for sec in elf.iter_sections():
            start = sec["sh_addr"]
            if sec["sh_type"] == "SHT_PROGBITS" and start <= addr < start + sec["sh_size"]:
                return addr, int.from_bytes(sec.data()[addr - start:addr - start + 4], "little")
    raise AssertionError(f"{symbol} not in {elf_path}")


# -- make zephyr-loader ---------------------------------------------------------------------


def test_make_zephyr_loader_without_zephyr_base_says_so_in_one_line():
    env = {k: v for k, v in os.environ.items() if k != "ZEPHYR_BASE" and not k.startswith("MAKE")}
    result = subprocess.run(["make", "--no-print-directory", "zephyr-loader"], cwd=REPO,
                            env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 2
    ours = [line for line in result.stderr.splitlines() if not line.startswith("make:")]
    assert ours == ["make zephyr-loader: ZEPHYR_BASE is not set; point it at a Zephyr tree with "
                    "the hal_nordic and cmsis modules "
                    "(export ZEPHYR_BASE=~/zephyrproject/zephyr)"], result.stderr


@needs_zephyr
def test_zephyr_loaders_are_ram_linked_qspi_loaders(zephyr_loaders):
    for board, elf_path in zephyr_loaders.items():
        with open(elf_path, "rb") as f:
            elf = ELFFile(f)
            loads = [s for s in elf.iter_segments() if s["p_type"] == "PT_LOAD" and s["p_filesz"]]
            assert loads and all(s["p_paddr"] >= 0x20004000 for s in loads), board  # RAM only
            symtab = elf.get_section_by_name(".symtab")
            # the symbols the host looks up (qspi_gdb/loader/session.py; ABI 2 has no halt point)
            for name in ("qspi_mailbox", "qspi_loader_entry", "qspi_loader_fault_halt",
                         "qspi_loader_build_id", "ql_stack_mem"):
                assert symtab.get_symbol_by_name(name), (board, name)
        header = (elf_path.parent.parent / "ql_build_id.h").read_text()
        _, build_id = elf_word(elf_path, "qspi_loader_build_id")
        assert f"0x{build_id:08x}u" in header


@needs_zephyr
def test_build_id_follows_an_incremental_rebuild(tmp_path, zephyr_builds):
    """The id is computed at build time: editing a source and rebuilding in the same build
    folder (no CMake re-run) gives the id of the edited sources, and reverting restores it."""
    copy = tmp_path / "loader_fw"
    shutil.copytree(REPO / "loader_fw", copy, ignore=shutil.ignore_patterns("build"))
    build = zephyr_builds / "build-id"
    shutil.rmtree(build, ignore_errors=True)
    args = (f"ZEPHYR_APP={copy}/zephyr", f"ZEPHYR_APP_BUILD={build}",
            "ZEPHYR_BOARDS=nrf52840dk/nrf52840")
    elf = build / "nrf52840dk" / "zephyr" / "zephyr.elf"

    def expected_id() -> int:
        """The documented recipe: SHA-256 of the board, then each hashed file's text."""
        files = [copy / "src" / n
                 for n in ("entry.c", "loader.c", "qspi.c", "hw.c", "crc32.c", "lz4.c")]
        files += [copy / "include" / "qspi_mailbox.h"]
        files += [copy / "src" / n
                  for n in ("chip.h", "crc32.h", "hw.h", "loader.h", "lz4.h", "qspi.h")]
        files += [copy / "zephyr" / n for n in ("src/main.c", "prj.conf", "CMakeLists.txt")]
        files += sorted((copy / "zephyr" / "boards").glob("*.overlay"))
        text = b"nrf52840dk/nrf52840" + b"".join(p.read_bytes() for p in files)
        return int(hashlib.sha256(text).hexdigest()[:8], 16)

    build_or_fail("zephyr-app", *args)
    first = elf_word(elf, "qspi_loader_build_id")[1]
    assert first == expected_id()
    source = copy / "src" / "crc32.c"
    original = source.read_text()
    source.write_text(original + "\n/* an edit */\n")
    build_or_fail("zephyr-app", *args)
    edited = elf_word(elf, "qspi_loader_build_id")[1]
    assert edited != first and edited == expected_id()
    source.write_text(original)
    build_or_fail("zephyr-app", *args)
    assert elf_word(elf, "qspi_loader_build_id")[1] == first


@needs_zephyr
@pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                    reason="needs Debian openocd and gdb-multiarch")
@pytest.mark.parametrize("sim_board", sorted(FLASH_TARGETS))
def test_zephyr_loader_flashes_like_the_packaged_one(sim_board, zephyr_loaders, tmp_path):
    dk, address = FLASH_TARGETS[sim_board]
    image = tmp_path / "image.bin"
    image.write_bytes(random.Random(15).randbytes(IMAGE_BYTES))
    _, build_id = elf_word(zephyr_loaders[dk], "qspi_loader_build_id")
    results, flashes = {}, {}
    for name, loader in (("zephyr", zephyr_loaders[dk]), ("packaged", None)):
        flash_file = tmp_path / f"{name}.img"
        argv = [sys.executable, "-m", "qspi_gdb", "-v", "flash", f"{image}@{address:#x}",
                "--board", sim_board, "--sim-image", str(flash_file), "--json"]
        if loader:
            argv += ["--loader", str(loader)]
        run = subprocess.run(argv, capture_output=True, text=True, timeout=280)
        assert run.returncode == 0, run.stderr[-4000:]
        results[name] = json.loads(run.stdout.strip().splitlines()[-1])
        flashes[name] = flash_file.read_bytes()
        if loader:  # the greeting came from the Zephyr build (its id, checked by the client)
            assert f'"build_id": "{build_id:#010x}"' in run.stderr
    zephyr, packaged = results["zephyr"], results["packaged"]
    assert zephyr["ok"] and zephyr["verified"], zephyr
    for key in ("part", "jedec_id", "address_mode", "verified_ranges", "bytes_programmed",
                "sectors_erased"):
        assert zephyr[key] == packaged[key], key
    assert zephyr["address_mode"] == ("32-bit" if sim_board.endswith("32mb") else "24-bit")
    assert flashes["zephyr"] == flashes["packaged"]


# -- an unmodified Zephyr application on the virtual board -------------------------------------


@needs_zephyr
@pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                    reason="needs Debian openocd and gdb-multiarch")
@pytest.mark.parametrize("dk", sorted(DK_BOARDS))
def test_zephyr_spi_flash_sample_passes_on_the_virtual_board(dk, spi_flash_sample, tmp_path):
    from sim_stack import Stack, alive, start_stack

    sim_board, chip = DK_BOARDS[dk], CHIP_OF[dk]
    app = spi_flash_sample[dk]
    image = tmp_path / "app.bin"  # zephyr.bin, padded to whole words (the NVMC writes words)
    data = (app / "zephyr.bin").read_bytes()
    image.write_bytes(data + b"\xff" * (-len(data) % 4))
    console = tmp_path / "console.txt"
    stack = Stack(board=sim_board, chip=chip, workdir=tmp_path,
                  sim_args=("--console", str(console)))
    try:
        start_stack(stack)
        out = stack.gdb(
            "monitor reset halt",
            f"set {{unsigned int}}{NVMC_CONFIG[chip]:#x} = 1",  # NVMC.CONFIG = Wen
            f"restore {image} binary 0",
            f"set {{unsigned int}}{NVMC_CONFIG[chip]:#x} = 0",
            "monitor reset run",
        )
        assert "Cannot access memory" not in out and "Error" not in out, out
        deadline = time.monotonic() + 120
        text = ""
        while time.monotonic() < deadline:
            text = console.read_bytes().decode("latin-1") if console.exists() else ""
            if SPI_FLASH_EXPECTED[-1] in text or "failed" in text.lower():
                break
            time.sleep(0.2)
    finally:
        stack.stop()
        left = [pid for pid in stack.pids if alive(pid)]
        assert not left, f"processes left behind: {left}"
    print(f"--- {sim_board} console ---\n{text}")
    assert "*** Booting Zephyr OS" in text, text
    positions = [text.find(line) for line in SPI_FLASH_EXPECTED]
    assert all(p >= 0 for p in positions) and positions == sorted(positions), text
    assert not re.search(r"failed|does not match|error", text, re.IGNORECASE), text
