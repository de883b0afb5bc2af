"""Pure parts of the loader client: typed errors and the erase/program interleaving."""

from __future__ import annotations

from qspi_gdb import mailbox as mb
from qspi_gdb.errors import EXIT_TARGET, EXIT_USAGE
from qspi_gdb.loader_client import (
    FlashError,
    JedecMismatch,
    LoaderProtocolError,
    LoaderRefused,
    _interleave,
    _Op,
    error_for,
)


def _erase(addr: int, length: int) -> _Op:
    return _Op(mb.Command(mb.OP_ERASE, addr=addr, len=length, arg=mb.ERASE_64K))


def _program(addr: int, length: int) -> _Op:
    return _Op(mb.Command(mb.OP_PROGRAM, addr=addr, len=length), b"\0" * length)


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
    for code in mb.STATUS_MESSAGES:
        if code != mb.ST_OK:
            assert error_for(code).status == code


def test_interleave_puts_each_erase_before_its_first_program():
    ops = [_erase(0x00000, 0x10000), _erase(0x10000, 0x10000), _erase(0x30000, 0x10000),
           _program(0x08000, 0x8000), _program(0x10000, 0x8000), _program(0x18000, 0x8000)]
    out = _interleave(ops)
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
    assert _interleave(ops) == ops
