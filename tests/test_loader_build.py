"""The committed loader ELFs are exactly what `make -C loader_fw` produces, wherever the clone
sits (reproducible build: relative paths, -ffile-prefix-map, no timestamps, no build-id note)."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from qspi_gdb.loader import loader_elf

REPO = Path(__file__).resolve().parents[1]
CHIPS = ("nrf52840", "nrf5340")

pytestmark = pytest.mark.skipif(
    shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None,
    reason="arm-none-eabi-gcc / make not installed",
)


def test_rebuild_in_other_folder_is_byte_identical(tmp_path):
    # a deeper, differently named folder than the repository's
    clone = tmp_path / "elsewhere" / "a-clone-of-qspi-gdb"
    shutil.copytree(REPO / "loader_fw", clone / "loader_fw",
                    ignore=shutil.ignore_patterns("build", "*.o", "*.elf"))
    (clone / "qspi_gdb" / "loader" / "elf").mkdir(parents=True)
    subprocess.run(["make", "-s", "-C", str(clone / "loader_fw")], check=True,
                   capture_output=True, timeout=300)
    for chip in CHIPS:
        built = (clone / "qspi_gdb" / "loader" / "elf" / f"qspi_loader_{chip}.elf").read_bytes()
        committed = loader_elf(chip).read_bytes()
        assert built == committed, (
            f"qspi_loader_{chip}.elf differs from a fresh build: run `make -C loader_fw` "
            "and commit the ELFs"
        )
        assert str(tmp_path).encode() not in built


def test_elfs_hold_no_absolute_paths():
    for chip in CHIPS:
        data = loader_elf(chip).read_bytes()
        assert str(REPO).encode() not in data
