"""Which probes are attached and which one a command uses (issue 14): the USB listing from a
sysfs tree laid out as Linux does (a test tree: this machine may have no USB), the virtual
probes' registry, and the choice with --dev-id, one probe, several probes."""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from qspi_gdb.errors import UsageError
from qspi_gdb.transport import probes
from qspi_gdb.transport.probes import Probe, choose, usb_probes, virtual_probes


def usb_device(root: Path, name: str, vid: str, pid: str, product: str,
               serial: str | None = None, interfaces: tuple[str, ...] = ()) -> None:
    dev = root / name
    dev.mkdir(parents=True)
    (dev / "idVendor").write_text(vid + "\n")
    (dev / "idProduct").write_text(pid + "\n")
    (dev / "product").write_text(product + "\n")
    if serial is not None:
        (dev / "serial").write_text(serial + "\n")
    for i, text in enumerate(interfaces):
        (root / f"{name}:1.{i}").mkdir()
        (root / f"{name}:1.{i}" / "interface").write_text(text + "\n")


@pytest.fixture
def sysfs(tmp_path) -> Path:
    root = tmp_path / "usb"
    root.mkdir()
    usb_device(root, "usb1", "1d6b", "0002", "EHCI Host Controller", "0000:00:1d.0")
    usb_device(root, "1-1", "1366", "1051", "J-Link", "001050012345")  # nRF5340 DK OB
    usb_device(root, "1-2", "1366", "0101", "J-Link", "000683000001")  # external J-Link
    usb_device(root, "1-3.1", "2e8a", "000c", "Debugprobe on Pico (CMSIS-DAP)", "E6614103E7")
    usb_device(root, "1-3.2", "0d28", "0204", "DAPLink CMSIS-DAP", "0240000034")
    usb_device(root, "1-4", "c251", "f002", "LPC-Link", "X1", interfaces=("CMSIS-DAP v2",))
    usb_device(root, "1-5", "0483", "374b", "STM32 STLink", "066DFF")
    usb_device(root, "1-6", "046d", "c077", "USB Optical Mouse")
    return root


def test_usb_probes_are_matched_as_openocd_knows_them(sysfs):
    found = {p.serial: (p.kind, p.usb_id, p.location) for p in usb_probes(sysfs)}
    assert found == {
        "001050012345": ("jlink", "1366:1051", "1-1"),
        "000683000001": ("jlink", "1366:0101", "1-2"),
        "E6614103E7": ("cmsis-dap", "2e8a:000c", "1-3.1"),
        "0240000034": ("cmsis-dap", "0d28:0204", "1-3.2"),
        "X1": ("cmsis-dap", "c251:f002", "1-4"),  # CMSIS-DAP v2: the interface string says it
        "066DFF": ("stlink", "0483:374b", "1-5"),
    }


def test_no_sysfs_means_usb_cannot_be_listed(tmp_path):
    assert usb_probes(tmp_path / "none") is None


def test_choosing(sysfs):
    found = usb_probes(sysfs)
    with pytest.raises(UsageError) as info:
        choose("jlink", None, found)
    assert str(info.value) == (
        "2 jlink probes are attached; choose one with -i/--dev-id SERIAL: 001050012345: J-Link "
        "(1366:1051) at USB 1-1; 000683000001: J-Link (1366:0101) at USB 1-2")
    assert choose("jlink", "000683000001", found).location == "1-2"
    assert choose("stlink-dap", None, found).serial == "066DFF"  # the only one of its kind
    assert choose("cmsis-dap", "0240000034", found).usb_id == "0d28:0204"
    with pytest.raises(UsageError, match="^--dev-id 999: no attached probe has this serial"):
        choose("jlink", "999", found)
    with pytest.raises(UsageError, match="is a cmsis-dap probe, not jlink: pass --interface "
                                         "cmsis-dap"):
        choose("jlink", "E6614103E7", found)
    assert choose("jlink", "999", [], usb_listed=False) is None  # cannot check: OpenOCD will
    assert choose("jlink", None, []) is None  # none attached: OpenOCD's error says so


@pytest.fixture
def runtime(private_runtime) -> Path:
    return private_runtime


def register(runtime: Path, serial: str, board: str, pid: int) -> None:
    (runtime / "qspi-gdb").mkdir(exist_ok=True, mode=0o700)
    directory = runtime / "qspi-gdb" / "virtual-probes"
    directory.mkdir(exist_ok=True, mode=0o700)
    (directory / f"{serial}.json").write_text(json.dumps({
        "serial": serial, "board": board, "pid": pid, "adapter_khz": 1000.0,
        "remote_bitbang": f"unix:/tmp/{serial}.sock"}))


def test_virtual_probes_come_from_the_registry_and_stale_entries_are_skipped(runtime):
    register(runtime, "SIMA", "sim-nrf5340dk", os.getpid())
    register(runtime, "GONE", "sim-nrf5340dk", 2 ** 22 + 12345)  # no such process
    found = virtual_probes()
    assert [(p.serial, p.board, p.endpoint, p.adapter_khz) for p in found] == [
        ("SIMA", "sim-nrf5340dk", "unix:/tmp/SIMA.sock", 1000.0)]
    with pytest.raises(UsageError, match="^no virtual board is running as a probe"):
        choose("sim", None, [])
    two = [*found, Probe("virtual", "SIMB", "virtual board sim-nrf52840dk", pid=7)]
    with pytest.raises(UsageError, match="^2 virtual boards are running; choose one with "
                                         "-i/--dev-id SERIAL: SIMA: virtual board"):
        choose("sim", None, two)
    assert choose("sim", "SIMB", two).serial == "SIMB"
    with pytest.raises(UsageError, match="^--dev-id NOPE: no attached probe"):
        choose("sim", "NOPE", two, usb_listed=False)  # virtual ones can always be checked


def test_attached_lists_both_kinds(runtime, sysfs):
    register(runtime, "SIMA", "sim-nrf5340dk", os.getpid())
    found, listed = probes.attached(sysfs)
    assert listed and {p.kind for p in found} == {"jlink", "cmsis-dap", "stlink", "virtual"}
