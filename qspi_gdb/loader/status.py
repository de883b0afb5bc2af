"""What the loader's answers mean: status codes to messages (the one table; unknown codes are
shown raw) and to typed errors (refused: nothing written; flash or peripheral failures; protocol
errors of the host)."""

from __future__ import annotations

from enum import IntEnum

from qspi_gdb.errors import TargetError, UsageError
from qspi_gdb.loader import mailbox as mb


class Status(IntEnum):
    OK = mb.ST_OK
    SKIPPED = mb.ST_SKIPPED
    BAD_OP = mb.ST_BAD_OP
    NOT_INIT = mb.ST_NOT_INIT
    RANGE = mb.ST_RANGE
    ALIGN = mb.ST_ALIGN
    BUF_RANGE = mb.ST_BUF_RANGE
    BUF_BUSY = mb.ST_BUF_BUSY
    ADDR_24BIT = mb.ST_ADDR_24BIT
    BAD_ARG = mb.ST_BAD_ARG
    CONFIG = mb.ST_CONFIG
    TIMEOUT = mb.ST_TIMEOUT
    FLASH_BUSY = mb.ST_FLASH_BUSY
    NO_FLASH = mb.ST_NO_FLASH
    JEDEC_MISMATCH = mb.ST_JEDEC_MISMATCH
    QE_FAILED = mb.ST_QE_FAILED
    ADDR4_FAILED = mb.ST_ADDR4_FAILED
    CLOCK = mb.ST_CLOCK
    CORRUPT = mb.ST_CORRUPT


# The one table from status codes to messages (unknown codes are shown raw by status_text).
STATUS_MESSAGES: dict[int, str] = {
    mb.ST_OK: "ok",
    mb.ST_SKIPPED: "not run: an earlier command in the same call failed",
    mb.ST_BAD_OP: "unknown loader command",
    mb.ST_NOT_INIT: "the QSPI interface is not initialised (INIT first)",
    mb.ST_RANGE: "flash range outside the chip",
    mb.ST_ALIGN: "address, length or buffer offset not aligned as the command requires",
    mb.ST_BUF_RANGE: "bad buffer index or range beyond the buffer",
    mb.ST_BUF_BUSY: "buffer still in use by EasyDMA",
    mb.ST_ADDR_24BIT: "access at or above 16 MiB while the interface is in 24-bit address mode",
    mb.ST_BAD_ARG: "invalid command argument",
    mb.ST_CONFIG: "invalid flash configuration for this chip",
    mb.ST_TIMEOUT: "the QSPI peripheral did not signal READY in time",
    mb.ST_FLASH_BUSY: "the flash stayed busy longer than the part's maximum time",
    mb.ST_NO_FLASH: "no flash answers (JEDEC ID reads 000000 or FFFFFF)",
    mb.ST_JEDEC_MISMATCH: "the flash's JEDEC ID differs from the expected one",
    mb.ST_QE_FAILED: "the flash's quad-enable bit did not stick",
    mb.ST_ADDR4_FAILED: "the flash did not enter or leave 4-byte address mode",
    mb.ST_CLOCK: "the high-frequency crystal oscillator did not start",
    mb.ST_CORRUPT: "a compressed block did not decode to its length and CRC32; nothing programmed",
}

STAGE_NAMES = {
    mb.STAGE_ACTIVATE: "activate",
    mb.STAGE_CINSTR: "custom instruction",
    mb.STAGE_ERASE: "erase",
    mb.STAGE_WRITE: "write",
    mb.STAGE_READ: "read",
    mb.STAGE_ERRATA: "errata workaround",
}


def status_text(code: int) -> str:
    msg = STATUS_MESSAGES.get(code)
    return f"{msg} (status {code})" if msg else f"unknown loader status {code}"


# -- errors --------------------------------------------------------------------------------


class LoaderStatusError:
    """Mixin: a loader command answered a non-OK status."""

    status: int
    command: mb.Command | None

    def _set(self, status: int, command: mb.Command | None) -> None:
        self.status = status
        self.command = command


def _describe(status: int, cmd: mb.Command | None, extra: str = "") -> str:
    where = ""
    if cmd is not None:
        where = f"{cmd.name}"
        if cmd.op in (mb.OP_ERASE, mb.OP_PROGRAM, mb.OP_READ, mb.OP_CRC32, mb.OP_CRC_LIST):
            where += f" 0x{cmd.addr:08X}+0x{cmd.len:X}"
        where += ": "
    text = status_text(status)
    if status == mb.ST_TIMEOUT and cmd is not None:
        text += f" during {STAGE_NAMES.get(cmd.result0, cmd.result0)}"
    if status == mb.ST_JEDEC_MISMATCH and cmd is not None:
        text += f" (read {cmd.result0:06X})"
    return f"loader: {where}{text}{extra}"


class LoaderRefused(LoaderStatusError, UsageError):
    """The loader refused a request the chip or its address mode cannot do (nothing written):
    range past the chip end, >= 16 MiB in 24-bit mode, a configuration the chip rejects."""


class LoaderProtocolError(LoaderStatusError, TargetError):
    """The host sent something the loader rejects (alignment, buffers, unknown command...)."""


class FlashError(LoaderStatusError, TargetError):
    """The flash or the QSPI peripheral failed (time-out, stuck busy, no flash, QE, 4-byte)."""


class JedecMismatch(LoaderStatusError, UsageError):
    """The flash present is not the one the configuration expects."""


_REFUSED = {mb.ST_RANGE, mb.ST_ADDR_24BIT, mb.ST_CONFIG}
_FLASH = {mb.ST_TIMEOUT, mb.ST_FLASH_BUSY, mb.ST_NO_FLASH, mb.ST_QE_FAILED, mb.ST_ADDR4_FAILED,
          mb.ST_CLOCK}


def error_for(status: int, cmd: mb.Command | None = None) -> Exception:
    """The typed error for a non-OK status."""
    if status == mb.ST_JEDEC_MISMATCH:
        cls: type = JedecMismatch
    elif status in _REFUSED:
        cls = LoaderRefused
    elif status in _FLASH:
        cls = FlashError
    else:
        cls = LoaderProtocolError
    err = cls(_describe(status, cmd))
    err._set(status, cmd)
    return err
