"""Pure parts of the loader client: typed errors, the erase/program schedule, what the host
expects of the target's time."""

from __future__ import annotations

import pytest

from qspi_gdb.errors import EXIT_TARGET, EXIT_USAGE
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.pipeline import Op, schedule
from qspi_gdb.loader.status import (
    STATUS_MESSAGES,
    FlashError,
    JedecMismatch,
    LoaderProtocolError,
    LoaderRefused,
    error_for,
)
from qspi_gdb.loader.timing import FlashTimes, LinkSpeed


def _erase(addr: int, length: int) -> Op:
    return Op(mb.Command(mb.OP_ERASE, addr=addr, len=length, arg=mb.ERASE_64K))


def _program(addr: int, length: int) -> Op:
    return Op(mb.Command(mb.OP_PROGRAM, addr=addr, len=length), b"\0" * length)


def test_status_codes_become_typed_errors():
    cmd = mb.Command(mb.OP_PROGRAM, addr=0x1E98000, len=16)
    assert isinstance(error_for(mb.ST_ADDR_24BIT, cmd), LoaderRefused)
    assert error_for(mb.ST_ADDR_24BIT, cmd).exit_code == EXIT_USAGE
    assert "0x01E98000" in str(error_for(mb.ST_ADDR_24BIT, cmd))
    assert isinstance(error_for(mb.ST_JEDEC_MISMATCH, cmd), JedecMismatch)
    assert isinstance(error_for(mb.ST_FLASH_BUSY, cmd), FlashError)
    assert error_for(mb.ST_TIMEOUT, cmd).exit_code == EXIT_TARGET
    assert isinstance(error_for(mb.ST_BUF_BUSY, cmd), LoaderProtocolError)
    assert "unknown loader status 77" in str(error_for(77, cmd))
    for code in STATUS_MESSAGES:
        if code != mb.ST_OK:
            assert error_for(code).status == code


def _order(ops):
    return [(o.cmd.name[0], o.cmd.addr) for o in ops]


def test_schedule_issues_each_erase_one_step_ahead():
    """The programmer's order (erase block, program block, ...) becomes "erase k+1, program k":
    the peripheral runs each pair back to back while the host feeds the next block."""
    ops = []
    for blk in range(3):
        ops += [_erase(blk * 0x10000, 0x10000), _program(blk * 0x10000, 0x10000)]
    ops.append(_erase(0x30000, 0x10000))  # erased, never programmed
    assert _order(schedule(ops)) == [
        ("E", 0x00000), ("E", 0x10000), ("P", 0x00000),
        ("E", 0x20000), ("P", 0x10000),
        ("E", 0x30000), ("P", 0x20000),
    ]
    # every program still comes after every erase that overlaps it
    out = schedule(ops)
    for i, op in enumerate(out):
        if op.is_program:
            for e in (o for o in ops if o.cmd.op == mb.OP_ERASE):
                if e.cmd.addr < op.cmd.addr + op.cmd.len and op.cmd.addr < e.cmd.addr + e.cmd.len:
                    assert out.index(e) < i


def test_schedule_keeps_one_erase_ahead_when_a_block_has_several_programs():
    """Blank pages split a block's data into several programs: still one erase ahead, not one
    per program (the erases would run ahead and leave the last blocks' programs alone)."""
    ops = []
    for blk in range(3):
        base = blk * 0x10000
        ops += [_erase(base, 0x10000), _program(base, 0x1000), _program(base + 0x3000, 0x1000),
                _program(base + 0x8000, 0x2000)]
    assert _order(schedule(ops)) == [
        ("E", 0x00000), ("E", 0x10000), ("P", 0x00000), ("P", 0x03000), ("P", 0x08000),
        ("E", 0x20000), ("P", 0x10000), ("P", 0x13000), ("P", 0x18000),
        ("P", 0x20000), ("P", 0x23000), ("P", 0x28000),
    ]
    # 4 KiB erases, one program each: one ahead per program as before
    ops = []
    for sec in range(3):
        ops += [_erase(sec * 0x1000, 0x1000), _program(sec * 0x1000, 0x1000)]
    assert _order(schedule(ops)) == [("E", 0), ("E", 0x1000), ("P", 0), ("E", 0x2000),
                                     ("P", 0x1000), ("P", 0x2000)]


def test_schedule_keeps_an_order_it_cannot_improve_safely():
    ops = [_program(0x0, 0x100), _erase(0x0, 0x10000), _program(0x0, 0x100)]
    assert schedule(ops) == ops  # an erase after a program of the same range
    ops = [_erase(0x10000, 0x10000), _erase(0x0, 0x10000), _program(0x0, 0x100)]
    assert schedule(ops) == ops  # erases not in address order
    chip = [Op(mb.Command(mb.OP_ERASE, addr=0, len=1 << 20, arg=mb.ERASE_CHIP)),
            _program(0, 0x100)]
    assert schedule(chip) == chip


def test_link_speed_learns_the_stop_cost_and_the_rate():
    speed = LinkSpeed()
    assert speed.stop_s == 0.005 and speed.cost_s(100_000) == 1.0  # guesses
    speed.observe(0.006, 200)  # a stop that wrote little: its fixed cost
    speed.observe(0.006 + 65536 / 300e3, 65536)  # 64 KiB at 300 kB/s on top
    assert abs(speed.stop_s - 0.006) < 1e-9 and abs(speed.rate - 300e3) < 1
    speed.observe(-1.0, 65536)  # nonsense is ignored
    assert abs(speed.rate - 300e3) < 1


def test_flash_times_from_the_configuration():
    t = FlashTimes(sck_hz=32_000_000, write_lines=4, read_lines=4)
    t.typ.update(page=120e-6, **{"64k": 0.16})
    erase = mb.Command(mb.OP_ERASE, addr=0, len=0x20000, arg=mb.ERASE_64K)
    assert abs(t.erase_s(erase) - 0.32) < 1e-9
    program = mb.Command(mb.OP_PROGRAM, addr=0, len=0x10000)
    page_send = 256 * 8 / 4 / 32e6
    frames = (8 + 40 + 16) / 32e6  # WREN, instruction + address, status read
    assert abs(t.typ_s(program) - 256 * (120e-6 + page_send + frames)) < 1e-9
    crc = mb.Command(mb.OP_CRC_LIST, addr=0, len=0x80000, arg=4096)
    assert t.typ_s(crc) > 0x80000 / 10e6  # summing on the CPU is the slower half
    assert t.max_s(program) > t.typ_s(program)


def test_a_loader_whose_clock_stands_still_is_reported_not_waited_for(monkeypatch):
    """A reset target runs no loader: its mailbox keeps the last time_us. Waits measured on that
    clock would never end; after 2 s of host time over 3 stops that let it run, the session says
    so (issue 12: a core reset mid-flash hung the command)."""
    import dataclasses

    from qspi_gdb.errors import TargetError
    from qspi_gdb.loader import session as session_mod

    class Link:
        def read_register(self, name):
            return 0xFFFFFFFE  # a core locked up at the blank reset vector

    s = session_mod.LoaderSession(Link(), chip="nrf52840")
    fields = [f.name for f in dataclasses.fields(mb.MailboxHeader)]
    stood = mb.MailboxHeader(**{name: 0 for name in fields})
    ran = dataclasses.replace(stood, time_us=1000)
    now = [100.0]
    monkeypatch.setattr(session_mod.time, "monotonic", lambda: now[0])
    s._ran_s = 0.01
    s._check_heartbeat(stood, ran)  # the clock moved: fine
    for _ in range(2):
        now[0] += 1.5
        s._check_heartbeat(ran, ran)  # stood still, but not yet long enough
    now[0] += 1.5
    with pytest.raises(TargetError, match=r"loader stopped running .* PC 0xfffffffe"):
        s._check_heartbeat(ran, ran)
    s._frozen = None
    s._ran_s = 0.0002  # tiny runs between long halts: not evidence enough
    for _ in range(5):
        now[0] += 3.0
        s._check_heartbeat(ran, ran)
