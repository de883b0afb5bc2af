"""The kept-bytes journal end to end (README "Reliability"): the real OpenOCD, gdb-multiarch and
loader against a virtual board with a fault injected in the program phase, on a patterned flash
whose image starts and ends inside sectors (the bytes around it are kept by read-modify-write).

- the link survives (the chip fails a program): the bytes outside the image are restored at
  once, the second try in the same run rewrites what did not verify, no journal is left;
- the link dies (power lost mid-page): the error names the journal, the re-run of the same
  command restores the bytes and removes it; another image's flash is refused meanwhile."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                       reason="needs Debian openocd and gdb-multiarch"),
]
BOARD, SIZE = "sim-nrf52840dk", 8 << 20
OFFSET, LENGTH = 0x10100, 9000  # first and last sectors partly covered


@pytest.fixture
def target(tmp_path, monkeypatch):
    """(flash file, its pattern, image file, state directory) for this test."""
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "state"))
    rng = random.Random(7)
    pattern = bytes(rng.randrange(0, 255) for _ in range(0x30000)) + b"\x5a" * (SIZE - 0x30000)
    flash = tmp_path / "f.img"
    flash.write_bytes(pattern)
    image = tmp_path / "app.bin"
    image.write_bytes(rng.randbytes(LENGTH))
    return flash, pattern, image, tmp_path / "state" / "qspi-gdb"


def qspi_gdb(image: Path, flash: Path, *more: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x{OFFSET:X}",
                           "--board", BOARD, "--sim-image", str(flash), *more],
                          capture_output=True, text=True, timeout=280)


def outside_changed(flash: Path, pattern: bytes) -> int:
    got = flash.read_bytes()
    return sum(a != b for a, b in zip(got[:OFFSET] + got[OFFSET + LENGTH:],
                                      pattern[:OFFSET] + pattern[OFFSET + LENGTH:]))


def error_line(done: subprocess.CompletedProcess) -> str:
    lines = [ln for ln in done.stderr.splitlines() if ln.startswith("qspi-gdb: error")]
    assert len(lines) == 1, done.stderr
    return lines[0]


@pytest.mark.timeout(600)
def test_a_program_failure_is_written_again_in_the_same_run(target):
    flash, pattern, image, journals = target
    done = qspi_gdb(image, flash, "--sim-fault", "program-fail:program=1", "--json")
    assert done.returncode == 0, done.stderr
    result = json.loads(done.stdout)
    # the verify found the unit the chip failed to program; its kept bytes were restored from
    # the journal at once, then the second try rewrote what did not verify
    assert result["verify"] == "verified" and result["retries"][0]["attempt"] == 2
    assert result["retries"][0]["reason"].startswith("verify: 1 range(s) differ")
    assert "restoring the bytes outside the image" in done.stderr
    assert flash.read_bytes()[OFFSET:OFFSET + LENGTH] == image.read_bytes()
    assert outside_changed(flash, pattern) == 0
    assert not list(journals.glob("*"))


@pytest.mark.timeout(600)
def test_power_lost_mid_page_the_rerun_restores_the_kept_bytes(target, tmp_path):
    flash, pattern, image, journals = target
    done = qspi_gdb(image, flash, "--sim-fault", "power-loss:byte=1")
    assert done.returncode == 3, done.stderr
    line = error_line(done)
    [journal] = list(journals.glob("*"))
    assert f"saved in {journal}" in line and "a re-run of the same command restores" in line
    assert outside_changed(flash, pattern) > 0  # the page with kept bytes lost power
    assert journal.stat().st_mode & 0o777 == 0o600

    other = tmp_path / "other.bin"
    other.write_bytes(b"\x00" * LENGTH)
    before = flash.read_bytes()
    refused = qspi_gdb(other, flash)
    assert refused.returncode == 2, refused.stderr
    assert "another image" in error_line(refused) and "--discard-journal" in error_line(refused)
    assert flash.read_bytes() == before and journal.exists()  # nothing written

    again = qspi_gdb(image, flash)
    assert again.returncode == 0, again.stderr
    assert flash.read_bytes()[OFFSET:OFFSET + LENGTH] == image.read_bytes()
    assert outside_changed(flash, pattern) == 0
    assert not journal.exists()
