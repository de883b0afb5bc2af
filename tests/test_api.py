"""The Python API (`qspi_gdb.api`, re-exported by `qspi_gdb`): a Target opened once serves every
call, results are the `--json` Result, errors are typed and carry the Result so far; the README
example runs as written."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import zlib
from contextlib import contextmanager

import pytest
from readme_examples import readme_example

import qspi_gdb
from qspi_gdb import Target, erase, flash, info, read, verify
from qspi_gdb.connect import Connection, opener
from qspi_gdb.errors import UsageError, VerifyError
from qspi_gdb.flash.progress import PhaseFinished

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("openocd", "gdb-multiarch")),
                       reason="needs openocd and gdb-multiarch"),
]

XIP = 0x10010000  # sim-nrf5340dk: XIP base 0x10000000


def test_package_exports_the_api():
    assert {"Target", "Result", "flash", "verify", "read", "erase", "info"} <= set(qspi_gdb.__all__)
    assert qspi_gdb.flash is flash and qspi_gdb.Target is Target


def test_one_open_serves_every_call(tmp_path):
    image = os.urandom(6000)
    (tmp_path / "app.bin").write_bytes(image)
    flash_file = tmp_path / "flash.img"
    opened = []
    real = opener(Connection(sim_image=flash_file))

    @contextmanager
    def counting(board, loader):
        opened.append(board.name)
        with real(board, loader) as link:
            yield link

    events = []
    with Target(board="sim-nrf5340dk", open_target=counting) as t:
        assert t.is_open and t.board.name == "sim-nrf5340dk"
        result = flash(t, tmp_path / "app.bin", addr=XIP, progress=events.append)
        assert result.ok and result.verified and result.command == "flash"
        assert result.to_json()["schema"] == "qspi-gdb/result/1"
        assert set(result.phase_seconds) >= {"Erasing", "Programming", "Verifying"}
        assert any(isinstance(e, PhaseFinished) for e in events)
        assert verify(t, tmp_path / "app.bin", addr=XIP).verify == "verified"
        assert read(t, XIP, 100, tmp_path / "head.bin").bytes_read == 100
        assert info(t).part == "MX25R6435F"
        erased = erase(t, XIP + 0x10000, 0x1000)
        assert erased.ok and erased.sectors_erased == 1
        with pytest.raises(VerifyError) as mismatch:
            verify(t, tmp_path / "head.bin", addr=XIP + 0x10000)
        assert mismatch.value.result.verify == "mismatch"
        assert mismatch.value.result.error["exit_code"] == 4
    assert opened == ["sim-nrf5340dk"]  # one virtual board, one OpenOCD, one GDB for all
    assert not t.is_open
    assert (tmp_path / "head.bin").read_bytes() == image[:100]
    data = flash_file.read_bytes()
    assert zlib.crc32(data[0x10000:0x10000 + len(image)]) == zlib.crc32(image)
    assert data[0x20000:0x21000] == b"\xff" * 0x1000


def test_a_target_not_open_connects_for_one_call(tmp_path):
    (tmp_path / "app.bin").write_bytes(b"\x5a" * 300)
    t = Target(board="sim-nrf52840dk", sim_image=tmp_path / "flash.img")
    result = flash(t, f"{tmp_path / 'app.bin'}@0x12000000")
    assert result.ok and not t.is_open
    assert (tmp_path / "flash.img").read_bytes()[:300] == b"\x5a" * 300


def test_errors_are_typed_and_carry_the_result(tmp_path):
    t = Target(board="sim-nrf5340dk")
    with pytest.raises(UsageError) as missing:
        flash(t, tmp_path / "missing.bin", addr=XIP)
    assert missing.value.exit_code == 2
    assert missing.value.result.ok is False
    assert "no such file" in missing.value.result.error["message"]
    with pytest.raises(UsageError, match="unknown board 'no-such-board'"):
        Target(board="no-such-board").open()
    with pytest.raises(UsageError, match="--dev-id 123: sim-nrf5340dk is a virtual board"):
        Target(board="sim-nrf5340dk", serial="123").open()


def test_dry_run_plans_without_connecting(tmp_path):
    (tmp_path / "app.bin").write_bytes(b"\x01" * 5000)
    result = flash(Target(board="nrf5340dk"), tmp_path / "app.bin", addr=XIP, dry_run=True)
    assert result.ok and result.dry_run and result.plan["sectors_erased"] == 2


def test_readme_python_api_example_runs(tmp_path):
    image = os.urandom(10_000)
    (tmp_path / "zephyr.recovery.bin").write_bytes(image)
    (tmp_path / "other.bin").write_bytes(b"\x00" * 4096)
    run = subprocess.run([sys.executable, "-c", readme_example("Python API", "python")],
                         cwd=tmp_path, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    lines = run.stdout.splitlines()
    assert lines[0] == "IS25WP256 9D7019 33554432"
    assert lines[1] == "verified 10240 qspi-gdb/result/1"
    assert lines[2].startswith("differs: {'offset': 32079872, 'length': 4096")
    assert (tmp_path / "head.bin").read_bytes() == image[:64]
