"""The honest clock: what each probe profile charges per DAP transaction, USB batch, halt
detection and GDB packet (qspi_gdb.sim.probe, .nethop, .pacing)."""

from __future__ import annotations

import contextlib
import socket
import threading
import time

import pytest

from qspi_gdb.sim.clock import Clock
from qspi_gdb.sim.nethop import GdbHopProxy, NetworkHop, _Framer, request_kind, x_payload
from qspi_gdb.inputs.probes import CMSIS_DAP_HS, JLINK_OB, POLL_INTERVAL_S, WIRE_ONLY
from qspi_gdb.sim.probe import ProbeClock, get_profile

DP, AP = False, True
CTRL_STAT, RDBUFF, DRW = 0x4, 0xC, 0xC


def probe(profile):
    clock = Clock()
    stats: dict = {}
    return ProbeClock(profile, clock.advance, lambda: clock.now, stats), clock, stats


def end_run(p):
    """OpenOCD's end of every dap_run over JTAG: CTRL/STAT read + RDBUFF read."""
    p.transaction(DP, 0, True, CTRL_STAT)
    p.transaction(DP, 0, True, RDBUFF)


def test_cmsis_dap_charges_46_clocks_and_one_round_trip_per_101_transfers():
    p, clock, stats = probe(CMSIS_DAP_HS)
    for _ in range(202):  # two full packets of AP writes
        p.transaction(AP, 0, False, DRW)
    end_run(p)
    # 202 x 46 clocks + the firmware's check read after each packet ending in a write
    assert stats["probe_clocks"] == 202 * 46 + 2 * 46
    assert stats["usb_round_trips"] == 2
    assert clock.now == pytest.approx((204 * 46) / 4e6 + 2 * 0.2e-3)
    p.transaction(AP, 0, True, DRW)
    end_run(p)  # a run of one read: one more packet, no check read
    assert stats["usb_round_trips"] == 3 and stats["probe_clocks"] == 205 * 46
    end_run(p)  # an empty run sends nothing
    assert stats["usb_round_trips"] == 3


def test_jlink_idle_clocks_and_batches_of_256():
    p, clock, stats = probe(JLINK_OB)
    for _ in range(256):
        p.transaction(AP, 0, False, DRW)  # core MEM-AP: 46 + 8 idle clocks
    p.transaction(AP, 1, True, 0x0C)  # CTRL-AP: 46 + 255
    p.transaction(DP, 0, False, 0x8)  # DP write: 46
    end_run(p)
    assert stats["probe_clocks"] == 256 * 54 + 301 + 46 + 2 * 8
    assert stats["usb_round_trips"] == 2
    bits_full = 256 * 54 + 8
    nbytes = -(-bits_full // 8)
    first = 1e-3 + (4 + 2 * nbytes + nbytes + 1) / 1e6
    assert clock.now > first + stats["probe_clocks"] / 4e6


def test_a_lone_ctrl_stat_read_is_a_real_transaction():
    p, _, stats = probe(WIRE_ONLY)
    p.transaction(DP, 0, True, CTRL_STAT)
    p.transaction(AP, 0, True, DRW)
    assert stats["probe_clocks"] == 2 * 46


def test_a_self_made_halt_is_noticed_on_the_100ms_poll_grid():
    p, clock, stats = probe(CMSIS_DAP_HS)
    clock.advance(1.0)
    p.dhcsr_read(core_halted=False)  # OpenOCD's poll while the core runs, at t = 1.0
    clock.advance(0.030)
    p.core_halted("bkpt")  # the loader's bkpt at 1.03
    clock.advance(0.002)
    p.dhcsr_read(core_halted=True)  # the next poll notices it: on the grid at 1.1
    assert clock.now == pytest.approx(1.1)
    assert stats["noticed_halts"] == 1 and stats["halt_wait_s"] == pytest.approx(0.068)
    # the host reacts at once and the target halts itself 5 ms later: almost a full period
    clock.advance(0.005)
    p.core_halted("bkpt")
    p.dhcsr_read(core_halted=True)
    assert clock.now == pytest.approx(1.2) and stats["noticed_halts"] == 2


def test_a_requested_halt_costs_no_poll_wait():
    p, clock, stats = probe(CMSIS_DAP_HS)
    p.dhcsr_read(core_halted=False)
    clock.advance(0.01)
    p.core_halted("bkpt")  # ... just before the host's interrupt arrives
    p.halt_requested()
    p.core_halted("halted")
    p.dhcsr_read(core_halted=True)
    assert clock.now == pytest.approx(0.01) and stats["noticed_halts"] == 0
    p.core_halted("halted")  # a step or C_HALT: never a poll wait
    p.dhcsr_read(core_halted=True)
    assert stats["noticed_halts"] == 0


def test_wire_only_profile_has_no_halt_wait():
    p, clock, stats = probe(WIRE_ONLY)
    p.core_halted("bkpt")
    clock.advance(0.001)
    p.dhcsr_read(core_halted=True)
    assert clock.now == pytest.approx(0.001) and stats["noticed_halts"] == 0
    assert POLL_INTERVAL_S == 0.1
    with pytest.raises(ValueError, match="known"):
        get_profile("nope")


def hop(rtt=0.010, bps=100e6):
    clock = Clock()
    stats: dict = {}
    return NetworkHop(rtt, bps, clock.advance, lambda: clock.now, stats), clock, stats


def test_network_hop_charges_a_round_trip_per_exchange():
    h, clock, stats = hop(bps=1e12)
    h.request(20, "plain")  # first packet: half a round trip to reach the server
    assert clock.now == pytest.approx(0.005)
    clock.advance(0.001)  # the server's own work
    h.reply(30)
    h.request(20, "plain")  # GDB sends the next one when the reply arrived
    assert clock.now == pytest.approx(0.016)
    assert stats["network_exchanges"] == 2


def test_network_hop_overlaps_fast_writes_with_the_probe():
    h, clock, stats = hop(bps=1e12)
    h.request(16000, "fast", 16000)  # OpenOCD answers OK at once, then writes for 50 ms
    start = clock.now
    h.reply(6)  # that early OK: already accounted
    # GDB's next X reaches the proxy before the server began writing (wall time of the test
    # bed): it is read, and charged, once the 16000 bytes are written
    h.request(16000, "fast", 16000)
    assert clock.now == start and stats["network_exchanges"] == 2
    clock.advance(0.050)
    stats["bytes_written"] += 15996
    h.poll()  # not yet all written: still held
    stats["bytes_written"] += 4
    h.poll()  # sent 10 ms after the write began: waits for nothing
    assert clock.now == pytest.approx(start + 0.050)
    h.request(100, "interrupt")  # the proxy holds interrupts in wall time
    assert clock.now == pytest.approx(start + 0.050)


def test_network_hop_charges_what_a_short_write_does_not_cover():
    h, clock, stats = hop(bps=1e12)
    h.request(200, "fast", 120)  # the command ring: written in 1 ms
    start = clock.now
    h.request(11, "plain")  # vCont;c, sent when the early OK reached GDB
    clock.advance(0.001)
    stats["bytes_written"] += 120
    h.poll()  # read 1 ms after the X: the rest of the round trip is network time
    assert clock.now == pytest.approx(start + 0.010)


def test_network_hop_a_reply_releases_a_held_request():
    h, clock, stats = hop(bps=1e12)
    h.request(200, "fast", 120)
    start = clock.now
    h.reply(6)  # the early OK: accounted
    h.request(16, "plain")  # the write failed part way: bytes_written never gets there
    assert clock.now == start
    h.reply(30)  # the held request's answer: it was read, and is charged, now
    assert clock.now == pytest.approx(start + 0.010)


def test_network_hop_charges_bandwidth():
    h, clock, _ = hop(rtt=0.0, bps=8e6)  # 1 MB/s
    h.request(1000, "plain")
    assert clock.now == pytest.approx(0.001)


def test_framer_and_request_kinds():
    f = _Framer()
    units = f.feed(b"+$g#67\x03$X20000000,40:" + bytes(64) + b"#00$m0,4")
    assert [k for _, k in units] == ["ack", "packet", "interrupt", "packet"]
    assert f.feed(b"#fd") == [(b"$m0,4#fd", "packet")]
    assert request_kind(b"$X20000000,40:....#00") == "fast"
    assert request_kind(b"$X20000000,4:....#00") == "plain"
    assert request_kind(b"$m0,4#fd") == "plain"
    assert x_payload(b"$X20000000,40:....#00") == 0x40 and x_payload(b"$g#67") == 0


def test_proxy_reports_each_packet_before_forwarding(tmp_path):
    """GDB -> proxy -> server: the board hears of every packet first and answers "ok"."""
    hop_path = tmp_path / "hop.sock"
    board_side = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    board_side.bind(str(hop_path))
    board_side.listen(1)
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(1)
    heard: list[str] = []

    def board():
        conn, _ = board_side.accept()
        f = conn.makefile("rb")
        for line in f:
            heard.append(line.decode().strip())
            conn.sendall(b"ok\n")

    def gdb_server():
        conn, _ = server.accept()
        data = b""
        while not data.endswith(b"#67"):
            data += conn.recv(100)
        conn.sendall(b"$1234#ca")

    threads = [threading.Thread(target=t, daemon=True) for t in (board, gdb_server)]
    for t in threads:
        t.start()
    upstream = f"127.0.0.1:{server.getsockname()[1]}"
    with GdbHopProxy(upstream, hop_path, rtt_s=0.0) as proxy:
        host, port = proxy.address.split(":")
        gdb = socket.create_connection((host, int(port)))
        gdb.sendall(b"$g#67")
        reply = b""
        deadline = time.monotonic() + 5
        while not reply.endswith(b"#ca") and time.monotonic() < deadline:
            reply += gdb.recv(100)
        gdb.close()
    assert reply == b"$1234#ca"
    assert heard == ["req 5 plain", "rsp 8"]


@contextlib.contextmanager
def _sleeping_loop_board():
    """A board whose halted core is set to run `wfi; b .-2` (asleep, nothing pending)."""
    from qspi_gdb.sim.board import Board

    with Board("sim-nrf52840dk") as board:
        core = board.core
        core.halt("halted")
        board.write_memory(0x20000000, bytes.fromhex("30bffde7"))  # wfi; b .-2
        core.write_core_reg(15, 0x20000000)
        core.write_core_reg(16, 1 << 24)
        yield board


def _run_paced(board, pacer, wall_s: float) -> tuple[float, float]:
    """Let the pacer run the core for wall_s of host time; (modelled, wall) seconds passed."""
    start_model, start_wall = board.clock.now, time.perf_counter()
    while time.perf_counter() - start_wall < wall_s:
        pause = pacer.catch_up()
        time.sleep(pause or 0.001)
    pacer.catch_up()
    return board.clock.now - start_model, time.perf_counter() - start_wall


def test_pacing_keeps_a_running_core_on_wall_time():
    """A sleeping core (WFI, nothing pending) lets time pass at wall speed, never faster."""
    from qspi_gdb.sim.pacing import Pacer

    with _sleeping_loop_board() as board:
        core = board.core
        core.resume()
        pacer = Pacer(board)
        modelled, wall = _run_paced(board, pacer, 0.05)
        assert core.sleeping and 0.5 * wall <= modelled <= wall + 0.001
        core.halt("halted")
        before = board.clock.now
        assert pacer.catch_up() is None and board.clock.now == before  # halted: no pacing


def test_pacing_does_not_let_the_core_spend_the_test_beds_upkeep():
    """Host time the core model spends on stale translations is not time the target runs."""
    from qspi_gdb.sim.pacing import Pacer

    with _sleeping_loop_board() as board:
        core = board.core
        slow_hints = core._hook_hints

        def slow(lo, hi):  # stands for the scan of a large buffer the debugger wrote
            time.sleep(0.03)
            slow_hints(lo, hi)

        core._hook_hints = slow
        pacer = Pacer(board)
        pacer.catch_up()  # halted: anchors nothing
        core.resume()
        upkeep0 = core.upkeep_s
        modelled, wall = _run_paced(board, pacer, 0.06)
        upkeep = core.upkeep_s - upkeep0
        assert upkeep >= 0.03
        assert core.sleeping and modelled <= wall - upkeep + 0.002


def test_pacing_at_a_time_rate_runs_the_clock_that_much_faster():
    """--time-rate 8: a sleeping core's clock moves 8 modelled seconds per wall second."""
    from qspi_gdb.sim.pacing import Pacer

    with _sleeping_loop_board() as board:
        board.core.resume()
        modelled, wall = _run_paced(board, Pacer(board, rate=8.0), 0.05)
        assert 4 * wall <= modelled <= 8 * wall + 0.001
        with pytest.raises(ValueError):
            Pacer(board, rate=0)
