"""Issue 16 where behaviour needs the target: the real CLI (as a process, or in-process), the
real OpenOCD and gdb-multiarch, and the virtual board."""

from __future__ import annotations

import json
import random
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import structlog

from qspi_gdb.cli import main

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                       reason="needs Debian openocd and gdb-multiarch"),
]

REPO = Path(__file__).resolve().parent.parent
SIM = ["--board", "sim-nrf5340dk"]


@pytest.fixture(scope="module")
def flashed(tmp_path_factory):
    """A virtual board's flash file holding app.bin at 0x10010000."""
    work = tmp_path_factory.mktemp("habits")
    app = work / "app.bin"
    app.write_bytes(random.Random("habits").randbytes(16 << 10))
    flash = work / "flash.img"
    done = qspi_gdb("flash", f"{app}@0x10010000", *SIM, "--sim-image", str(flash), "-q")
    assert done.returncode == 0, done.stderr
    return work, app, flash


def qspi_gdb(*argv: str, **kwargs) -> subprocess.CompletedProcess:
    """The command line as a process: stdout and stderr are pipes, not a terminal."""
    return subprocess.run([sys.executable, "-m", "qspi_gdb", *argv], cwd=REPO,
                          capture_output=True, timeout=180, **kwargs)


@pytest.fixture(autouse=True)
def fresh_logging():
    yield
    structlog.reset_defaults()


def test_dash_i_reaches_openocd_as_its_adapter_serial(capsys):
    """`-i SN` on a real board: OpenOCD gets `adapter serial SN` (and, with no probe attached,
    fails: a connection failure, exit 3, not 'no interface/SN.cfg')."""
    code = main(["info", "--board", "nrf5340dk", "-i", "683123456", "-v"])
    err = capsys.readouterr().err
    assert code == 3, err
    started = [line for line in err.splitlines() if "starting openocd" in line]
    assert started and "'adapter serial 683123456'" in started[0], err
    assert "interface/683123456" not in err


def test_output_control_on_a_real_run(flashed):
    work, app, flash = flashed
    read = ["read", "0x10010000", "16", "-o", str(work / "out.bin"), *SIM,
            "--sim-image", str(flash)]
    plain = qspi_gdb(*read, text=True)  # not a terminal: plain lines
    assert plain.returncode == 0, plain.stderr
    assert "info    openocd ready pid=" in plain.stderr
    assert "Reading flash: 16 B done in " in plain.stderr and "{" not in plain.stderr
    assert plain.stdout.startswith("Read 16 B at 0x00010000..0x0001000F into ")
    quiet = qspi_gdb(*read, "-q", text=True)
    assert quiet.returncode == 0 and quiet.stderr == "" and quiet.stdout.startswith("Read 16 B")
    no_progress = qspi_gdb("--no-progress", *read, text=True)
    assert "openocd ready" in no_progress.stderr and "Reading flash" not in no_progress.stderr
    as_json = qspi_gdb(*read, "--json", text=True)
    records = [json.loads(line) for line in as_json.stderr.splitlines()[:-1]]  # + summary
    progress = [r for r in records if r["event"] == "progress"]
    assert progress and progress[-1]["phase"] == "Reading flash" and progress[-1]["finished"]
    assert json.loads(as_json.stdout)["range"] == {"offset": 0x10000, "length": 16}


def test_dash_v_shows_steps_and_dash_vv_the_gdb_traffic(flashed):
    work, app, flash = flashed
    read = ["read", "0x10010000", "16", "-o", str(work / "out.bin"), *SIM,
            "--sim-image", str(flash)]
    one = qspi_gdb(*read, "-v", text=True)
    assert "debug   starting openocd" in one.stderr and "gdb <-" not in one.stderr
    two = qspi_gdb("-v", *read, "-v", text=True)  # counted before and after the command
    assert "gdb <- line=" in two.stderr
    assert len(two.stderr.splitlines()) > 2 * len(one.stderr.splitlines())


def test_read_to_stdout_puts_the_data_there_and_the_summary_on_stderr(flashed):
    work, app, flash = flashed
    done = qspi_gdb("read", "0x10010000", "4096", "-o", "-", *SIM, "--sim-image", str(flash),
                    "-q")
    assert done.returncode == 0, done.stderr
    assert done.stdout == app.read_bytes()[:4096]
    assert done.stderr.decode().startswith("Read 4 KiB at 0x00010000..0x00010FFF into stdout.")
    assert not (REPO / "-").exists()


def test_info_shows_each_value_with_its_layer_and_reset_is_reported(flashed, capsys):
    work, app, flash = flashed
    config = work / "ext.json"
    config.write_text('{"firmware_config": {"peripheral": "QSPI"}, "writeoc": "PP", '
                      '"sck_delay": 10}')
    code = main(["info", *SIM, "--sim-image", str(flash), "-c", str(config), "--readoc",
                 "READ2IO", "--sck-frequency", "16M", "--rx-delay", "3", "--reset", "-q"])
    out = capsys.readouterr().out
    assert code == 0
    for line in ("flash MX25R6435F, JEDEC ID C22817, detected (SFDP)  [JEDEC ID C22817]",
                 "read READ2IO  [command line]", f"write PP  [{config}]",
                 "sck_frequency 16 MHz  [command line]", f"sck_delay 10  [{config}]",
                 "rx_delay 3  [command line]", "size 8388608 bytes (8 MiB)  [SFDP]",
                 "spi_mode MODE0  [default]"):
        assert line in out.splitlines(), out
    assert out.splitlines()[-1].startswith("Reset (sysresetreq). Finished in ")
    assert main(["info", *SIM, "--sim-image", str(flash), "--reset", "--json", "-q"]) == 0
    assert json.loads(capsys.readouterr().out)["reset"] == "sysresetreq"


def test_after_connecting_the_chip_is_named_as_detected(flashed, capsys):
    work, app, flash = flashed
    code = main(["read", "0x107FF000", "0x2000", "-o", str(work / "x.bin"), *SIM,
                 "--sim-image", str(flash), "-q"])
    assert code == 2
    assert capsys.readouterr().err == (
        "qspi-gdb: error: read 0x007FF000..0x00800FFF runs past the end of "
        "MX25R6435F (8 MiB, detected) at 0x007FFFFF\n")
