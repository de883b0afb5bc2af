"""The wheel carries what an installed tool needs (loader ELFs, OpenOCD configs, the virtual
board) and none of the development tools (benchmarks live in tests/bench/)."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel_names(tmp_path_factory) -> set[str]:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(out), str(REPO)], check=True, capture_output=True,
                   timeout=600)
    (wheel,) = out.glob("qspi_gdb-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


def test_wheel_has_the_loaders_configs_and_the_virtual_board(wheel_names):
    for chip in ("nrf52840", "nrf5340"):
        assert f"qspi_gdb/loader/elf/qspi_loader_{chip}.elf" in wheel_names
        assert f"qspi_gdb/openocd_cfg/target/{chip}.cfg" in wheel_names
    assert "qspi_gdb/openocd_cfg/interface/sim.cfg" in wheel_names
    assert "qspi_gdb/sim/__main__.py" in wheel_names
    for package in ("cli", "inputs", "flash", "loader", "transport", "sim"):
        assert f"qspi_gdb/{package}/__init__.py" in wheel_names


def test_wheel_has_no_development_tools(wheel_names):
    assert not [n for n in wheel_names if "bench" in n or n.startswith("tests/")]
