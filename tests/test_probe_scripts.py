"""The OpenOCD scripts qspi-gdb generates for every probe it has a config for are accepted by
Debian's OpenOCD 0.12 up to the point where it would open USB (issue 14).

OpenOCD reads its -f/-c steps in order and runs `init` (which opens the adapter) only after the
last one; a `shutdown` as the last step ends it in the configuration stage: exit 0, "shutdown
command invoked", and no driver has looked for a device ("No J-Link device found", "unable to
find a matching CMSIS-DAP device" and the like never appear). A script OpenOCD refuses (a
transport its driver does not offer, an unknown command) exits 1 the same way.
"""

from __future__ import annotations

import shutil
import subprocess

import pytest

from qspi_gdb.transport.openocd import openocd_cfg_dir
from qspi_gdb.transport.session import TargetOptions, openocd_script

pytestmark = pytest.mark.skipif(not shutil.which("openocd"), reason="needs Debian's openocd")

# (probe, board, --interface): the on-board J-Link OB of each DK, an external J-Link,
# CMSIS-DAP v1/v2 (DAPLink, Raspberry Pi debugprobe: one driver), ST-LINK at the DAP level and
# as OpenOCD's high-level adapter.
PROBES = [
    ("J-Link OB on the nRF52840 DK", "nrf52840dk", None),
    ("J-Link OB on the nRF5340 DK", "nrf5340dk", None),
    ("external J-Link on the DK's Debug in (P18)", "nrf5340dk", "jlink"),
    ("CMSIS-DAP v1/v2 (DAPLink, debugprobe)", "nrf52840dk", "cmsis-dap"),
    ("ST-LINK, DAP level", "nrf5340dk", "stlink-dap"),
    ("ST-LINK, high-level adapter", "nrf52840dk", "stlink"),
]
USB_WORDS = ("No J-Link device found", "unable to find", "open failed", "LIBUSB", "Error")


def parse_only(steps: list[tuple[str, str]]) -> subprocess.CompletedProcess:
    argv = ["openocd", "-s", str(openocd_cfg_dir())]
    for kind, value in steps:
        argv += [f"-{kind}", value]
    return subprocess.run([*argv, "-c", "echo SCRIPT_ACCEPTED", "-c", "shutdown"],
                          capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("probe, board, interface", PROBES, ids=[p[0] for p in PROBES])
def test_openocd_accepts_the_script_and_stops_before_usb(probe, board, interface):
    chip = "nrf52840" if board == "nrf52840dk" else "nrf5340"
    options = TargetOptions(board=board, chip=chip, virtual=False, interface=interface,
                            serial="000683000001", adapter_khz=1000)
    steps = openocd_script(options, None)
    assert ("c", "adapter serial 000683000001") in steps
    assert ("c", "adapter speed 1000") in steps
    run = parse_only(steps)
    log = run.stdout + run.stderr
    assert run.returncode == 0, log
    assert "SCRIPT_ACCEPTED" in log and "shutdown command invoked" in log
    assert not [word for word in USB_WORDS if word in log], log
    assert "adapter speed: 1000 kHz" in log


def test_a_script_openocd_refuses_is_told_apart():
    options = TargetOptions(board="nrf52840dk", chip="nrf52840", virtual=False,
                            interface="stlink")
    steps = [("c", "transport select swd") if step == ("c", "transport select hla_swd")
             else step for step in openocd_script(options, None)]
    run = parse_only(steps)
    assert run.returncode != 0
    assert "doesn't support 'swd' transport" in run.stderr
