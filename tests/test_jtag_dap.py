"""Unit tests of the debug port: TAP, JTAG-DP, MEM-AP, CTRL-AP, System Control Space and the
remote_bitbang decoder/server, against a fake board (no unicorn, no OpenOCD)."""

from __future__ import annotations

import socket
import threading

import pytest
from bitbang_client import read_idcode
from fake_board import FakeBoard

from qspi_gdb.sim import dap as D
from qspi_gdb.sim import scs as S
from qspi_gdb.sim.bus import BusFault
from qspi_gdb.sim.ctrlap import ERASEALL_S, ChipProtection
from qspi_gdb.sim.jtag import IR_APACC, IR_BYPASS, IR_DPACC, IR_IDCODE
from qspi_gdb.sim.wire import DebugWire, RemoteBitbangServer


class Host:
    """Drives a DebugWire the way OpenOCD 0.12's bitbang layer does (chars in, samples out)."""

    def __init__(self, wire: DebugWire) -> None:
        self.decoder = wire.decoder()
        self.wire = wire

    def _clock(self, tms: int, tdi: int = 0, sample: bool = False) -> int | None:
        chars = f"{tms << 1 | tdi}" + ("R" if sample else "") + f"{4 | tms << 1 | tdi}"
        out = self.decoder.feed(chars.encode())
        return out[0] - 48 if sample else None

    def reset(self) -> None:
        for _ in range(5):
            self._clock(1)
        self._clock(0)  # Run-Test/Idle

    def _scan(self, bits: int, length: int, ir: bool) -> int:
        # Idle -> Select-DR (-> Select-IR) -> Capture -> Shift
        self._clock(1)
        if ir:
            self._clock(1)
        self._clock(0)
        self._clock(0)
        result = 0
        for i in range(length):
            last = i == length - 1
            result |= self._clock(int(last), (bits >> i) & 1, sample=True) << i
        self._clock(1)  # Exit1 -> Update
        self._clock(0)  # Update -> Idle
        return result

    def ir(self, value: int) -> int:
        return self._scan(value, 4, ir=True)

    def dr(self, value: int, length: int) -> int:
        return self._scan(value, length, ir=False)

    def acc(self, ir: int, addr: int, rnw: bool, data: int = 0) -> tuple[int, int]:
        """One DPACC/APACC scan; returns (ack, previous read result)."""
        self.ir(ir)
        cap = self.dr(data << 3 | (addr >> 2) << 1 | int(rnw), 35)
        return cap & 7, cap >> 3

    def dp_read(self, addr: int) -> int:
        self.acc(IR_DPACC, addr, True)
        return self.acc(IR_DPACC, D.DP_RDBUFF, True)[1]

    def dp_write(self, addr: int, value: int) -> None:
        self.acc(IR_DPACC, addr, False, value)

    def ap_select(self, ap: int, reg: int) -> None:
        self.dp_write(D.DP_SELECT, ap << 24 | (reg & 0xF0))

    def ap_read(self, ap: int, reg: int) -> int:
        self.ap_select(ap, reg)
        self.acc(IR_APACC, reg & 0xC, True)
        return self.acc(IR_DPACC, D.DP_RDBUFF, True)[1]

    def ap_write(self, ap: int, reg: int, value: int) -> None:
        self.ap_select(ap, reg)
        self.acc(IR_APACC, reg & 0xC, False, value)

    def mem_write(self, addr: int, value: int, csw: int = 0x23000012) -> None:
        self.ap_write(0, D.AP_CSW, csw)
        self.ap_write(0, D.AP_TAR, addr)
        self.ap_write(0, D.AP_DRW, value)

    def mem_read(self, addr: int, csw: int = 0x23000012) -> int:
        self.ap_write(0, D.AP_CSW, csw)
        self.ap_write(0, D.AP_TAR, addr)
        return self.ap_read(0, D.AP_DRW)


@pytest.fixture(params=["nrf52840", "nrf5340"])
def board(request):
    return FakeBoard(request.param, ram_size=64 * 1024)


@pytest.fixture
def host(board):
    h = Host(DebugWire(board))
    h.reset()
    h.dp_write(D.DP_CTRL_STAT, D.CSYSPWRUPREQ | D.CDBGPWRUPREQ)
    return h


# --- TAP ---

def test_idcode_after_reset_and_ir_capture(board):
    h = Host(DebugWire(board))
    h.reset()
    assert h.dr(0, 32) == D.DP_IDCODES[board.chip]
    assert h.ir(IR_BYPASS) & 0b11 == 0b01  # IEEE 1149.1 IR capture
    assert h.dr(0b1, 1) == 0  # bypass captures 0
    h.ir(IR_IDCODE)
    assert h.dr(0, 32) == D.DP_IDCODES[board.chip]
    h.ir(0x3)  # unimplemented instruction -> bypass
    assert h.dr(0b101, 3) == 0b010


# --- DP ---

def test_power_up_requests_are_acknowledged(host):
    status = host.dp_read(D.DP_CTRL_STAT)
    assert status & (D.CSYSPWRUPACK | D.CDBGPWRUPACK) == D.CSYSPWRUPACK | D.CDBGPWRUPACK
    host.dp_write(D.DP_CTRL_STAT, 0)
    assert host.dp_read(D.DP_CTRL_STAT) & (D.CSYSPWRUPACK | D.CDBGPWRUPACK) == 0


def test_reads_are_posted_to_the_next_scan(host, board):
    board.bus.write(0x20000000, 4, 0xCAFEF00D)
    host.mem_write(0x20000004, 0x12345678)
    host.ap_write(0, D.AP_TAR, 0x20000000)
    host.acc(IR_APACC, D.AP_DRW, True)
    ack, value = host.acc(IR_APACC, D.AP_DRW, True)  # result of the first read
    assert ack == D.ACK_OK_FAULT and value == 0xCAFEF00D
    assert host.acc(IR_DPACC, D.DP_RDBUFF, True)[1] == 0x12345678


def test_dap_transactions_advance_the_clock(host, board):
    before = (board.clock.now, board.stats["dap_transactions"])
    host.mem_read(0x20000000)
    scans = board.stats["dap_transactions"] - before[1]
    assert scans > 0
    assert board.clock.now - before[0] == pytest.approx(scans * 46 / 4e6)


def test_wait_ack_discards_the_transaction(host, board):
    host.ap_select(0, 0)
    host.wire.dp.wait_next = 1
    ack, _ = host.acc(IR_APACC, D.AP_TAR, False, 0x20000010)  # answered WAIT: not performed
    assert ack == D.ACK_WAIT
    assert host.acc(IR_DPACC, D.DP_RDBUFF, True)[0] == D.ACK_OK_FAULT
    assert host.ap_read(0, D.AP_TAR) != 0x20000010


# --- MEM-AP ---

def test_ap_layout_per_chip(host, board):
    if board.chip == "nrf52840":
        assert [host.ap_read(i, D.AP_IDR) for i in range(3)] == [0x24770011, 0x02880000, 0]
        assert host.ap_read(1, 0x0C) == 1  # APPROTECTSTATUS: not protected
    else:
        assert [host.ap_read(i, D.AP_IDR) for i in range(5)] == [
            0x84770001, 0x84770001, 0x12880000, 0x12880000, 0]
        assert host.ap_read(2, 0x0C) == 3  # APPROTECT.STATUS: unlocked
    assert host.ap_read(0, D.AP_BASE) == 0xE00FF003
    assert host.ap_read(0, D.AP_CFG) == 0


def test_tar_auto_increment_wraps_at_the_chips_block(host, board):
    wrap = 4096 if board.chip == "nrf52840" else 1024
    start = 0x20000000 + wrap - 8
    host.ap_write(0, D.AP_CSW, 0x23000012)  # word, increment single
    host.ap_write(0, D.AP_TAR, start)
    for value in (1, 2, 3):
        host.ap_write(0, D.AP_DRW, value)
    assert board.bus.read(start, 4) == 1 and board.bus.read(start + 4, 4) == 2
    assert board.bus.read(0x20000000, 4) == 3  # wrapped within the block
    assert host.ap_read(0, D.AP_TAR) == 0x20000004


def test_byte_and_halfword_lanes(host, board):
    board.bus.write(0x20000100, 4, 0x44332211)
    assert host.mem_read(0x20000102, csw=0x23000010) == 0x33 << 16  # byte lane 2
    assert host.mem_read(0x20000102, csw=0x23000011) == 0x4433 << 16  # halfword lane 1
    host.mem_write(0x20000101, 0xAB << 8, csw=0x23000010)
    assert board.bus.read(0x20000100, 4) == 0x4433AB11


def test_packed_transfers_are_not_supported(host):
    host.ap_write(0, D.AP_CSW, 0x23000020)
    assert host.ap_read(0, D.AP_CSW) & 0x30 == 0


def test_banked_data_registers(host, board):
    board.bus.write(0x20000208, 4, 0x5A5A5A5A)
    host.ap_write(0, D.AP_TAR, 0x20000200)
    assert host.ap_read(0, D.AP_BD0 + 8) == 0x5A5A5A5A
    host.ap_write(0, D.AP_BD0 + 4, 0x77)
    assert board.bus.read(0x20000204, 4) == 0x77
    assert host.ap_read(0, D.AP_TAR) == 0x20000200  # banked accesses do not increment


def test_bus_fault_is_sticky_and_blocks_ap_until_cleared(host, board):
    assert host.mem_read(0x30000000) == 0
    assert host.dp_read(D.DP_CTRL_STAT) & D.STICKYERR
    board.bus.write(0x20000000, 4, 0x11111111)
    host.ap_write(0, D.AP_TAR, 0x20000000)  # discarded while STICKYERR is set
    host.dp_write(D.DP_CTRL_STAT, D.CSYSPWRUPREQ | D.CDBGPWRUPREQ | D.STICKYERR)
    assert not host.dp_read(D.DP_CTRL_STAT) & D.STICKYERR
    assert host.mem_read(0x20000000) == 0x11111111


def test_ctrl_ap_reset_resets_the_board(host, board):
    ctrl = 1 if board.chip == "nrf52840" else 2
    host.ap_write(ctrl, 0x000, 1)
    host.ap_write(ctrl, 0x000, 0)
    assert board.resets == 1


def test_ctrl_ap_eraseall_is_busy_for_its_erase_time(board):
    now = [100.0]
    board.protection = ChipProtection(board.chip, clock=board.clock, wall=lambda: now[0])
    h = Host(DebugWire(board))
    h.reset()
    ctrl = 1 if board.chip == "nrf52840" else 2
    h.ap_write(ctrl, 0x004, 1)
    assert h.ap_read(ctrl, 0x008) == 1  # Busy
    now[0] += ERASEALL_S / 2
    assert h.ap_read(ctrl, 0x008) == 1
    now[0] += ERASEALL_S / 2 + 0.001
    assert h.ap_read(ctrl, 0x008) == 0  # Ready; the board's clock followed the erase
    assert board.clock.now >= ERASEALL_S


def test_network_ap_faults(board):
    if board.chip != "nrf5340":
        pytest.skip("nRF5340 only")
    h = Host(DebugWire(board))
    h.reset()
    h.ap_write(1, D.AP_TAR, 0x21000000)
    h.ap_read(1, D.AP_DRW)
    assert h.dp_read(D.DP_CTRL_STAT) & D.STICKYERR


# --- System Control Space ---

def test_cpu_ids_and_fpu_features(board):
    scs = board.scs
    m33 = board.chip == "nrf5340"
    assert scs.read(S.CPUID, 4) == (0x410FD214 if m33 else 0x410FC241)
    assert scs.read(0xE000EF40, 4) == 0x10110021 and scs.read(0xE000EF44, 4) == 0x11000011
    assert scs.read(S.FP_CTRL, 4) >> 28 == (1 if m33 else 0)
    if m33:
        assert scs.read(S.DAUTHSTATUS, 4) & 0x30 != 0
        assert scs.read(S.DSCSR, 4) & (1 << 16)
        assert scs.read(S.DWT_DEVARCH, 4) == 0x47701A02
    assert scs.read(0xE000EFFC, 4) == 0xB1  # SCS CIDR3


def test_dhcsr_needs_the_key_and_controls_the_core(board):
    scs, core = board.scs, board.core
    scs.write(S.DHCSR, 4, S.C_DEBUGEN | S.C_HALT)  # no key: ignored
    assert not core.halted
    scs.write(S.DHCSR, 4, S.DBGKEY << 16 | S.C_DEBUGEN | S.C_HALT)
    assert core.halted and core.dfsr & 1
    dhcsr = scs.read(S.DHCSR, 4)
    assert dhcsr & (S.S_HALT | S.S_REGRDY | S.C_HALT | S.C_DEBUGEN) == (
        S.S_HALT | S.S_REGRDY | S.C_HALT | S.C_DEBUGEN)
    scs.write(S.DFSR, 4, 1)
    assert core.dfsr == 0
    scs.write(S.DHCSR, 4, S.DBGKEY << 16 | S.C_DEBUGEN | S.C_STEP | S.C_MASKINTS)
    assert core.steps == 1 and core.halted
    scs.write(S.DHCSR, 4, S.DBGKEY << 16 | S.C_DEBUGEN)
    assert not core.halted
    assert scs.read(S.DHCSR, 4) & S.S_RETIRE_ST


def test_core_registers_through_dcrsr_dcrdr(board):
    scs, core = board.scs, board.core
    scs.write(S.DHCSR, 4, S.DBGKEY << 16 | S.C_DEBUGEN | S.C_HALT)
    scs.write(S.DCRDR, 4, 0x20001000)
    scs.write(S.DCRSR, 4, S.DCRSR_REGWNR | 13)
    assert core.regs[13] == 0x20001000
    core.regs[15] = 0x1234
    scs.write(S.DCRSR, 4, 15)
    assert scs.read(S.DHCSR, 4) & S.S_REGRDY
    assert scs.read(S.DCRDR, 4) == 0x1234


def test_reset_sets_s_reset_st_and_vector_catch_halts(board):
    scs, core = board.scs, board.core
    scs.read(S.DHCSR, 4)  # clears the power-on S_RESET_ST
    scs.write(S.DEMCR, 4, S.TRCENA | S.VC_CORERESET)
    assert core.vector_catch
    scs.write(S.AIRCR, 4, 0x05FA0004)
    assert board.resets == 1 and core.halted and core.dfsr & 8
    assert scs.read(S.DHCSR, 4) & S.S_RESET_ST
    assert not scs.read(S.DHCSR, 4) & S.S_RESET_ST
    scs.write(S.AIRCR, 4, 0x00000004)  # wrong key: ignored
    assert board.resets == 1
    assert scs.read(S.AIRCR, 4) >> 16 == 0xFA05


def test_fpb_comparators_become_core_breakpoints(board):
    scs, core = board.scs, board.core
    if board.chip == "nrf5340":
        scs.write(S.FP_COMP0, 4, 0x20000101)  # FPBv2: BPADDR | BE
        scs.write(S.FP_COMP0 + 4, 4, 0x00000400 | 1)
        expected = {0x20000100, 0x400}
    else:
        scs.write(S.FP_COMP0, 4, 0x40000000 | 0x100 | 1)  # lower halfword
        scs.write(S.FP_COMP0 + 4, 4, 0x80000000 | 0x200 | 1)  # upper halfword
        expected = {0x100, 0x202}
    assert core.breakpoints == set()  # FPB disabled
    scs.write(S.FP_CTRL, 4, 3)
    assert core.breakpoints == expected
    scs.write(S.FP_CTRL, 4, 1)  # without KEY: ignored
    assert core.breakpoints == expected
    scs.write(S.FP_CTRL, 4, 2)
    assert core.breakpoints == set()


def test_dwt_cycle_counter_follows_the_board_clock(board):
    scs = board.scs
    scs.write(S.DWT_CTRL, 4, 1)
    board.clock.advance(1.0)
    assert scs.read(S.DWT_CYCCNT, 4) == 0  # TRCENA off: not counting
    scs.write(S.DEMCR, 4, S.TRCENA)
    board.clock.advance(0.001)
    assert scs.read(S.DWT_CYCCNT, 4) == pytest.approx(64_000, abs=1)
    scs.write(S.DWT_CYCCNT, 4, 0xFFFFFF00)
    board.clock.advance(0.000005)  # 320 cycles: wraps
    assert scs.read(S.DWT_CYCCNT, 4) == pytest.approx(0x40, abs=1)
    assert scs.read(S.DWT_CTRL, 4) >> 28 == 4


def test_nvic_range_is_delegated_and_unmodelled_registers_fault(board):
    board.scs.write(0xE000E100, 4, 0x5)
    assert board.nvic.regs[0xE000E100] == 0x5
    board.scs.write(0xE000E400, 1, 0xE0)
    assert board.nvic.regs[0xE000E400] == 0xE0
    with pytest.raises(BusFault):
        board.scs.read(0xE0040000, 4)  # TPIU: not present
    with pytest.raises(BusFault):
        board.scs.write(0xE000EE00, 4, 0)


def test_rom_table_lists_scs_dwt_fpb_itm(board):
    entries = [board.scs.read(0xE00FF000 + 4 * i, 4) for i in range(7)]
    assert entries[:4] == [0xFFF0F003, 0xFFF02003, 0xFFF03003, 0xFFF01003]
    assert entries[-1] == 0
    assert board.scs.read(0xE00FFFF4, 4) == 0x10  # CIDR1: class 1, ROM table


# --- wire ---

def _idcode_over_socket(family_addr, family) -> int:
    with socket.socket(family, socket.SOCK_STREAM) as sock:
        sock.settimeout(10)  # a board that stops answering fails here, not at pytest's limit
        sock.connect(family_addr)
        return read_idcode(sock)


@pytest.mark.parametrize("kind", ["tcp", "unix"])
def test_server_answers_over_tcp_and_unix_socket(kind, tmp_path):
    board = FakeBoard("nrf5340")
    server = RemoteBitbangServer(
        DebugWire(board), port=0, socket_path=tmp_path / "b.sock" if kind == "unix" else None)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_s": 0.02}, daemon=True)
    thread.start()
    try:
        if kind == "unix":
            assert server.endpoint == f"unix:{tmp_path / 'b.sock'}"
            idcode = _idcode_over_socket(str(tmp_path / "b.sock"), socket.AF_UNIX)
        else:
            host, port = server.endpoint.split(":")
            assert host == "127.0.0.1" and int(port) > 0
            idcode = _idcode_over_socket(("127.0.0.1", int(port)), socket.AF_INET)
        assert idcode == 0x6BA02477
    finally:
        server.stop()
        thread.join(5)
        server.close()
    assert not thread.is_alive()
    assert not (tmp_path / "b.sock").exists()


def test_running_core_is_serviced_while_the_wire_is_idle(tmp_path):
    board = FakeBoard("nrf52840")
    board.core.halted = False
    server = RemoteBitbangServer(DebugWire(board), socket_path=tmp_path / "s.sock")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_s": 0.02}, daemon=True)
    thread.start()
    try:
        threading.Event().wait(0.1)
    finally:
        server.stop()
        thread.join(5)
        server.close()
    assert board.serviced > 0


def test_systick_counts_down_at_the_core_clock(board):
    scs = board.scs
    scs.write(S.SYST_RVR, 4, 999)
    scs.write(S.SYST_CVR, 4, 0)  # clears the counter
    scs.write(S.SYST_CSR, 4, 0b101)  # enable, processor clock, no interrupt
    scs.write(S.SYST_CVR, 4, 0)
    board.clock.advance(100 / board.core_hz)
    assert scs.read(S.SYST_CVR, 4) == 999 - 99
    assert not scs.read(S.SYST_CSR, 4) & (1 << 16)
    board.clock.advance(1000 / board.core_hz)
    assert scs.read(S.SYST_CSR, 4) & (1 << 16)  # wrapped: COUNTFLAG, cleared by the read
    assert not scs.read(S.SYST_CSR, 4) & (1 << 16)


def test_ctrl_ap_of_the_nrf5340_keeps_its_disable_and_mailbox_registers(board):
    if board.chip != "nrf5340":
        pytest.skip("nRF5340 only")
    h = Host(DebugWire(board))
    h.reset()
    h.ap_write(3, 0x020, 0xDEADBEEF)  # MAILBOX.TXDATA
    h.ap_write(3, 0x010, 0x50FA50FA)  # APPROTECT.DISABLE
    assert h.ap_read(3, 0x020) == 0xDEADBEEF
    assert h.ap_read(3, 0x010) == 0x50FA50FA
    assert h.ap_read(3, 0x018) == 1  # ERASEPROTECT.STATUS: 1 = ERASEPROTECT disabled


def test_reset_chars_reset_the_tap_and_the_system(board):
    wire = DebugWire(board)
    decoder = wire.decoder()
    h = Host(wire)
    h.decoder = decoder
    h.reset()
    h.ir(IR_BYPASS)
    decoder.feed(b"t")  # TRST: Test-Logic-Reset selects IDCODE again
    decoder.feed(b"r")
    h._clock(0)
    assert h.dr(0, 32) == D.DP_IDCODES[board.chip]
    decoder.feed(b"s")  # SRST asserted: system reset (once per assertion)
    decoder.feed(b"s")
    decoder.feed(b"rBbQ")
    assert board.resets == 1 and decoder.quit


# --- posted writes (the server answers a scan before it applies the write ahead of it) ---

def _dr_chunk(value: int, *, from_exit1: bool, idle: int = 0) -> bytes:
    """One 35-bit DAP scan as OpenOCD 0.12's bitbang driver sends it: from Exit1-DR through
    Update-DR (and `idle` Run-Test/Idle clocks), or from Run-Test/Idle, to Exit1-DR."""
    head = b"26040" + (b"04" * idle + b"0" if idle else b"") if from_exit1 else b""
    bits = bytearray()
    for i in range(35):
        level = (int(i == 34) << 1) | (value >> i & 1)
        bits += b"%dR%d" % (level, 4 | level)
    return head + b"2604040" + bytes(bits)


def _scan_sequence(board, post_writes: bool, requests, *, wait_before: int | None = None):
    """Select AP0 bank 0, then feed `requests` ((addr, rnw, data) APACC scans) one chunk each,
    as the server does (reply, then finish); returns the replies and the posts made."""
    wire = DebugWire(board)
    host = Host(wire)
    host.reset()
    host.dp_write(D.DP_CTRL_STAT, D.CSYSPWRUPREQ | D.CDBGPWRUPREQ)
    host.ap_select(0, 0)
    host.ir(IR_APACC)
    decoder = type(host.decoder)(wire.tap, wire.reset_pins, post_writes=post_writes)
    replies, posts = [], 0
    for i, (addr, rnw, data) in enumerate(requests + [(D.AP_CSW, True, 0)]):
        if i == wait_before:
            wire.dp.wait_next = 1
        replies.append(decoder.feed(_dr_chunk(data << 3 | (addr >> 2) << 1 | int(rnw),
                                              from_exit1=i > 0, idle=2 * (i % 2))))
        posts += decoder._posted is not None
        decoder.finish()
    return replies, posts


_WRITES_THEN_READS = [(D.AP_CSW, False, 0x23000012), (D.AP_TAR, False, 0x20000100),
                      (D.AP_DRW, False, 0x11223344), (D.AP_DRW, False, 0x55667788),
                      (D.AP_TAR, False, 0x20000100), (D.AP_DRW, True, 0),
                      (D.AP_DRW, True, 0), (D.AP_TAR, True, 0)]


@pytest.mark.parametrize("wait_before", [None, 3])
def test_posted_writes_answer_and_act_as_the_edge_order(wait_before):
    boards = [FakeBoard("nrf52840", ram_size=64 * 1024) for _ in range(2)]
    (plain, _), (posted, posts) = (
        _scan_sequence(b, post, _WRITES_THEN_READS, wait_before=wait_before)
        for b, post in zip(boards, (False, True)))
    assert posted == plain  # every reply, WAIT included, as without posting
    assert posts == (5 if wait_before is None else 4)  # a WAIT armed: applied in order
    for board in boards:
        assert board.bus.read(0x20000100, 4) == 0x11223344
    assert boards[0].bus.read(0x20000104, 4) == boards[1].bus.read(0x20000104, 4)
    values = [int(r[::-1], 2) >> 3 for r in plain]
    if wait_before is None:
        assert values[6:8] == [0x11223344, 0x55667788]  # the reads see the posted writes


def test_posted_write_waits_for_finish():
    board = FakeBoard("nrf52840", ram_size=64 * 1024)
    wire = DebugWire(board)
    host = Host(wire)
    host.reset()
    host.dp_write(D.DP_CTRL_STAT, D.CSYSPWRUPREQ | D.CDBGPWRUPREQ)
    host.ap_write(0, D.AP_CSW, 0x23000012)
    host.ap_write(0, D.AP_TAR, 0x20000200)  # the DRW write below lands there
    host.ir(IR_APACC)
    decoder = type(host.decoder)(wire.tap, wire.reset_pins, post_writes=True)
    decoder.feed(_dr_chunk(0xA5A5A5A5 << 3 | (D.AP_DRW >> 2) << 1, from_exit1=False))
    reply = decoder.feed(_dr_chunk(D.DP_RDBUFF >> 2 << 1 | 1, from_exit1=True))
    assert len(reply) == 35 and int(reply[::-1], 2) & 7 == D.ACK_OK_FAULT
    assert board.bus.read(0x20000200, 4) == 0  # answered, not yet applied
    decoder.finish()
    assert board.bus.read(0x20000200, 4) == 0xA5A5A5A5
