"""labgrid: the real labgrid-coordinator and labgrid-exporter on 127.0.0.1 (one pair for the
module), a place created and acquired with labgrid-client, the README's bootstrap and Python
examples flashing an exported virtual board through QspiGdbDriver, verified by reading the
board's flash file back; and the command the driver builds for a farm's USB probe."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from readme_examples import readme_example

pytest.importorskip("labgrid")

from labgrid import Target  # noqa: E402
from labgrid.resource.remote import NetworkUSBDebugger  # noqa: E402

from qspi_gdb.errors import UsageError  # noqa: E402
from qspi_gdb.integrations.labgrid_driver import (  # noqa: E402
    QspiGdbDriver,
    QspiGdbVirtualBoard,
    _result_object,
    is_this_host,
)
from qspi_gdb.transport.ports import free_tcp_port, port_accepts  # noqa: E402

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("openocd", "gdb-multiarch")),
                       reason="needs openocd and gdb-multiarch"),
]

BIN = Path(sys.executable).parent
README_PORT = "127.0.0.1:20408"
XIP_OFFSET = 0x1E98000  # 0x11E98000 on the nRF5340's XIP window


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def farm(tmp_path_factory):
    """A coordinator and an exporter of the README's exporter.yaml (its flash file in tmp)."""
    work = tmp_path_factory.mktemp("labgrid")
    address = f"127.0.0.1:{free_tcp_port()}"
    env = {**os.environ, "LG_COORDINATOR": address,
           "PATH": f"{BIN}{os.pathsep}{os.environ['PATH']}"}
    flash_file = work / "flash.img"
    (work / "exporter.yaml").write_text(
        readme_example("labgrid", "yaml", 0).replace("/var/lib/qspi-gdb/flash.img",
                                                     str(flash_file)))
    (work / "env.yaml").write_text(readme_example("labgrid", "yaml", 1))
    logs = {name: open(work / f"{name}.log", "wb") for name in ("coordinator", "exporter")}
    coordinator = subprocess.Popen([BIN / "labgrid-coordinator", "-l", address], cwd=work,
                                   stdout=logs["coordinator"], stderr=subprocess.STDOUT)
    procs = [coordinator]
    try:
        deadline = time.monotonic() + 30
        host, port = address.split(":")
        while not port_accepts(host, int(port)):
            assert coordinator.poll() is None and time.monotonic() < deadline, \
                (work / "coordinator.log").read_text()
            time.sleep(0.1)
        exporter_cmd = readme_example("labgrid", "sh", 0).split()
        assert exporter_cmd[:3] == ["labgrid-exporter", "-c", README_PORT]
        exporter = subprocess.Popen(
            [BIN / "labgrid-exporter", "-c", address, "--name", "qspi-farm",
             *exporter_cmd[3:]], cwd=work, env=env, stdout=logs["exporter"],
            stderr=subprocess.STDOUT)
        procs.append(exporter)
        while b"QspiGdbVirtualBoard" not in _client(env, work, "resources", check=False).stdout:
            assert exporter.poll() is None and time.monotonic() < deadline, \
                (work / "exporter.log").read_text()
            time.sleep(0.3)
        yield {"env": env, "work": work, "flash": flash_file, "address": address}
    finally:
        _client(env, work, "-p", "qspi-sim", "release", check=False)
        for proc in reversed(procs):
            _stop(proc)
        for log in logs.values():
            log.close()


def _client(env, cwd, *args, check=True):
    return subprocess.run([BIN / "labgrid-client", *args], cwd=cwd, env=env,
                          capture_output=True, timeout=120, check=check)


def test_exported_virtual_board_and_probe_are_visible(farm):
    shown = _client(farm["env"], farm["work"], "-vv", "resources").stdout.decode()
    assert "qspi-farm/qspi-sim/QspiGdbVirtualBoard" in shown
    assert "qspi-farm/dk-probe/NetworkUSBDebugger" in shown  # exported, no device here


def test_readme_bootstrap_and_python_examples_flash_the_exported_board(farm):
    work, env = farm["work"], farm["env"]
    image = os.urandom(7000)
    (work / "zephyr.recovery.bin").write_bytes(image)
    script = readme_example("labgrid", "sh", 1).replace(README_PORT, farm["address"])
    run = subprocess.run(["bash", "-ec", script], cwd=work, env=env, capture_output=True,
                         text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "(CRC32 on target)" in run.stdout  # the tool's summary, shown by labgrid
    flash = farm["flash"].read_bytes()
    assert flash[XIP_OFFSET:XIP_OFFSET + len(image)] == image

    second = os.urandom(5000)
    (work / "zephyr.recovery.bin").write_bytes(second)
    run = subprocess.run([sys.executable, "-c", readme_example("labgrid", "python")], cwd=work,
                         env=env, capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert run.stdout.splitlines()[-1] == "verified 7168 IS25WP256"  # kept bytes programmed too
    flash = farm["flash"].read_bytes()
    assert flash[XIP_OFFSET:XIP_OFFSET + len(second)] == second
    assert flash[XIP_OFFSET + len(second):XIP_OFFSET + len(image)] == \
        image[len(second):]  # read-modify-write kept the rest of the sector


def test_a_refusal_comes_back_typed(farm):
    work, env = farm["work"], farm["env"]
    script = """
import pytest
from labgrid import Environment
from qspi_gdb.errors import UsageError
qspi = Environment("env.yaml").get_target("main").get_driver("QspiGdbDriver")
try:
    qspi.flash_ext("missing.bin")
except UsageError as error:
    print("refused:", error, error.result["error"]["exit_code"])
"""
    run = subprocess.run([sys.executable, "-c", script], cwd=work, env=env,
                         capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    assert run.stdout.splitlines()[-1].endswith("missing.bin: no such file 2")


def test_driver_command_for_a_farm_usb_probe(tmp_path):
    """A NetworkUSBDebugger of an exporter on this host: the tool runs here and the probe is
    chosen by its USB path (or by its serial); a .bin gets its address."""
    target = Target("dk")
    NetworkUSBDebugger(target, name=None, host="127.0.0.1", busnum=1, devnum=4, path="1-1.2",
                       vendor_id=0x1366, model_id=0x1015)
    driver = QspiGdbDriver(target, name=None, board="nrf5340dk", address="0x11E98000",
                           probe="jlink")
    (tmp_path / "app.bin").write_bytes(b"\0")
    argv = driver.command(str(tmp_path / "app.bin"), erase=True)
    assert argv == ["qspi-gdb", "flash", str(tmp_path / "app.bin"), "--addr", "0x11E98000",
                    "--board", "nrf5340dk", "--usb-location", "1-1.2", "--interface", "jlink",
                    "--chip-erase", "--reset", "--json"]
    driver.serial = "000683000000"
    argv = driver.command(str(tmp_path / "app.bin"), reset=False, verify=False)
    assert "--dev-id" in argv and "--usb-location" not in argv
    assert "--reset" not in argv and "--no-verify" in argv


def test_virtual_board_resource_and_helpers():
    target = Target("sim")
    board = QspiGdbVirtualBoard(target, name=None, board="sim-nrf52840dk")
    assert board.host == "localhost" and board.sim_image is None
    assert is_this_host("localhost") and is_this_host("127.0.0.1")
    assert not is_this_host("farm-host.invalid")
    output = b'\x1b[2K\rErasing [###]\r\n{"ok": true, "schema": "qspi-gdb/result/1"}\r\n'
    assert _result_object(output) == {"ok": True, "schema": "qspi-gdb/result/1"}
    assert _result_object(b"no json here") is None
    assert UsageError.exit_code == 2
