"""CLI subcommands that start no process: --dry-run plans, usage errors, the --json object."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from qspi_gdb.cli import main
from qspi_gdb.sim.cli import main as sim_main

CONFIG_JSON = Path(__file__).resolve().parent.parent / "examples" / "nrf5340_32mb_ext_mem.json"


@pytest.fixture
def seed_bin(tmp_path):
    path = tmp_path / "zephyr.recovery.bin"
    path.write_bytes(bytes(range(256)) * 2002 + b"\x07" * 71)  # 512,583 bytes
    return path


def test_dry_run_prints_the_plan_and_touches_nothing(seed_bin, capsys):
    code = main(["flash", f"{seed_bin}@0x11E98000", "--board", "sim-nrf5340-32mb",
                 "--config", str(CONFIG_JSON), "--dry-run"])
    out = capsys.readouterr().out
    assert code == 0
    assert "XIP address 0x11E98000 (flash offset 0x01E98000)" in out
    assert ("flash: IS25WP256 (32 MiB, assumed from preset sim-nrf5340-32mb, not detected), "
            "MODE32BIT") in out
    assert out.strip().splitlines()[-1].startswith("Would erase 504 KiB")


def test_dry_run_json_carries_the_plan(seed_bin, capsys):
    code = main(["flash", str(seed_bin), "--addr", "0x1E98000", "--board", "sim-nrf5340-32mb",
                 "--config", str(CONFIG_JSON), "--dry-run", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["dry_run"] is True and result["ok"] is True
    assert result["schema"] == "qspi-gdb/result/1"
    assert result["image"]["address_kind"] == "offset"
    assert result["plan"]["verify"] == [{"offset": 0x1E98000, "length": 126 * 4096}]
    assert result["verified"] is False


def test_board_is_required(seed_bin, capsys):
    assert main(["flash", f"{seed_bin}@0x10000000", "--dry-run"]) == 2
    assert "--board is required" in capsys.readouterr().err


def test_erase_needs_a_range_or_all(capsys):
    assert main(["erase", "--board", "sim-nrf5340dk"]) == 2
    assert "ADDR LEN or --all" in capsys.readouterr().err
    assert main(["erase", "0x10000000", "--all", "--board", "sim-nrf5340dk"]) == 2


def test_erase_dry_run_counts_units(capsys):
    code = main(["erase", "0x10010000", "0x11000", "--board", "sim-nrf5340dk", "--dry-run",
                 "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0 and result["sectors_erased"] == 2 and result["bytes_erased"] == 0x11000


def test_json_error_object_on_bad_input(tmp_path, capsys):
    code = main(["flash", str(tmp_path / "missing.hex"), "--board", "sim-nrf5340dk", "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert code == 2 and result["ok"] is False
    assert result["error"]["exit_code"] == 2 and "no such file" in result["error"]["message"]
    assert captured.err.count("qspi-gdb: error:") == 1


def test_sim_image_needs_a_virtual_board(seed_bin, capsys):
    code = main(["flash", f"{seed_bin}@0x10000000", "--board", "nrf5340dk", "--sim-image",
                 "x.bin"])
    assert code == 2 and "--sim-image needs a virtual board" in capsys.readouterr().err


def _interrupting_job(*phases):
    def job(_target, _image, _options, _open_target, progress, _result):
        from qspi_gdb.flash.progress import PhaseStarted

        for phase in phases:
            progress(PhaseStarted(phase, 4096))
        raise KeyboardInterrupt
    return job


def test_interrupt_while_writing_says_the_range_may_be_partly_written(monkeypatch, seed_bin,
                                                                       capsys):
    from qspi_gdb.flash import jobs
    from qspi_gdb.flash.progress import ERASING, PROGRAMMING

    monkeypatch.setattr(jobs, "flash", _interrupting_job(ERASING, PROGRAMMING))
    code = main(["flash", f"{seed_bin}@0x11E98000", "--board", "sim-nrf5340-32mb", "--json"])
    captured = capsys.readouterr()
    result = json.loads(captured.out)
    assert code == 130 and result["ok"] is False and result["error"]["exit_code"] == 130
    line = "qspi-gdb: interrupted while erasing and programming: the flash range may be " \
           "partly written; run the command again"
    assert captured.err.strip().splitlines()[-1] == line
    assert result["error"]["message"] == line.removeprefix("qspi-gdb: ")


def test_interrupt_before_writing_says_nothing_was_written(monkeypatch, seed_bin, capsys):
    from qspi_gdb.flash import jobs
    from qspi_gdb.flash.progress import READING

    monkeypatch.setattr(jobs, "flash", _interrupting_job(READING))
    code = main(["flash", f"{seed_bin}@0x11E98000", "--board", "sim-nrf5340-32mb"])
    assert code == 130
    assert capsys.readouterr().err.strip().endswith("qspi-gdb: interrupted; nothing was written")


def test_sim_image_in_a_missing_directory_is_bad_input(seed_bin, tmp_path, capsys):
    code = main(["flash", f"{seed_bin}@0x11E98000", "--board", "sim-nrf5340-32mb",
                 "--sim-image", str(tmp_path / "nodir" / "x.img")])
    err = capsys.readouterr().err
    assert code == 2 and err == (f"qspi-gdb: error: --sim-image {tmp_path}/nodir/x.img: no such "
                                 f"directory {tmp_path}/nodir\n")
    assert main(["info", "--board", "sim-nrf5340-32mb", "--sim-image", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err


def test_sim_flash_file_problems_are_one_line_usage_errors(tmp_path, capsys):
    wrong_size = tmp_path / "wrong.img"
    wrong_size.write_bytes(b"\xff" * 4096)
    cases = [(tmp_path / "nodir" / "x.img", "No such file or directory"),
             (tmp_path, "is a directory"),
             (wrong_size, "is 4096 bytes but part 'MX25R6435F' is 8388608 bytes")]
    for path, reason in cases:
        assert sim_main(["--board", "sim-nrf5340dk", "--sim-image", str(path)]) == 2
        err = capsys.readouterr().err
        assert err.startswith(f"qspi-gdb sim: error: --sim-image {path}: ")
        assert reason in err and err.count("\n") == 1


def test_read_into_a_directory_is_refused_before_connecting(tmp_path, capsys):
    code = main(["read", "0x10000000", "16", "-o", str(tmp_path), "--board", "sim-nrf5340dk"])
    assert code == 2
    assert capsys.readouterr().err == f"qspi-gdb: error: --output {tmp_path}: is a directory " \
                                      "(name a file)\n"


def test_an_unexpected_exception_is_one_line_exit_1_and_json_still_printed(monkeypatch, seed_bin,
                                                                           capsys):
    from qspi_gdb.flash import jobs

    def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(jobs, "flash", broken)
    code = main(["flash", f"{seed_bin}@0x11E98000", "--board", "sim-nrf5340-32mb", "--json"])
    captured = capsys.readouterr()
    assert code == 1
    message = "internal error RuntimeError: boom (a bug; -v shows the traceback)"
    assert captured.err == f"qspi-gdb: error: {message}\n"
    assert json.loads(captured.out)["error"] == {"message": message, "exit_code": 1}
    with pytest.raises(RuntimeError):  # -v: the traceback, for the bug report
        main(["-v", "flash", f"{seed_bin}@0x11E98000", "--board", "sim-nrf5340-32mb"])


def test_a_loader_that_is_no_elf_is_refused_before_connecting(tmp_path, capsys):
    bogus = tmp_path / "loader.elf"
    bogus.write_text("not an elf\n")
    assert main(["info", "--board", "sim-nrf5340dk", "--loader", str(bogus)]) == 2
    assert capsys.readouterr().err == f"qspi-gdb: error: --loader {bogus}: not an ELF file\n"


def test_a_loader_for_another_architecture_is_refused_before_connecting(capsys):
    host_elf = Path(sys.executable).resolve()  # an ELF for the host CPU, not for Cortex-M
    assert main(["info", "--board", "sim-nrf5340dk", "--loader", str(host_elf)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"qspi-gdb: error: --loader {host_elf}: an ELF for EM_")
    assert err.endswith("not for an Arm Cortex-M core\n") and err.count("\n") == 1
