import subprocess
import sys

import pytest

from qspi_gdb import __version__
from qspi_gdb.cli import main


def test_version_flag(capsys):
    try:
        main(["--version"])
    except SystemExit as exc:
        assert exc.code == 0
    assert __version__ in capsys.readouterr().out


def test_console_script_runs_as_module():
    out = subprocess.run(
        [sys.executable, "-m", "qspi_gdb", "--version"], capture_output=True, text=True, check=True
    )
    assert out.stdout.strip() == f"qspi-gdb {__version__}"


def test_no_command_is_usage_error():
    assert main([]) == 2


def test_refused_command_line_is_one_error_line_with_exit_2(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["read", "0x10000000", "64", "--board", "sim-nrf5340dk"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err == ("qspi-gdb read: error: the following arguments are required: --output/-o "
                   "(see 'qspi-gdb read --help')\n")


def test_refused_command_line_with_json_still_prints_the_result_object(capsys):
    import json

    with pytest.raises(SystemExit) as exc:
        main(["erase", "--bogus", "--json"])
    assert exc.value.code == 2
    result = json.loads(capsys.readouterr().out)
    assert result["command"] == "erase" and result["ok"] is False
    assert result["error"] == {"message": "unrecognized arguments: --bogus", "exit_code": 2}


def test_an_unknown_option_points_at_the_commands_help(capsys):
    with pytest.raises(SystemExit):
        main(["verify", "x.bin@0x10000000", "--board", "sim-nrf5340dk", "--dry-run"])
    assert capsys.readouterr().err == ("qspi-gdb: error: unrecognized arguments: --dry-run "
                                       "(see 'qspi-gdb verify --help')\n")
