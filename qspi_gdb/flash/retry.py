"""Second tries of a flash, bounded: for faults that pass, the command finishes in the same run.

What is tried again (README "Reliability", table "What happens when ..."):
- a verify that found ranges differing from the image (a bit that did not take, a program or
  erase the chip reported done but did not do, a disturbed page): those sectors are erased and
  programmed again;
- a lost or confused loader (the core was reset, a DAP error broke a memory access, the loader
  stopped or refused a corrupt block): it is loaded again and the flash resumes; while
  connecting (nothing written yet), the connection is made once more.

A second try is the same plan again: it reads the target's CRC32 of every image sector, skips
those that already hold the image (so it resumes after the last sector that verifies) and
rewrites the rest with the kept bytes around the image taken from the kept-bytes journal
where the failed try left them there. At most ATTEMPTS tries; a try that cannot succeed is
not repeated: a process on the way is gone (nothing left to ask), the flash itself failed (a
stuck busy bit or a time-out repeats its full deadline), or the input was refused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from qspi_gdb import log
from qspi_gdb.errors import TargetError, UsageError, connection_lost
from qspi_gdb.flash.journal import Journal
from qspi_gdb.flash.plan import Plan
from qspi_gdb.flash.programmer import FlashOutcome, Programmer
from qspi_gdb.inputs.flash_config import FlashConfig
from qspi_gdb.inputs.image import Image
from qspi_gdb.loader.status import FlashError

_log = log.get_logger(__name__)
ATTEMPTS = 3  # the first try and two more


@dataclass
class Attempts:
    """What the tries did: the first plan (what the command found and decided: sectors that
    held the image already, bytes kept around it), the blank pages skipped by all tries, and
    why each further try was made."""

    first_plan: Plan | None = None
    pages_skipped_blank: int = 0
    retries: list[dict] = field(default_factory=list)  # {attempt, reason}


def worth_another_try(exc: BaseException) -> bool:
    """A failure a second try in the same run may get past (see the module text)."""
    if not isinstance(exc, TargetError) or isinstance(exc, (UsageError, FlashError)):
        return False
    return connection_lost(exc) is None


def connect(programmer: Programmer, preset: FlashConfig) -> FlashConfig:
    """programmer.connect with one second try: a reset or a DAP error while the loader was
    being loaded or started (nothing is written before the connection completes)."""
    try:
        return programmer.connect(preset)
    except Exception as exc:
        if not worth_another_try(exc):
            raise
        _log.warning("connecting failed; loading the loader again", error=str(exc))
        try:
            return programmer.connect(preset)
        except Exception as again:  # noqa: BLE001 - the first failure is the story
            _log.warning("the second try failed too", error=str(again))
            raise exc from None


def flash(programmer: Programmer, image: Image, open_journal: Callable[[bool], Journal], *,
          verify: bool = True, force: bool = False, chip_erase: bool | None = None,
          compress: bool = True, attempts: Attempts | None = None,
          link_s_per_byte: float | None = None) -> FlashOutcome:
    """programmer.flash with bounded second tries. open_journal(first): the kept-bytes journal
    for a try (the first may discard a stale one; later tries take what the last one left).
    link_s_per_byte: the probe link's cost, for the plan's chip-erase choice."""
    tally = attempts if attempts is not None else Attempts()
    for attempt in range(1, ATTEMPTS + 1):
        journal = open_journal(attempt == 1)
        try:
            outcome = programmer.flash(image, verify=verify, force=force, chip_erase=chip_erase,
                                       compress=compress, journal=journal,
                                       link_s_per_byte=link_s_per_byte)
        except Exception as exc:
            tally.first_plan = tally.first_plan or programmer.plan
            if attempt == ATTEMPTS or not worth_another_try(exc):
                raise
            reason = str(exc)
            _log.warning("the flash failed; loading the loader again and resuming",
                         error=reason, attempt=attempt + 1, of=ATTEMPTS)
            try:
                programmer.reload()
            except Exception as again:  # noqa: BLE001 - the first failure is the story
                _log.warning("could not load the loader again", error=str(again))
                raise exc from None
        else:
            tally.first_plan = tally.first_plan or outcome.plan
            tally.pages_skipped_blank += outcome.pages_skipped_blank
            if not outcome.mismatched or attempt == ATTEMPTS:
                return outcome
            first = outcome.mismatched[0]
            reason = (f"verify: {len(outcome.mismatched)} range(s) differ, first at flash "
                      f"offset 0x{first['offset']:08X}")
            _log.warning("verify found ranges that differ; erasing and programming them again",
                         ranges=len(outcome.mismatched), first=f"0x{first['offset']:08X}",
                         attempt=attempt + 1, of=ATTEMPTS)
        tally.retries.append({"attempt": attempt + 1, "reason": reason})
        # what is left to do is rewriting what does not verify: never the whole chip again,
        # never sectors that already hold the image
        force = False
        if chip_erase is True and programmer.flash_touched:
            chip_erase = False
    raise AssertionError("unreachable")  # the last try returns or raises
