"""The wheel carries what an installed tool needs (loader ELFs, OpenOCD configs, the virtual
board, the integrations and the GDB script) and none of the development tools (benchmarks live
in tests/bench/); installed into a fresh venv, away from the checkout, it flashes nothing but
detects a virtual board's flash, and gdb loads its `qspi` command from there."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]

pytestmark = pytest.mark.integration


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps",
                    "-q", "-w", str(out), str(REPO)], check=True, capture_output=True,
                   timeout=600)
    (built,) = out.glob("qspi_gdb-*.whl")
    return built


@pytest.fixture(scope="module")
def wheel_names(wheel) -> set[str]:
    with zipfile.ZipFile(wheel) as zf:
        return set(zf.namelist())


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A fresh venv with the wheel and its dependencies (from PyPI, through pip's cache)."""
    where = tmp_path_factory.mktemp("venv") / "env"
    venv.EnvBuilder(with_pip=True).create(where)
    subprocess.run([where / "bin" / "python", "-m", "pip", "install", "-q",
                    "--disable-pip-version-check", str(wheel)], check=True, capture_output=True,
                   timeout=600)
    return where


def test_wheel_has_the_loaders_configs_and_the_virtual_board(wheel_names):
    for chip in ("nrf52840", "nrf5340"):
        assert f"qspi_gdb/loader/elf/qspi_loader_{chip}.elf" in wheel_names
        assert f"qspi_gdb/openocd_cfg/target/{chip}.cfg" in wheel_names
    assert "qspi_gdb/openocd_cfg/interface/sim.cfg" in wheel_names
    assert "qspi_gdb/openocd_cfg/target/nordic_ctrlap.tcl" in wheel_names  # both targets need it
    assert "qspi_gdb/sim/__main__.py" in wheel_names
    for package in ("cli", "inputs", "flash", "loader", "transport", "sim", "integrations"):
        assert f"qspi_gdb/{package}/__init__.py" in wheel_names


def test_wheel_has_the_api_integrations_and_the_gdb_script(wheel_names):
    assert "qspi_gdb/api.py" in wheel_names
    for module in ("request", "west_command", "zephyr_runner", "labgrid_driver",
                   "gdb_session", "gdb_command", "gdb_script"):
        assert f"qspi_gdb/integrations/{module}.py" in wheel_names


def test_wheel_declares_west_and_labgrid_as_extras(wheel):
    with zipfile.ZipFile(wheel) as zf:
        metadata = zf.read(next(n for n in zf.namelist()
                                if n.endswith(".dist-info/METADATA"))).decode()
    assert "Provides-Extra: west" in metadata and "Provides-Extra: labgrid" in metadata
    assert "Requires-Dist: labgrid<27,>=25; extra == \"labgrid\"" in metadata


def test_wheel_has_no_development_tools(wheel_names):
    assert not [n for n in wheel_names if "bench" in n or n.startswith("tests/")]


@pytest.mark.skipif(not all(shutil.which(t) for t in ("openocd", "gdb-multiarch")),
                    reason="needs openocd and gdb-multiarch")
def test_installed_wheel_detects_a_virtual_boards_flash(installed, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    env["PATH"] = f"{installed / 'bin'}{os.pathsep}{env['PATH']}"
    run = subprocess.run([installed / "bin" / "qspi-gdb", "info", "--board", "sim-nrf5340dk",
                          "--json"], cwd=tmp_path, env=env, capture_output=True, text=True,
                         timeout=240)
    assert run.returncode == 0, run.stderr
    result = json.loads(run.stdout)
    assert result["ok"] and result["part"] == "MX25R6435F" and result["jedec_id"] == "C22817"
    where = subprocess.run([installed / "bin" / "python", "-c",
                            "import qspi_gdb; print(qspi_gdb.__file__)"], cwd=tmp_path, env=env,
                           capture_output=True, text=True, check=True).stdout.strip()
    assert Path(where).is_relative_to(installed), where  # not the checkout


@pytest.mark.skipif(not shutil.which("gdb-multiarch"), reason="needs gdb-multiarch")
def test_gdb_sources_the_installed_script(installed, tmp_path):
    script = subprocess.run([installed / "bin" / "qspi-gdb", "gdb-script"], cwd=tmp_path,
                            capture_output=True, text=True, check=True).stdout.strip()
    assert Path(script).is_relative_to(installed)
    run = subprocess.run(["gdb-multiarch", "-nx", "-batch", "-ex", f"source {script}",
                          "-ex", "help qspi", "-ex", "qspi flash -h"], cwd=tmp_path,
                         capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert "Write the external QSPI flash" in run.stdout, run.stdout + run.stderr
    assert "qspi flash" in run.stdout and "usage: qspi flash" in run.stdout
