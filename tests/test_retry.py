"""flash.retry: which failures get a second try in the same run, how many, and with what
arguments (a stand-in programmer; the real path runs in the fault campaign,
tests/test_fault_campaign.py: program-flip and core-reset cases recover there)."""

from types import SimpleNamespace

import pytest

from qspi_gdb.errors import ConnectionLost, TargetError, UsageError
from qspi_gdb.flash import retry
from qspi_gdb.loader import mailbox as mb
from qspi_gdb.loader.status import error_for


class FakeProgrammer:
    """Answers each flash() with the next entry of `script`: an exception to raise, or a list
    of mismatched ranges for the outcome."""

    def __init__(self, *script, reload_fails=False):
        self.script = list(script)
        self.calls: list[dict] = []
        self.reloads = 0
        self.reload_fails = reload_fails
        self.plan = None
        self.flash_touched = False

    def flash(self, image, **kwargs):
        self.calls.append(kwargs)
        self.plan = f"plan {len(self.calls)}"
        self.flash_touched = True
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return SimpleNamespace(plan=self.plan, mismatched=step, pages_skipped_blank=1)

    def connect(self, preset):
        self.calls.append({"connect": preset})
        step = self.script.pop(0)
        if isinstance(step, BaseException):
            raise step
        return step

    def reload(self):
        self.reloads += 1
        if self.reload_fails:
            raise TargetError("cannot load")


def journals(first):
    return f"journal first={first}"


def run(programmer, **kwargs):
    tries = retry.Attempts()
    outcome = retry.flash(programmer, "image", journals, attempts=tries, **kwargs)
    return outcome, tries


BAD = [{"offset": 0x10000, "length": 4096, "expected": "0x1", "actual": "0x2"}]


def test_a_verify_mismatch_is_written_again_and_said():
    p = FakeProgrammer(BAD, [])
    outcome, tries = run(p, force=True, chip_erase=True)
    assert outcome.mismatched == [] and len(p.calls) == 2 and p.reloads == 0
    assert tries.retries == [{"attempt": 2, "reason": "verify: 1 range(s) differ, first at "
                                                      "flash offset 0x00010000"}]
    assert tries.first_plan == "plan 1" and tries.pages_skipped_blank == 2
    # the second try rewrites what does not verify: no --force, no second chip erase
    assert p.calls[1]["force"] is False and p.calls[1]["chip_erase"] is False
    assert p.calls[0]["journal"] == "journal first=True"
    assert p.calls[1]["journal"] == "journal first=False"


def test_a_lost_loader_is_loaded_again_and_the_flash_resumes():
    lost = TargetError("the loader stopped running (its clock stood still for 2.0 s)")
    p = FakeProgrammer(lost, [])
    outcome, tries = run(p)
    assert outcome.mismatched == [] and p.reloads == 1 and len(p.calls) == 2
    assert tries.retries[0]["reason"].startswith("the loader stopped running")
    assert tries.first_plan == "plan 1"


def test_tries_are_bounded():
    p = FakeProgrammer(BAD, BAD, BAD, [])
    outcome, tries = run(p)
    assert outcome.mismatched == BAD and len(p.calls) == retry.ATTEMPTS
    p = FakeProgrammer(*[TargetError(f"dap {i}") for i in range(4)])
    with pytest.raises(TargetError, match="dap 2"):
        run(p)
    assert len(p.calls) == retry.ATTEMPTS


def _raised_from_a_lost_link() -> TargetError:
    try:
        try:
            raise ConnectionLost("OpenOCD exited")
        except ConnectionLost as lost:
            raise TargetError("gdb: Unable to read memory") from lost
    except TargetError as exc:
        return exc


@pytest.mark.parametrize("make", [
    lambda: ConnectionLost("OpenOCD exited"),  # nothing left to ask
    _raised_from_a_lost_link,
    lambda: error_for(mb.ST_FLASH_BUSY),  # the flash itself: its full deadline again
    lambda: UsageError("bad file"),
    KeyboardInterrupt,
], ids=["connection-lost", "raised-from-a-lost-link", "flash-busy", "usage", "ctrl-c"])
def test_failures_a_second_try_cannot_fix_end_the_command(make):
    failure = make()
    p = FakeProgrammer(failure, [])
    with pytest.raises(type(failure)):
        run(p)
    assert len(p.calls) == 1 and p.reloads == 0


def test_a_loader_that_cannot_be_loaded_again_reports_the_first_failure():
    p = FakeProgrammer(TargetError("loader stopped at an unexpected place"), [],
                       reload_fails=True)
    with pytest.raises(TargetError, match="unexpected place"):
        run(p)
    assert len(p.calls) == 1


def test_connecting_gets_one_second_try():
    p = FakeProgrammer(TargetError("loader greeting missing"), "detected")
    assert retry.connect(p, "preset") == "detected" and len(p.calls) == 2
    p = FakeProgrammer(TargetError("load failed"), TargetError("again"))
    with pytest.raises(TargetError, match="load failed"):
        retry.connect(p, "preset")
    p = FakeProgrammer(ConnectionLost("OpenOCD exited"), "detected")
    with pytest.raises(ConnectionLost):
        retry.connect(p, "preset")
    assert len(p.calls) == 1
