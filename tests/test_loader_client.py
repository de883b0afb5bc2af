"""Pure parts of the loader client: typed errors and the erase/program interleaving."""

from __future__ import annotations

from qspi_gdb.errors import EXIT_TARGET, EXIT_USAGE
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.pipeline import Op, interleave
from qspi_gdb.loader.status import (
    STATUS_MESSAGES,
    FlashError,
    JedecMismatch,
    LoaderProtocolError,
    LoaderRefused,
    error_for,
)


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


def test_interleave_puts_each_erase_before_its_first_program():
    ops = [_erase(0x00000, 0x10000), _erase(0x10000, 0x10000), _erase(0x30000, 0x10000),
           _program(0x08000, 0x8000), _program(0x10000, 0x8000), _program(0x18000, 0x8000)]
    out = interleave(ops)
    order = [(o.cmd.op, o.cmd.addr) for o in out]
    assert order == [
        (mb.OP_ERASE, 0x00000), (mb.OP_PROGRAM, 0x08000),
        (mb.OP_ERASE, 0x10000), (mb.OP_PROGRAM, 0x10000), (mb.OP_PROGRAM, 0x18000),
        (mb.OP_ERASE, 0x30000),  # erased but never programmed: still erased, at the end
    ]
    # every program comes after every erase that overlaps it
    for i, op in enumerate(out):
        if op.cmd.op == mb.OP_PROGRAM:
            lo, hi = op.cmd.addr, op.cmd.addr + op.cmd.len
            for e in ops[:3]:
                if e.cmd.addr < hi and lo < e.cmd.addr + e.cmd.len:
                    assert out.index(e) < i


def test_interleave_keeps_an_order_that_programs_before_erasing():
    ops = [_program(0x0, 0x100), _erase(0x0, 0x10000), _program(0x0, 0x100)]
    assert interleave(ops) == ops


def _header(entry_us: int, time_us: int) -> mb.MailboxHeader:
    return mb.MailboxHeader(mb.MAGIC, 1, 0, 5340, 1, 16, 0, 0, 1, 1, 0, 0, 1, 0, 0, 0,
                            time_us, entry_us, mb.CANARY)


def test_busy_estimate_learns_from_the_loader_timer():
    from qspi_gdb.loader.client import LoaderClient

    client = LoaderClient(None, chip="nrf5340")
    op = _program(0, 32768)
    op.busy_typ_s, op.kind = 0.115, "page"  # SFDP page time x 128 pages
    # the next call found the flash idle after the host filled for the whole estimate: shorter
    client.header = _header(entry_us=1_124_000, time_us=1_124_020)
    client.busy.learn((op, 1_000_000, True), client.header)
    assert abs(client.busy.scale["page"] - 0.7) < 1e-9
    # idle but the host stopped for another reason (no free buffer): no conclusion
    client.busy.learn((op, 1_000_000, False), client.header)
    assert abs(client.busy.scale["page"] - 0.7) < 1e-9
    # the loader waited: the flash work took from its start to this call's halt (47 ms)
    client.header = _header(entry_us=2_020_000, time_us=2_047_000)
    client.busy.learn((op, 2_000_000, True), client.header)
    assert abs(client.busy.scale["page"] - 0.047 / 0.115) < 1e-9
    # the timer wraps
    client.header = _header(entry_us=10_000, time_us=30_000)
    client.busy.learn((op, 0xFFFFFFFF - 16_999, True), client.header)
    assert abs(client.busy.scale["page"] - 0.047 / 0.115) < 1e-9
    # once measured, an idle flash at the next call (the host overshot a fill piece) keeps it
    client.header = _header(entry_us=3_060_000, time_us=3_060_020)
    client.busy.learn((op, 3_000_000, True), client.header)
    assert abs(client.busy.scale["page"] - 0.047 / 0.115) < 1e-9
