"""The fast subset of the fault campaign (`make faults`, README "Reliability"): every board fault
kind once in each phase it can strike, plus SIGKILL of OpenOCD, gdb and the board and SIGINT /
SIGTERM to qspi-gdb, each on a patterned virtual flash. The goals hold for every case: no false
success, no byte outside the image changed by the tool, no process left behind, every failure
one line with a documented exit code, and a re-run that completes."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                       reason="needs Debian openocd and gdb-multiarch"),
]


@pytest.mark.timeout(1200)
def test_quick_fault_campaign(tmp_path):
    done = subprocess.run([sys.executable, str(REPO / "tests" / "faults" / "campaign.py"),
                           "--quick", "--jobs", "2", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=1150, cwd=REPO)
    print(done.stdout[-6000:])  # the table (pytest -s, or the report of a failure)
    summary = json.loads((tmp_path / "summary.json").read_text())
    cases = [json.loads(line) for line in (tmp_path / "faults.jsonl").read_text().splitlines()]
    assert summary["cases"] >= 30
    totals = summary["totals"]
    assert totals["injected"] >= 30, done.stdout[-3000:]
    assert totals["false successes"] == 0, done.stdout[-3000:]
    assert totals["orphan processes"] == 0, done.stdout[-3000:]
    assert totals["unclean"] == 0, done.stdout[-3000:]
    assert totals["rerun ok"] == totals["reruns"], done.stdout[-3000:]
    # Bytes outside the image: none stays changed. A fault that kills the link between the
    # erase of a partly covered sector and the programming of its kept bytes leaves them in the
    # kept-bytes journal; the failure's one line names it and the re-run restores them.
    assert totals["bytes changed outside the image"] == 0, done.stdout[-3000:]
    assert totals["journals left"] == 0, done.stdout[-3000:]
    for case in cases:
        assert case["rerun_outside_changed"] == 0, case
        if case["outside_changed"]:
            assert "saved in" in case["message"] and case["rerun_exit"] == 0, case
