"""Access-port protection, the CTRL-APs and the nRF5340 network core on the virtual board, driven
through its debug wire the way OpenOCD drives it (issue 14). What a protected chip answers is
what silicon answers (sources in qspi_gdb/sim/ctrlap.py), with no friendly special case."""

from __future__ import annotations

import pytest
from test_jtag_dap import Host

from qspi_gdb.sim import dap as D
from qspi_gdb.sim.board import Board
from qspi_gdb.sim.ctrlap import ERASEALL_S, ChipProtection
from qspi_gdb.sim.netcore import DHCSR
from qspi_gdb.sim.wire import DebugWire

pytestmark = pytest.mark.usefixtures("logging_to_a_live_stream")

CPUID = 0xE000ED00
FORCEOFF = 0x50005614


class Wall:
    """The host's clock as the CTRL-AP sees it while an ERASEALL runs."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def open_board(name: str, wall: Wall, **kwargs) -> tuple[Board, Host]:
    board = Board(name, **kwargs)
    # the same model, with a clock the test moves (ERASEALL follows the host's time)
    locked = [n for n, d in board.protection.domains.items() if d.locked]
    board.protection = ChipProtection(board.chip, board=board, wall=wall)
    board.reset_listeners[0] = board.protection.on_system_reset
    assert [n for n, d in board.protection.domains.items() if d.locked] == locked
    host = Host(DebugWire(board))
    host.reset()
    host.dp_write(D.DP_CTRL_STAT, D.CSYSPWRUPREQ | D.CDBGPWRUPREQ)
    return board, host


def sticky(host: Host) -> bool:
    error = bool(host.dp_read(D.DP_CTRL_STAT) & D.STICKYERR)
    host.dp_write(D.DP_CTRL_STAT, D.CSYSPWRUPREQ | D.CDBGPWRUPREQ | D.STICKYERR)
    return error


def eraseall(host: Host, wall: Wall, ctrl_ap: int) -> None:
    host.ap_write(ctrl_ap, 0x004, 1)
    assert host.ap_read(ctrl_ap, 0x008) != 0  # busy at once
    wall.now += ERASEALL_S + 0.01
    assert host.ap_read(ctrl_ap, 0x008) == 0
    host.ap_write(ctrl_ap, 0x004, 0)


def test_a_protected_nrf52840_hides_its_ahb_ap_and_its_ctrl_ap_says_so():
    wall = Wall()
    board, host = open_board("sim-nrf52840dk", wall, locked=("application",))
    try:
        assert board.uicr.words[0x208] == 0  # UICR.APPROTECT.PALL = Enabled
        assert host.ap_read(0, D.AP_IDR) == 0  # no MEM-AP to control the core
        assert host.ap_read(0, D.AP_CSW) == 0
        assert host.mem_read(CPUID) == 0 and not sticky(host)  # RAZ/WI like an empty APSEL
        assert host.ap_read(1, D.AP_IDR) == 0x02880000
        assert host.ap_read(1, 0x00C) == 0  # APPROTECTSTATUS: protection enabled
    finally:
        board.close()


def test_a_protected_nrf5340_keeps_its_ap_visible_with_deviceen_0_and_faults_on_drw():
    wall = Wall()
    board, host = open_board("sim-nrf5340dk", wall, locked=("application",))
    try:
        assert host.ap_read(0, D.AP_IDR) == 0x84770001
        assert not host.ap_read(0, D.AP_CSW) & (D.CSW_DEVICEEN | D.CSW_SPIDEN)
        assert host.mem_read(CPUID) == 0
        assert sticky(host)  # a DRW access is refused: STICKYERR (SWD: FAULT)
        assert host.ap_read(2, 0x00C) == 0
        assert host.ap_read(3, 0x00C) == 3  # the network core was not protected
    finally:
        board.close()


@pytest.mark.parametrize("name, ctrl_ap", [("sim-nrf52840dk", 1), ("sim-nrf5340dk", 2)])
def test_eraseall_opens_the_port_and_erases_internal_flash_uicr_and_ram_not_the_qspi_flash(
        name, ctrl_ap, tmp_path):
    wall = Wall()
    image = tmp_path / "ext.img"
    board, host = open_board(name, wall, locked=("application",), sim_image=image)
    try:
        board.flash._mem[0x1000:0x1004] = b"\x12\x34\x56\x78"  # external QSPI flash data
        board.internal_flash[0:4] = b"\x00\x11\x22\x33"
        board.ram[0:4] = b"\xAA\xBB\xCC\xDD"
        board.uicr.words[0x080] = 0x12345678  # a CUSTOMER word
        host.ap_write(ctrl_ap, 0x004, 1)
        wall.now += ERASEALL_S / 2
        assert host.ap_read(ctrl_ap, 0x008) != 0  # still busy half-way
        assert board.protection.locked()
        wall.now += ERASEALL_S / 2 + 0.01
        assert host.ap_read(ctrl_ap, 0x008) == 0
        assert board.clock.now >= ERASEALL_S  # the board's time followed the erase
        assert not board.protection.locked()
        assert board.internal_flash[0:4] == b"\xff" * 4
        assert board.ram[0:4] == bytes(4)
        assert board.uicr.words == {}  # erased: every word reads 0xFFFFFFFF
        assert board.flash.peek(0x1000, 4) == b"\x12\x34\x56\x78"
        assert host.mem_read(0x20000000) == 0 and not sticky(host)
        assert board.protection.stats.eraseall == ["application"]
    finally:
        board.close()


def test_after_eraseall_the_ctrl_ap_reset_keeps_the_port_open_but_sysresetreq_relocks_the_5340():
    wall = Wall()
    board, host = open_board("sim-nrf5340dk", wall, locked=("application",))
    try:
        eraseall(host, wall, 2)
        host.ap_write(2, 0x000, 1)
        host.ap_write(2, 0x000, 0)
        board.service(0.01)
        assert not board.protection.locked()  # the recover sequence's reset pulse
        host.mem_write(0xE000ED0C, 0x05FA0004)  # SYSRESETREQ: the UICR is erased now
        board.service(0.01)
        assert board.protection.locked()
        assert not host.ap_read(0, D.AP_CSW) & D.CSW_DEVICEEN
    finally:
        board.close()


def test_the_nrf52840_build_code_f_relocks_after_a_reset_with_an_erased_uicr():
    """Hardened APPROTECT (INFO.VARIANT AAF0): an erased UICR.APPROTECT (0xFF) protects."""
    wall = Wall()
    board, host = open_board("sim-nrf52840dk", wall)
    try:
        assert not board.protection.locked()  # UICR.APPROTECT = 0x5A (HwDisabled)
        eraseall(host, wall, 1)
        assert not board.protection.locked()
        host.mem_write(0xE000ED0C, 0x05FA0004)
        board.service(0.01)
        assert board.protection.locked()
        assert host.ap_read(0, D.AP_IDR) == 0
    finally:
        board.close()


def test_the_network_core_forceoff_register_its_ap_and_an_application_reset():
    wall = Wall()
    board, host = open_board("sim-nrf5340dk", wall, network_running=True)
    try:
        net = board.network
        assert host.mem_read(FORCEOFF) == 0  # released, as the DK's firmware leaves it
        assert host.ap_read(1, D.AP_CSW) & D.CSW_DEVICEEN
        host.ap_write(1, D.AP_CSW, 0x23000012)
        host.ap_write(1, D.AP_TAR, DHCSR)
        assert host.ap_read(1, D.AP_DRW) == 0  # running, no debugger attached
        assert net.running and net.stats.halt_requests == 0
        host.mem_write(0xE000ED0C, 0x05FA0004)  # the application's SYSRESETREQ holds it
        board.service(0.01)
        assert net.forceoff == 1 and not net.running and net.stats.holds == 1
        assert not host.ap_read(1, D.AP_CSW) & D.CSW_DEVICEEN  # forced off reads disabled
        host.ap_write(1, D.AP_TAR, DHCSR)
        host.ap_read(1, D.AP_DRW)
        assert sticky(host)
        host.mem_write(FORCEOFF, 0)
        assert net.running and net.stats.releases == 1
    finally:
        board.close()


def test_a_protected_network_core_is_erased_first_and_its_erase_clears_both_flashes():
    wall = Wall()
    board, host = open_board("sim-nrf5340dk", wall, locked=("application", "network"),
                             network_running=True)
    try:
        assert not host.ap_read(1, D.AP_CSW) & D.CSW_DEVICEEN  # running but protected
        board.internal_flash[0:2] = b"\x00\x00"
        eraseall(host, wall, 3)
        assert board.internal_flash[0:2] == b"\xff\xff"  # the application flash too
        assert board.protection.locked("application") and not board.protection.locked("network")
        assert host.ap_read(1, D.AP_CSW) & D.CSW_DEVICEEN
        eraseall(host, wall, 2)
        assert board.protection.stats.eraseall == ["network", "application"]
        assert board.network.stats.erased == 1
    finally:
        board.close()
