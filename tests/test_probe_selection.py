"""--dev-id / --usb-location (the minimal probe selection west's -i and labgrid's USB
resources need): OpenOCD's `adapter serial` / `adapter usb location` for real probes, refused
for virtual boards and for a GDB server someone else runs."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from qspi_gdb.errors import UsageError
from qspi_gdb.transport.openocd import openocd_cfg_dir
from qspi_gdb.transport.session import (
    TargetOptions,
    check_probe_selection,
    openocd_script,
)

DK = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False, dev_id="000683000000")


def test_serial_follows_the_board_config_of_the_on_board_jlink():
    assert openocd_script(DK, None) == [("f", "board/nrf5340dk.cfg"),
                                        ("c", "adapter serial 000683000000")]


def test_serial_and_usb_path_come_before_the_transport():
    options = TargetOptions(board="nrf52840dk", chip="nrf52840", virtual=False,
                            interface="cmsis-dap", dev_id="E6614103", usb_location="1-1.2")
    script = openocd_script(options, None)
    assert script[1:4] == [("c", "adapter serial E6614103"),
                           ("c", "adapter usb location 1-1.2"), ("c", "transport select swd")]


def test_user_configs_get_the_serial_last():
    options = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False,
                            openocd_config=["my.cfg"], dev_id="1")
    assert openocd_script(options, None) == [("f", "my.cfg"), ("c", "adapter serial 1")]


@pytest.mark.parametrize("options, message", [
    (TargetOptions(board="sim-nrf5340dk", chip="nrf5340", virtual=True, dev_id="1"),
     "--dev-id selects a real probe; the virtual board sim-nrf5340dk has none"),
    (TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False, gdb_server="h:1",
                   usb_location="1-1"), "with --gdb-server the server chooses its probe"),
    (TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False, dev_id="1 ; shutdown"),
     "expected a probe serial number"),
    (TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False, dev_id="[exit]"),
     "expected a probe serial number"),
])
def test_refusals(options, message):
    with pytest.raises(UsageError, match=message.replace("[", r"\[")):
        check_probe_selection(options)


@pytest.mark.skipif(not shutil.which("openocd"), reason="needs openocd")
def test_openocd_accepts_the_script_up_to_init():
    steps = openocd_script(DK, None)
    argv = ["openocd", "-s", str(openocd_cfg_dir())]
    for kind, value in steps:
        argv += [f"-{kind}", value]
    run = subprocess.run([*argv, "-c", "echo SCRIPT_OK; shutdown"], capture_output=True,
                         text=True, timeout=30)
    assert "SCRIPT_OK" in run.stderr + run.stdout
