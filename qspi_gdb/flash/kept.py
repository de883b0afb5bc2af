"""The bytes around the image that a flash erases and programs back (read-modify-write of partly
covered sectors): read them proven by the target's CRC32, restore them at once when a write
fails and the link still answers, and settle the kept-bytes journal (`qspi_gdb.flash.journal`)
once the target proves them.

Functions over the loader client and the programmer's CRC32 call, so the programmer keeps only
the order of the work.
"""

from __future__ import annotations

import time
import zlib
from collections.abc import Callable, Sequence

from qspi_gdb import log
from qspi_gdb.errors import TargetError, connection_lost
from qspi_gdb.flash.journal import Journal
from qspi_gdb.flash.plan import SectorContent, SectorOp
from qspi_gdb.flash.ranges import Range
from qspi_gdb.loader.pipeline import EraseStep, ProgramStep

_log = log.get_logger(__name__)
KEPT_READ_ATTEMPTS = 3  # reads of the bytes around the image before a mismatch is an error
RESTORE_RELOAD_BUDGET_S = 30.0  # a failed restore reloads the loader once, if it failed sooner

Crcs = Callable[[Sequence[Range]], list[int]]
RESTORED = "the bytes outside the image were restored and verified"


def read_kept(client, crcs: Crcs, fills: Sequence[Range]) -> list[bytes]:
    """The bytes around the image that are written back after the erase, each proven by
    the target's CRC32 of the same range (a disturbed read would be written back as the
    old contents, and the verify would agree); a mismatch is read again a bounded number
    of times, one that persists fails before anything is erased."""
    kept = [client.read(r.offset, r.length) for r in fills]
    for attempt in range(1, KEPT_READ_ATTEMPTS + 1 if fills else 0):
        wrong = [i for i, want in enumerate(crcs(fills)) if zlib.crc32(kept[i]) != want]
        if not wrong:
            break
        if attempt == KEPT_READ_ATTEMPTS:
            at = fills[wrong[0]].offset
            raise TargetError(f"the bytes to keep at flash offset 0x{at:08X}"
                              f" read differently {attempt} times (CRC32 on the target "
                              "disagrees); nothing was written")
        _log.warning("bytes around the image read inconsistently; reading them again",
                     offset=f"0x{fills[wrong[0]].offset:08X}", ranges=len(wrong))
        for i in wrong:
            kept[i] = client.read(fills[i].offset, fills[i].length)
    return kept


def settle(journal: Journal, crcs: Crcs) -> bool:
    """Remove the journal when the target's CRC32 of every range it keeps matches its bytes;
    False (the journal stays) otherwise."""
    if not journal.entries:
        journal.remove()
        return True
    if crcs(journal.ranges()) != journal.crcs():
        return False
    journal.remove()
    _log.info("bytes around the image verified on the target; journal removed",
              journal=str(journal.path))
    return True


def _saved(journal: Journal) -> str:
    return (f"the bytes outside the image are saved in {journal.path}; a re-run of the same "
            "command restores them")


def after_failure(exc: BaseException, client, crcs: Crcs, reload: Callable[[], None],
                  journal: Journal, units: Sequence[tuple[SectorOp, SectorContent]]) -> str:
    """After a failed write (exc), while the link answers: rewrite every unit whose kept bytes the
    target's CRC32 does not prove (erase it, program its whole contents again), prove them and
    remove the journal. Best effort: each call has the loader client's deadline, the loader is
    reloaded at most once (a reset lost it). Returns the note for the error message."""
    if not isinstance(exc, Exception) or connection_lost(exc):
        return _saved(journal)  # interrupted (Ctrl-C: stop now), or nobody left to ask
    return restore(client, crcs, reload, journal, units)


def restore(client, crcs: Crcs, reload: Callable[[], None], journal: Journal,
            units: Sequence[tuple[SectorOp, SectorContent]]) -> str:
    """Rewrite the units whose kept bytes the target does not prove (see after_failure)."""
    saved = _saved(journal)
    started = time.monotonic()
    for attempt in (1, 2):
        try:
            if attempt == 2:
                reload()
            _rewrite_unproven(client, crcs, journal, units)
            if settle(journal, crcs):
                return RESTORED
            return saved
        except Exception as err:  # noqa: BLE001 - best effort; the original error is reported
            _log.warning("could not restore the bytes outside the image", error=str(err),
                         attempt=attempt)
            if connection_lost(err) or time.monotonic() - started > RESTORE_RELOAD_BUDGET_S:
                break
    return saved


def _rewrite_unproven(client, crcs: Crcs, journal: Journal,
                      units: Sequence[tuple[SectorOp, SectorContent]]) -> None:
    fills = [(op, content, r) for op, content in units for r in op.fills]
    if not fills:
        return
    got = crcs([r for _op, _c, r in fills])
    bad: list[tuple[SectorOp, SectorContent]] = []
    for (op, content, r), crc in zip(fills, got):
        if crc != zlib.crc32(content.chunk(r)) and (op, content) not in bad:
            bad.append((op, content))
    steps: list = []
    for op, content in bad:
        steps.append(EraseStep(op.offset, op.size, 4096 if op.erase == "4KB" else 65536))
        steps += [ProgramStep(r.offset, content.chunk(r)) for r in content.program]
    if steps:
        _log.warning("restoring the bytes outside the image", units=len(bad),
                     journal=str(journal.path))
        client.write(steps)
