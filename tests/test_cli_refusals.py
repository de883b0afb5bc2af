"""Inputs and surroundings a hostile but fair user tries (issue 17): each is one line, the
documented exit code, the --json object, and nothing started or written; ordinary conditions
(an unreadable file, a full disk, a closed pipe) are never "internal error (a bug)"."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest
from intelhex import IntelHex

from qspi_gdb.cli import main

REPO = Path(__file__).resolve().parent.parent
needs_tools = pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                                 reason="needs Debian openocd and gdb-multiarch")
BOARD = ["--board", "sim-nrf5340dk"]


def refused(capsys, argv: list[str], code: int = 2) -> str:
    """Run the CLI with --json: the exit code, one error line, the same message in the JSON
    object; returns the message."""
    assert main([*argv, "--json"]) == code
    captured = capsys.readouterr()
    errors = [line for line in captured.err.splitlines() if line.startswith("qspi-gdb")]
    assert len(errors) == 1, captured.err
    result = json.loads(captured.out.splitlines()[-1])
    assert result["ok"] is False and result["error"]["exit_code"] == code
    assert errors[0].endswith(result["error"]["message"])
    assert "internal error" not in errors[0]
    return result["error"]["message"]


@pytest.fixture
def flash_file(tmp_path) -> Path:
    """A virtual board's flash file no refused command may create (the board creates it when
    it starts: its absence shows that nothing was started)."""
    return tmp_path / "never.img"


# -- images ------------------------------------------------------------------------------------


@pytest.fixture
def good_hex(tmp_path) -> Path:
    ih = IntelHex()
    ih.frombytes(random.Random(17).randbytes(8192), offset=0x10000000)
    path = tmp_path / "good.hex"
    ih.write_hex_file(str(path))
    return path


def test_a_hex_file_cut_at_a_line_boundary_is_refused_as_truncated(good_hex, tmp_path, capsys,
                                                                    flash_file):
    lines = good_hex.read_text().splitlines(keepends=True)
    half = tmp_path / "half.hex"
    half.write_text("".join(lines[:129]))  # head -n 129 good.hex > half.hex
    message = refused(capsys, ["flash", str(half), *BOARD, "--sim-image", str(flash_file)])
    assert message == f"{half}: no end-of-file record (:00000001FF): the file is truncated"
    assert not flash_file.exists()


def test_hex_records_after_the_end_of_file_record_and_bad_checksums_are_refused(
        good_hex, tmp_path, capsys, flash_file):
    lines = good_hex.read_text().splitlines(keepends=True)
    after = tmp_path / "after.hex"
    after.write_text("".join([*lines, lines[1]]))
    message = refused(capsys, ["flash", str(after), *BOARD, "--sim-image", str(flash_file)])
    assert message == (f"{after}: line {len(lines) + 1}: records after the end-of-file record "
                       f"(line {len(lines)})")
    bad = tmp_path / "bad.hex"
    bad.write_text("".join([lines[0], lines[1][:-3] + "00\n", *lines[2:]]))
    assert "checksum" in refused(capsys, ["flash", str(bad), *BOARD]).lower()
    blank_lines_after = tmp_path / "blank.hex"
    blank_lines_after.write_text("".join([*lines, "\n", "\n"]))
    assert main(["flash", str(blank_lines_after), *BOARD, "--dry-run"]) == 0
    assert not flash_file.exists()


def test_a_bad_address_after_at_says_the_address_is_bad(tmp_path, capsys):
    image = tmp_path / "r64k.bin"
    image.write_bytes(bytes(64 * 1024))
    message = refused(capsys, ["flash", f"{image}@0xZZ", *BOARD])
    assert message == (f"{image}: bad address after '@': '0xZZ' is not a number "
                       "(use e.g. image.bin@0x11E98000)")
    assert "no such file" in refused(capsys, ["flash", f"{tmp_path}/nope.bin@0xZZ", *BOARD])


def _as_nobody() -> list[str]:
    """A command prefix that drops root (root reads any file whatever its mode)."""
    if os.geteuid() != 0:
        return []
    if not shutil.which("setpriv"):
        pytest.skip("running as root without setpriv: cannot make a file unreadable")
    return ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]


def test_an_unreadable_image_is_bad_input_not_a_bug():
    where = Path(tempfile.mkdtemp(prefix="q17-"))
    try:
        where.chmod(0o755)
        image = where / "secret.bin"
        image.write_bytes(bytes(4096))
        image.chmod(0)
        done = subprocess.run(
            [*_as_nobody(), sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x10000000",
             *BOARD, "--dry-run", "--json"], cwd=REPO, capture_output=True, text=True,
            timeout=60)
        assert done.returncode == 2, done.stderr
        assert done.stderr == f"qspi-gdb: error: {image}: cannot read: Permission denied\n"
        assert json.loads(done.stdout)["error"]["exit_code"] == 2
    finally:
        shutil.rmtree(where, ignore_errors=True)


# -- command lines ---------------------------------------------------------------------------


@pytest.mark.parametrize("argv,message", [
    (["erase"], "erase takes ADDR LEN or --all"),
    (["erase", "0x10000000", "4096", "--all"], "erase takes ADDR LEN or --all"),
    (["erase", "0x10000000"], "erase ADDR needs a length"),
])
def test_erase_usage_errors_print_the_json_object(argv, message, capsys):
    assert refused(capsys, [*argv, *BOARD]) == message


@pytest.mark.parametrize("argv,message", [
    (["erase", "0x10000800", "4096"], "erase range 0x00000800+0x1000 must be whole 4 KiB "
     "sectors (offset and length multiples of 0x1000)"),
    (["erase", "0x10000000", "0"], "erase length 0 must be positive"),
    (["read", "0x10000000", "0", "-o", "out.bin"], "read length 0 must be positive"),
    (["read", "0x10FFF000", "0x2000", "-o", "out.bin", "--config", "cfg24.json"],
     "read 0x00FFF000..0x01000FFF reaches 16 MiB or more but the address mode is MODE24BIT "
     "(cfg24.json); use MODE32BIT"),
    (["erase", "0x11FFF000", "0x2000", "--config", "cfg24.json"],
     "erase 0x01FFF000..0x02000FFF runs past the end of the flash (32 MiB per cfg24.json, not "
     "detected) at 0x01FFFFFF"),
])
def test_range_errors_are_refused_before_anything_starts(argv, message, tmp_path, monkeypatch,
                                                         capsys, flash_file):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "cfg24.json").write_text(json.dumps({
        "firmware_config": {"peripheral": "QSPI"}, "flash_size": 33554432,
        "address_mode": "MODE24BIT"}))
    board = ["--board", "sim-nrf5340-32mb"] if "--config" in argv else BOARD
    assert refused(capsys, [*argv, *board, "--sim-image", str(flash_file)]) == message
    assert not flash_file.exists()


def test_connection_options_that_cannot_work_are_refused_before_anything_starts(
        tmp_path, capsys, flash_file):
    assert refused(capsys, ["info", *BOARD, "--interface", "cmsis-dap", "--sim-image",
                            str(flash_file)]) == (
        "--interface cmsis-dap: sim-nrf5340dk is a virtual board (no probe to choose); drop "
        "--interface, or pass --interface sim to use a virtual board started with `qspi-gdb "
        "sim`")
    assert not flash_file.exists()
    real = ["--board", "nrf5340dk"]
    if shutil.which("openocd"):
        assert refused(capsys, ["info", *real, "--interface", "no-such-probe"]).startswith(
            "--interface no-such-probe: OpenOCD has no interface/no-such-probe.cfg")
    assert refused(capsys, ["info", *real, "--openocd-config", str(tmp_path / "my.cfg")]) == \
        f"--openocd-config {tmp_path / 'my.cfg'}: no such file"
    message = refused(capsys, ["info", *real, "--gdb-server", "no-such-host.invalid:2331"])
    assert message.startswith("--gdb-server no-such-host.invalid:2331: cannot resolve host "
                              "'no-such-host.invalid'")


# -- config files ----------------------------------------------------------------------------


def test_flash_size_must_be_a_power_of_two_and_a_bom_is_accepted(tmp_path, capsys):
    image = tmp_path / "i.bin"
    image.write_bytes(bytes(4096))
    config = {"firmware_config": {"peripheral": "QSPI"}, "flash_size": -1}
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(config))
    assert refused(capsys, ["flash", f"{image}@0x10000000", *BOARD, "--config", str(bad),
                            "--dry-run"]) == \
        f"{bad}: flash_size -1 must be a power of two of at least 4096 (bytes)"
    bom = tmp_path / "bom.json"
    bom.write_bytes(b"\xef\xbb\xbf" + json.dumps({**config, "flash_size": 8 << 20}).encode())
    assert main(["flash", f"{image}@0x10000000", *BOARD, "--config", str(bom), "--dry-run"]) == 0
    assert "Would erase 4 KiB" in capsys.readouterr().out


# -- the output side -------------------------------------------------------------------------


@pytest.mark.integration
@needs_tools
def test_read_into_a_full_disk_is_one_line_not_a_bug(capsys):
    message = refused(capsys, ["read", "0x10000000", "4096", "-o", "/dev/full", *BOARD])
    assert message == "--output /dev/full: cannot write it: No space left on device"


@pytest.mark.integration
@needs_tools
def test_a_broken_stdout_after_a_successful_flash_keeps_the_success(tmp_path):
    image = tmp_path / "i.bin"
    image.write_bytes(random.Random(1).randbytes(4096))
    for json_flag in ([], ["--json"]):
        read_end, write_end = os.pipe()
        os.close(read_end)  # nobody will read: the first write gets EPIPE
        try:
            done = subprocess.run(
                [sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x10000000", *BOARD,
                 "--sim-image", str(tmp_path / "f.img"), *json_flag],
                stdout=write_end, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=240)
        finally:
            os.close(write_end)
        assert done.returncode == 0, done.stderr
        last = done.stderr.strip().splitlines()[-1]
        assert last.startswith("qspi-gdb: warning: the result could not be printed on stdout "
                               "(Broken pipe); the command itself succeeded: ")
        assert "verified 4 KiB" in last or "identical 4 KiB" in last
        assert "Traceback" not in done.stderr and "Exception ignored" not in done.stderr


def test_a_closed_stdout_is_not_a_bug(tmp_path):
    image = tmp_path / "i.bin"
    image.write_bytes(bytes(4096))
    done = subprocess.run(
        [sys.executable, "-m", "qspi_gdb", "flash", f"{image}@0x10000000", *BOARD, "--dry-run"],
        stdin=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, cwd=REPO, timeout=60,
        preexec_fn=lambda: os.close(1))
    assert done.returncode == 0, done.stderr
    assert done.stderr.startswith("qspi-gdb: warning: the result could not be printed on "
                                  "stdout (stdout is closed); the command itself succeeded: ")


# -- make flash-ext ------------------------------------------------------------------------------


@pytest.mark.skipif(not shutil.which("make"), reason="needs make")
def test_make_flash_ext_takes_file_names_literally(tmp_path):
    """make expands $(shell ...) in a variable given on its command line unless the Makefile
    takes the value literally: a file named like that must run nothing."""
    pwn = tmp_path / "pwn"
    name = "a$(shell touch $(QSPI_PWN))b.bin"
    image = tmp_path / name
    image.write_bytes(bytes(4096))
    env = {**os.environ, "QSPI_PWN": str(pwn)}
    make = ["make", "--no-print-directory", "-C", str(REPO), "flash-ext", f"FILE={image}",
            "ADDR=0x10000000", "BOARD=sim-nrf5340dk", "ARGS=--dry-run"]
    dry = subprocess.run([*make[:1], "-n", *make[1:]], env=env, capture_output=True, text=True,
                         timeout=120)
    assert dry.returncode == 0, dry.stderr
    assert not pwn.exists()
    done = subprocess.run(make, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert f"{image}: 4,096 bytes at XIP address 0x10000000" in done.stdout
    assert not pwn.exists()
