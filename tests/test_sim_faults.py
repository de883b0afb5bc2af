"""Fault injection in the virtual board (`qspi_gdb.sim.faults`), model by model, without
OpenOCD: every kind does what its datasheet says such a fault does, at the point WHEN names,
and the same seed gives the same fault."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import threading

import pytest
from fake_board import FakeBoard
from test_jtag_dap import Host

from qspi_gdb.sim import dap as D
from qspi_gdb.sim.board import Board
from qspi_gdb.sim.faults import KINDS, FaultPlan, FaultSpecError, parse_fault
from qspi_gdb.sim.jtag import IR_DPACC
from qspi_gdb.sim.nor import NorFlash
from qspi_gdb.sim.parts import PARTS
from qspi_gdb.sim.wire import DebugWire, RemoteBitbangServer

PAGE = bytes(range(256))
FAIL_REGISTER = {"mx25r6435f": (0x2B, 0x20, 0x40), "is25wp256": (0x81, 0x04, 0x08),
                 "mt25qu256a": (0x70, 0x10, 0x20)}  # read opcode, program bit, erase bit


def with_faults(part: str, *specs: str, seed: int = 0) -> NorFlash:
    flash = NorFlash.from_part(part)
    flash.faults = FaultPlan(list(specs), seed=seed)
    return flash


def settle(f: NorFlash, seconds: float | None = None) -> None:
    f.advance(seconds if seconds is not None else f.busy_remaining + 1e-9)


def program(f: NorFlash, addr: int, data: bytes) -> None:
    f.transfer(b"\x06")
    f.transfer(b"\x02" + addr.to_bytes(3, "big") + data)
    settle(f)


def erase_4k(f: NorFlash, addr: int) -> None:
    f.transfer(b"\x06")
    f.transfer(b"\x20" + addr.to_bytes(3, "big"))
    settle(f)


def fail_flags(f: NorFlash) -> int:
    return f.transfer(bytes([FAIL_REGISTER[f.part.name.lower()][0]]), 1)[0]


@pytest.fixture(params=sorted(PARTS))
def part(request) -> str:
    return request.param


# --- the --fault text ----------------------------------------------------------------------

def test_fault_text_parses_and_the_seed_decides_a_range():
    fault = parse_fault("program-fail:program=3", 0, seed=1)
    assert (fault.kind, fault.unit, fault.at, fault.arg) == ("program-fail", "program", 3, 1)
    assert parse_fault("dap-wait:dap=10:50", 0, seed=1).arg == 50
    drawn = [parse_fault("read-flip:read=10-1000", 0, seed=s).at for s in range(20)]
    assert all(10 <= at <= 1000 for at in drawn) and len(set(drawn)) > 1
    assert drawn == [parse_fault("read-flip:read=10-1000", 0, seed=s).at for s in range(20)]


@pytest.mark.parametrize("text, words", [
    ("program-fail", "expected KIND:UNIT=N"),
    ("melt:program=1", "unknown kind 'melt'"),
    ("program-fail:pages=1", "WHEN is UNIT=N"),
    ("program-fail:program=x", "not a count"),
    ("program-fail:program=0", "counts start at 1"),
    ("program-fail:program=5-2", "counts start at 1"),
    ("read-flip:read=1:0", "ARG (bits) must be a count"),
])
def test_bad_fault_text_is_refused_naming_the_part(text, words):
    with pytest.raises(FaultSpecError, match=words.replace("(", r"\(").replace(")", r"\)")):
        parse_fault(text, 0, seed=0)


def test_every_kind_has_a_description_and_a_default():
    for kind, (what, default, unit) in KINDS.items():
        assert what and default >= 1 and unit, kind


# --- NOR chip ------------------------------------------------------------------------------

def test_program_fail_sets_the_parts_fail_bit_and_bits_only_partly_take(part):
    f = with_faults(part, "program-fail:program=2", seed=3)
    program(f, 0x1000, PAGE)
    assert fail_flags(f) & FAIL_REGISTER[part][1] == 0
    program(f, 0x1100, PAGE)  # the second program command fails
    assert fail_flags(f) & FAIL_REGISTER[part][1]
    got = f.peek(0x1100, 256)
    assert got != PAGE
    assert all(g & p == p for g, p in zip(got, PAGE))  # only 1->0 bits that did not happen
    assert f.faults.faults[0].fired["program"] == 2


def test_macronix_p_fail_clears_on_the_next_good_program_others_need_a_clear_command(part):
    f = with_faults(part, "program-fail:program=1")
    program(f, 0x2000, PAGE)
    program(f, 0x2100, PAGE)
    flags = fail_flags(f) & FAIL_REGISTER[part][1]
    if part == "mx25r6435f":
        assert not flags  # "cleared ... if the next program operation succeeds"
    else:
        assert flags
        f.transfer(b"\x50" if part == "mt25qu256a" else b"\x82")  # CLFSR / CLERP
        assert not fail_flags(f) & FAIL_REGISTER[part][1]


def test_erase_fail_leaves_the_sector_partly_erased(part):
    f = with_faults(part, "erase-fail:erase=1", seed=5)
    program(f, 0x3000, bytes(256))
    erase_4k(f, 0x3000)
    assert fail_flags(f) & FAIL_REGISTER[part][2]
    sector = f.peek(0x3000, 4096)
    assert sector[:256] not in (bytes(256), b"\xff" * 256)  # a mix of erased and not
    assert sector[256:] == b"\xff" * (4096 - 256)  # the bytes that were erased already


def test_weak_cells_keep_n_bits_at_1_without_a_fail_bit(part):
    f = with_faults(part, "program-flip:byte=1-256:3", seed=11)
    program(f, 0x4000, bytes(256))
    got = f.peek(0x4000, 256)
    assert sum(bin(b).count("1") for b in got) == 3
    assert fail_flags(f) & FAIL_REGISTER[part][1] == 0


def test_read_flips_bits_of_one_read_and_the_array_is_intact(part):
    f = with_faults(part, "read-flip:read=2:2", seed=2)
    program(f, 0x5000, PAGE)
    first = f.frame(0x03, address=(0x5000).to_bytes(3, "big"), rx_len=256)
    second = f.frame(0x03, address=(0x5000).to_bytes(3, "big"), rx_len=256)
    third = f.frame(0x03, address=(0x5000).to_bytes(3, "big"), rx_len=256)
    assert first == third == PAGE == f.peek(0x5000, 256)
    assert sum(bin(a ^ b).count("1") for a, b in zip(second, PAGE)) == 2


def test_wip_stuck_keeps_the_chip_busy_until_power_is_cycled(part):
    f = with_faults(part, "wip-stuck:erase=1")
    f.transfer(b"\x06")
    f.transfer(b"\x20" + (0x6000).to_bytes(3, "big"))
    settle(f, 1000.0)
    assert f.status & 1 and f.time_to_ready == 0.0  # never ready by itself
    assert f.transfer(b"\x9f", 3) == b"\xff\xff\xff"  # a busy chip ignores RDID
    f.power_on_reset()
    assert not f.status & 1 and f.transfer(b"\x9f", 3) == f.jedec_id


def test_power_loss_mid_page_leaves_old_new_and_undefined_bits(part):
    f = with_faults(part, "power-loss:byte=200-300", seed=7)
    f.transfer(b"\x06")
    f.transfer(b"\x02" + (0x7000).to_bytes(3, "big") + PAGE)  # 256 bytes: crosses 200..300
    f.faults.take("power-loss")  # the board's handler would do this: cut the program short
    f.power_loss(f.faults.faults[0])
    assert not f.status & 3  # restarted: not busy, WEL clear
    got = f.peek(0x7000, 256)
    assert got not in (PAGE, b"\xff" * 256)
    assert all(g & p == p for g, p in zip(got, PAGE))
    settle(f, 1.0)
    assert f.peek(0x7000, 256) == got  # nothing finishes after the power came back


def test_the_same_seed_gives_the_same_damage(part):
    results = []
    for _ in range(2):
        f = with_faults(part, "program-fail:byte=1000-5000", seed=42)
        for page in range(32):
            program(f, page * 256, PAGE)
        results.append(f.peek(0, 32 * 256))
    assert results[0] == results[1]


# --- debug port and wire -------------------------------------------------------------------

@pytest.fixture
def faulty_host():
    def make(*specs: str) -> tuple[Host, FakeBoard]:
        board = FakeBoard("nrf52840", ram_size=64 * 1024)
        board.faults = FaultPlan(list(specs))
        host = Host(DebugWire(board))
        host.reset()
        host.dp_write(D.DP_CTRL_STAT, D.CSYSPWRUPREQ | D.CDBGPWRUPREQ)
        return host, board
    return make


def test_dap_wait_storm_answers_wait_then_recovers(faulty_host):
    host, board = faulty_host("dap-wait:dap=5:4")
    host.ap_select(0, 0)
    for _ in range(3):
        host.acc(IR_DPACC, D.DP_RDBUFF, True)
    acks = [host.acc(IR_DPACC, D.DP_RDBUFF, True)[0] for _ in range(6)]
    assert acks.count(D.ACK_WAIT) == 4 and acks[-1] == D.ACK_OK_FAULT


def test_dap_fault_sets_stickyerr_and_the_access_is_not_done(faulty_host):
    host, board = faulty_host("dap-fault:dap=1-1:1")
    host.mem_write(0x20000000, 0x12345678)  # the first AP write faults; the rest are blocked
    assert host.dp_read(D.DP_CTRL_STAT) & D.STICKYERR
    host.dp_write(D.DP_CTRL_STAT, D.STICKYERR | D.CSYSPWRUPREQ | D.CDBGPWRUPREQ)
    host.mem_write(0x20000000, 0x12345678)
    assert host.mem_read(0x20000000) == 0x12345678
    assert not host.dp_read(D.DP_CTRL_STAT) & D.STICKYERR


class _Recorder:
    """A decoder stand-in: keeps the remote_bitbang chars a Host would send."""

    def __init__(self) -> None:
        self.chars = bytearray()

    def feed(self, data: bytes) -> bytes:
        self.chars += data
        return b"0" * data.count(b"R")


def recorded_scans() -> bytes:
    """TAP reset, then three DPACC reads, as remote_bitbang chars."""
    host = Host.__new__(Host)
    host.decoder = _Recorder()
    host.reset()
    for _ in range(3):
        host.acc(IR_DPACC, D.DP_RDBUFF, True)
    return bytes(host.decoder.chars)


def test_wire_drop_closes_the_connection():
    board = FakeBoard("nrf52840", ram_size=64 * 1024)
    board.faults = FaultPlan(["wire-drop:dap=2"])
    server = RemoteBitbangServer(DebugWire(board), port=0)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_s": 0.05}, daemon=True)
    thread.start()
    try:
        with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
            sock.settimeout(5)
            sock.sendall(recorded_scans() + b"R")
            data = b""
            while True:
                chunk = sock.recv(64)
                if not chunk:
                    break
                data += chunk
        assert data == b""  # hung up before answering
        assert board.faults.faults[0].fired["dap"] == 2
    finally:
        server.stop()
        thread.join(5)
        server.close()


# --- the board ----------------------------------------------------------------------------

def test_core_reset_fault_resets_the_core_mid_run():
    with Board("sim-nrf52840dk", faults=FaultPlan(["core-reset:cmd=1"])) as board:
        board.core.write_core_reg(15, 0x20000100)
        board.flash.transfer(b"\x05", 1)  # one flash command frame
        board.clock.advance(1e-6)  # the reset is the next clock event (after the frame)
        assert board.core.read_core_reg(15) != 0x20000100  # back at the reset vector
        assert board.faults.faults[0].effects


def test_power_loss_on_the_board_scrambles_ram_and_resets():
    with Board("sim-nrf52840dk", faults=FaultPlan(["power-loss:program=1"], seed=9)) as board:
        board.write_memory(0x20000000, bytes(64))
        board.flash.transfer(b"\x06")
        board.flash.transfer(b"\x02\x00\x00\x00" + bytes(256))
        board.clock.advance(1e-6)
        assert board.read_memory(0x20000000, 64) != bytes(64)
        assert not board.flash.status & 1
        assert board.flash.peek(0, 256) not in (bytes(256), b"\xff" * 256)


def test_sim_command_line_takes_faults_and_writes_the_log(tmp_path):
    log = tmp_path / "faults.json"
    bad = subprocess.run([sys.executable, "-m", "qspi_gdb.sim", "--board", "sim-nrf52840dk",
                          "--fault", "melt:program=1"], capture_output=True, text=True,
                         timeout=60)
    assert bad.returncode == 2 and "unknown kind 'melt'" in bad.stderr
    assert "Traceback" not in bad.stderr
    proc = subprocess.Popen([sys.executable, "-m", "qspi_gdb.sim", "--board", "sim-nrf52840dk",
                             "--no-register", "--fault", "program-fail:program=2",
                             "--fault-seed", "4", "--fault-log", str(log)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().startswith("remote_bitbang 127.0.0.1:")
        report = json.loads(log.read_text())
        assert report["seed"] == 4 and report["faults"][0]["fired"] is None
    finally:
        proc.terminate()
        proc.wait(30)
    assert proc.returncode == 0
