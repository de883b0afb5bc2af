"""GdbLink (TargetLink over GDB/MI) against a virtual board through the real OpenOCD:
memory round trip, registers, resume/stop on bkpt, a wait that times out, both resets."""

from __future__ import annotations

import shutil
import socket
import subprocess
import textwrap

import pytest

from qspi_gdb import log
from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.transport.gdb_link import DHCSR, DHCSR_S_HALT, ConnectError, GdbLink
from qspi_gdb.transport.gdbmi import GdbMi
from qspi_gdb.transport.openocd import OpenOcd
from qspi_gdb.transport.virtual_board import VirtualBoardProcess

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not all(shutil.which(t) for t in ("openocd", "gdb-multiarch",
                                                          "arm-none-eabi-gcc")),
                       reason="needs openocd, gdb-multiarch and arm-none-eabi-gcc"),
]

PROGRAM_AT = 0x20010000  # above OpenOCD's work area


@pytest.fixture(scope="module")
def programs(tmp_path_factory):
    """spin.elf loops forever; stop.elf increments a counter and halts on bkpt."""
    work = tmp_path_factory.mktemp("elf")
    bodies = {"spin": "for (;;) counter++;",
              "stop": 'for (;;) { counter++; __asm__("bkpt #1"); }'}
    out = {}
    for entry, body in bodies.items():
        source = work / f"{entry}.c"
        source.write_text(textwrap.dedent(f"""
            volatile unsigned counter;
            __attribute__((noreturn)) void {entry}(void) {{ {body} }}
        """))
        elf = work / f"{entry}.elf"
        subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m33", "-mthumb", "-O1", "-nostdlib",
                        f"-Wl,-Ttext={PROGRAM_AT:#x}", f"-Wl,-e,{entry}", "-o", str(elf),
                        str(source)], check=True)
        out[entry] = elf
    return out


@pytest.fixture(scope="module")
def board():
    log.configure(0)
    with VirtualBoardProcess("sim-nrf5340dk") as sim, \
            OpenOcd([*sim.openocd_script(), ("f", "target/nrf5340.cfg")]) as openocd:
        yield openocd.gdb_address


def _link(address: str, monitor: bool, elf=None) -> tuple[GdbMi, GdbLink]:
    gdb = GdbMi(default_timeout_s=30).start()
    link = GdbLink(gdb, monitor=monitor, wait_scale=1.0, wait_floor_s=1.0)
    link.connect(address, elf=elf)
    return gdb, link


def test_memory_registers_and_a_bkpt_stop(board, programs):
    gdb, link = _link(board, monitor=True, elf=programs["stop"])
    try:
        data = bytes(range(256)) * 400  # 100 KiB: two MI chunks, each through `restore`
        link.write_memory(0x20020000, data)
        link.write_memory(0x20020010, b"\xa5" * 16)  # small: hex on the MI input
        data = data[:16] + b"\xa5" * 16 + data[32:]
        assert link.read_memory(0x20020000, len(data)) == data
        link.write_register("r5", 0x12345678)
        assert link.read_register("r5") == 0x12345678
        assert link.read_register("xPSR") == link.read_register("xpsr")
        link.load_elf(programs["stop"])
        link.write_register("pc", PROGRAM_AT | 1)
        link.write_register("xpsr", 0x01000000)
        link.resume()
        link.wait_halt(5)
        assert link.stops == 1 and link.halted
        pc = link.read_register("pc")
        assert PROGRAM_AT <= pc < PROGRAM_AT + 0x100
        with pytest.raises(TargetError, match="no register"):
            link.read_register("r99")
    finally:
        link.close()
        gdb.close()


def test_wait_that_times_out_halts_the_core_and_says_where(board, programs):
    gdb, link = _link(board, monitor=True, elf=programs["spin"])
    try:
        link.load_elf(programs["spin"])
        link.write_register("pc", PROGRAM_AT | 1)
        link.resume()
        with pytest.raises(TargetError, match=r"did not stop within .*pc=0x2001"):
            link.wait_halt(0.1)
        assert int.from_bytes(link.read_memory(DHCSR, 4), "little") & DHCSR_S_HALT
    finally:
        link.close()
        gdb.close()


@pytest.mark.parametrize("monitor", [True, False], ids=["monitor-reset", "sysresetreq"])
def test_reset_halts_at_the_reset_vector(board, programs, monitor):
    gdb, link = _link(board, monitor=monitor, elf=programs["spin"])
    try:
        link.write_register("pc", PROGRAM_AT | 1)
        link.reset(halt=True)
        assert int.from_bytes(link.read_memory(DHCSR, 4), "little") & DHCSR_S_HALT
        vector = int.from_bytes(link.read_memory(0x00000004, 4), "little")
        assert link.read_register("pc") == vector & ~1
    finally:
        link.close()
        gdb.close()


# -- connection failures (no board needed) ------------------------------------------------------

def test_refused_connection_names_the_address_once():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        address = f"127.0.0.1:{sock.getsockname()[1]}"
    with GdbMi(default_timeout_s=30) as gdb:
        with pytest.raises(ConnectError) as info:
            GdbLink(gdb, monitor=False).connect(address)
    message = str(info.value)
    assert message.count(address) == 1 and "refused" in message and "\n" not in message


def test_silent_server_is_logged_before_the_wait_and_times_out(capsys):
    log.configure(0, json_lines=True)
    with socket.socket() as server:  # accepts (kernel backlog) but never answers
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        address = f"127.0.0.1:{server.getsockname()[1]}"
        with GdbMi(default_timeout_s=30) as gdb:
            with pytest.raises(ConnectError, match=f"the GDB server at {address} did not "
                                                   f"answer within 1 s"):
                GdbLink(gdb, monitor=False).connect(address, timeout_s=1)
    assert f'"connecting to {address}"' in capsys.readouterr().err


def test_elf_gdb_cannot_read_is_a_usage_error_naming_it_once(tmp_path):
    elf = tmp_path / "bad.elf"
    elf.write_bytes(b"\x7fELF garbage")
    with GdbMi(default_timeout_s=30) as gdb:
        with pytest.raises(UsageError) as info:
            GdbLink(gdb, monitor=False).connect("127.0.0.1:1", elf=elf)
    message = str(info.value)
    assert message.count(str(elf)) == 1 and "not in executable format" in message
