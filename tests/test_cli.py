import subprocess
import sys

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
