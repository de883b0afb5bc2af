"""--usb-location (labgrid's USB resources name a probe by where it is plugged in): OpenOCD's
`adapter usb location` beside `adapter serial`, before the transport and the target; refused
for virtual boards; accepted by OpenOCD's parser."""

from __future__ import annotations

import shutil
import subprocess

import pytest

from qspi_gdb.errors import UsageError
from qspi_gdb.transport.openocd import openocd_cfg_dir
from qspi_gdb.transport.session import TargetOptions, checked_options, openocd_script

DK = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False, usb_location="1-1.2")


def test_usb_path_follows_the_board_config_of_the_on_board_jlink():
    assert openocd_script(DK, None) == [("f", "board/nrf5340dk.cfg"),
                                        ("c", "adapter usb location 1-1.2"),
                                        ("c", "adapter speed 4000")]


def test_serial_and_usb_path_come_before_the_target():
    options = TargetOptions(board="nrf52840dk", chip="nrf52840", virtual=False,
                            interface="cmsis-dap", serial="E6614103", usb_location="3-2")
    script = openocd_script(options, None)
    assert script[-3:] == [("c", "adapter serial E6614103"), ("c", "adapter usb location 3-2"),
                           ("f", "target/nrf52840.cfg")]


def test_a_usb_path_is_one_tcl_word():
    options = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False,
                            usb_location="1-1;shutdown [exit]")
    assert ("c", 'adapter usb location "1-1;shutdown \\[exit\\]"') in \
        openocd_script(options, None)


def test_refused_for_a_virtual_board():
    options = TargetOptions(board="sim-nrf5340dk", chip="nrf5340", virtual=True,
                            usb_location="1-1")
    with pytest.raises(UsageError, match="--usb-location 1-1: sim-nrf5340dk is a virtual board"):
        checked_options(options)


@pytest.mark.skipif(not shutil.which("openocd"), reason="needs openocd")
def test_openocd_accepts_the_script_up_to_init():
    options = TargetOptions(board="nrf5340dk", chip="nrf5340", virtual=False,
                            serial="000683000000", usb_location="1-1.2")
    argv = ["openocd", "-s", str(openocd_cfg_dir())]
    for kind, value in openocd_script(options, None):
        argv += [f"-{kind}", value]
    run = subprocess.run([*argv, "-c", "echo SCRIPT_OK; shutdown"], capture_output=True,
                         text=True, timeout=30)
    assert "SCRIPT_OK" in run.stderr + run.stdout
