"""README "What a run prints": the examples there were copied from real runs; this runs the same
command lines (the real CLI, OpenOCD, gdb-multiarch and the virtual board) and checks that each
prints lines of the same shape: the same words, only the numbers may differ."""

from __future__ import annotations

import random
import re
import shlex
import shutil

import pytest
import structlog
from readme_examples import readme_example

from qspi_gdb.cli import main

SECTION = "What a run prints"


def sessions(block: str) -> list[tuple[list[str], list[str]]]:
    """'$ qspi-gdb ARGS' lines, each with the lines it printed on stdout."""
    runs: list[tuple[list[str], list[str]]] = []
    for line in block.splitlines():
        if line.startswith("$ qspi-gdb "):
            runs.append((shlex.split(line[len("$ qspi-gdb "):]), []))
        else:
            runs[-1][1].append(line)
    return runs


def shape(line: str) -> str:
    """A line with every number (1,234 / 7.74 / the digits of 0x0001FFFF) as '#'."""
    return re.sub(r"\d[\d,]*(\.\d+)?", "#", line)


@pytest.fixture
def example_files(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "app.bin").write_bytes(random.Random("app").randbytes(64 << 10))
    (tmp_path / "fs.bin").write_bytes(random.Random("fs").randbytes(32 << 10))
    yield tmp_path
    structlog.reset_defaults()


def run_and_compare(capsys, runs) -> None:
    for argv, expected in runs:
        assert main(argv) == 0, capsys.readouterr().err
        printed = capsys.readouterr().out.splitlines()
        assert [shape(line) for line in printed] == [shape(line) for line in expected], argv


def test_the_dry_run_example_is_what_a_dry_run_prints(example_files, capsys):
    """Deterministic but for the time: the plan, the assumed chip, the estimate and its probe."""
    block = readme_example(SECTION, "text", 1)
    assert "--dry-run\nPlan: " in block
    run_and_compare(capsys, sessions(block))


@pytest.mark.integration
@pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                    reason="needs Debian openocd and gdb-multiarch")
def test_the_summary_examples_are_what_real_runs_print(example_files, capsys):
    block = readme_example(SECTION, "text", 0)
    runs = sessions(block)
    assert [argv[0] for argv, _ in runs] == ["flash", "flash", "verify", "erase", "read", "erase"]
    run_and_compare(capsys, runs)
    assert (example_files / "head.bin").read_bytes() == \
        (example_files / "app.bin").read_bytes()[:16]
