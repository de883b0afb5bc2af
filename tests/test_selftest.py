"""`qspi-gdb selftest` on every virtual board through the real OpenOCD, gdb-multiarch and loader
(issue 14): ID and SFDP against the part table, patterns across page, sector and (on 32 MiB
parts) the 16 MiB boundary in each address mode, speed figures, and the scratch bytes written
back: the flash file is byte for byte what it was. A scratch region holding data is refused
without --yes-use-scratch, and with it kept in a file until it is restored."""

from __future__ import annotations

import json
import random
import shutil
from pathlib import Path

import pytest

from qspi_gdb.cli import main
from qspi_gdb.sim.board import BOARDS

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                                 reason="needs Debian openocd and gdb-multiarch")]

SIZES = {"MX25R6435F": 8 << 20, "IS25WP256": 32 << 20, "MT25QU256A": 32 << 20}


@pytest.fixture(autouse=True)
def in_tmp(private_runtime, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # where a scratch backup file would go


def filled(path: Path, size: int, seed: int | None) -> bytes:
    data = b"\xff" * size if seed is None else random.Random(seed).randbytes(size)
    path.write_bytes(data)
    return data


@pytest.mark.parametrize("board", sorted(BOARDS))
def test_selftest_passes_and_leaves_the_flash_as_it_was(board, tmp_path, capsys):
    size = SIZES[BOARDS[board].part]
    flash = tmp_path / "f.img"
    before = filled(flash, size, None)
    code = main(["selftest", "--board", board, "--sim-image", str(flash), "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    result = json.loads(out)
    test = result["selftest"]
    assert result["ok"] and all(check["ok"] for check in test["checks"])
    assert all(step["ok"] for step in test["steps"]) and test["restored"] is True
    names = [(step["mode"], step["name"]) for step in test["steps"]]
    if size > 16 << 20:
        assert test["address_modes"] == ["32-bit", "24-bit"]
        assert (32, "600 B across 16 MiB") in names
        assert (24, "reads what 32-bit mode wrote") in names
        assert {(r["offset"], r["length"]) for r in test["scratch"]} == {
            (size - 0x10000, 0x10000), (0x00FFE000, 0x4000)}
    else:
        assert test["address_modes"] == ["24-bit"]
        assert test["scratch"] == [{"offset": size - 0x10000, "length": 0x10000}]
    assert (int(names[0][0]), names[0][1]) == (names[0][0], "64 KiB: every page and sector")
    assert set(test["speeds"]) >= {f"write_{test['address_modes'][0][:2]}bit_kBps"}
    assert flash.read_bytes() == before


def test_a_scratch_region_that_holds_data_is_refused_then_used_with_consent(tmp_path, capsys):
    board = "sim-nrf5340dk"
    flash = tmp_path / "f.img"
    before = filled(flash, 8 << 20, 14)
    code = main(["selftest", "--board", board, "--sim-image", str(flash)])
    err = capsys.readouterr().err
    assert code == 2
    assert err.splitlines()[-1] == (
        "qspi-gdb: error: selftest: the scratch region 0x007F0000..0x00800000 holds data; pass "
        "--yes-use-scratch to use it anyway (it is saved and written back), or --scratch ADDR "
        "for a blank 64 KiB")
    assert flash.read_bytes() == before

    code = main(["selftest", "--board", board, "--sim-image", str(flash), "--scratch",
                 "0x10100000", "--yes-use-scratch"])
    out, err = capsys.readouterr()
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("qspi-gdb selftest report (qspi-gdb ")
    assert "  scratch: 0x00100000..0x00110000" in lines
    backup = tmp_path / "qspi-gdb-scratch-sim-nrf5340dk-00100000.bin"
    assert f"saved the scratch bytes to {backup.name} before writing" in lines
    assert f"scratch bytes written back and checked; removed {backup.name}" in lines
    assert not backup.exists()
    assert lines[-1].startswith("Selftest passed: written, verified and restored in 24-bit "
                                "mode. Finished in ")
    assert flash.read_bytes() == before


def test_a_scratch_address_that_does_not_fit_is_refused(tmp_path, capsys):
    code = main(["selftest", "--board", "sim-nrf52840dk", "--scratch", "0x12001000"])
    assert code == 2
    assert capsys.readouterr().err.splitlines()[-1] == (
        "qspi-gdb: error: --scratch 0x12001000: flash offset 0x00001000 must be a multiple of "
        "64 KiB with 64 KiB of flash behind it (below 0x00800000)")
