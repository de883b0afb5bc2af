"""west and Zephyr: the shared flash request (flags -> request -> API call / command line), the
Zephyr runner against a double of `runners.core` (and the real one when ZEPHYR_BASE is set),
and `west flash-ext` run by the real west in throw-away workspaces onto virtual boards."""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from readme_examples import readme_example

from qspi_gdb.errors import UsageError
from qspi_gdb.integrations.request import (
    FlashRequest,
    add_tool_flags,
    add_zephyr_flags,
    board_preset,
    request_from_args,
)

REPO = Path(__file__).resolve().parents[1]
VENV_BIN = Path(sys.executable).parent
TOOLS = all(shutil.which(t) for t in ("openocd", "gdb-multiarch"))
needs_tools = pytest.mark.skipif(not TOOLS, reason="needs openocd and gdb-multiarch")
USER_FLAGS = ["-i", "000683000000", "-f", "merged.hex", "-t", "hex", "--erase", "--no-reset",
              "--ext-mem-config-file", "ext.json", "--only-qspi"]


def _west_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="west flash-ext")
    add_zephyr_flags(parser)
    add_tool_flags(parser)
    return parser


def test_zephyr_flags_become_one_request():
    args = _west_parser().parse_args([*USER_FLAGS, "--board", "nrf5340dk/nrf5340/cpuapp"])
    request = request_from_args(args)
    assert request == FlashRequest(file="merged.hex", file_type="hex", board="nrf5340dk/nrf5340/cpuapp",
                                   ext_mem_config_file="ext.json", dev_id="000683000000",
                                   erase=True, reset=False, only_qspi=True)
    assert request.argv() == [
        "qspi-gdb", "flash", "merged.hex", "--file-type", "hex", "--board", "nrf5340dk",
        "--config", "ext.json", "--dev-id", "000683000000", "--chip-erase", "--only-qspi",
        "--json"]


def test_reset_is_the_default_as_with_the_nrf_runners():
    args = _west_parser().parse_args(["-f", "app.bin", "--addr", "0x10000000"])
    request = request_from_args(args)
    assert request.reset and request.address == "0x10000000"
    assert "--reset" in request.argv()


@pytest.mark.parametrize("name, preset", [
    ("nrf5340dk/nrf5340/cpuapp", "nrf5340dk"), ("nrf5340dk_nrf5340_cpuapp", "nrf5340dk"),
    ("nrf52840dk/nrf52840", "nrf52840dk"), ("nrf52840dk_nrf52840", "nrf52840dk"),
    ("sim-nrf5340-32mb", "sim-nrf5340-32mb"), (None, None)])
def test_zephyr_board_names_map_to_presets(name, preset):
    assert board_preset(name) == preset


def test_unknown_board_is_a_usage_error():
    with pytest.raises(UsageError, match="no qspi-gdb preset"):
        board_preset("frdm_k64f")


# -- the Zephyr runner --------------------------------------------------------------------


@pytest.fixture(scope="module")
def runners_core():
    """Zephyr's runners.core when ZEPHYR_BASE names a tree, else our double of it."""
    zephyr = os.environ.get("ZEPHYR_BASE")
    where = Path(zephyr) / "scripts" / "west_commands" if zephyr else REPO / "tests" / "zephyr_double"
    sys.path.insert(0, str(where))
    try:
        from runners import core

        from qspi_gdb.integrations import zephyr_runner
        yield core, zephyr_runner
    finally:
        sys.path.remove(str(where))
        for name in [n for n in sys.modules if n == "runners" or n.startswith("runners.")
                     or n == "qspi_gdb.integrations.zephyr_runner"]:
            del sys.modules[name]


def _runner(core, zephyr_runner, argv, **cfg):
    parser = argparse.ArgumentParser(prog="west flash", allow_abbrev=False)
    zephyr_runner.QspiGdbBinaryRunner.add_parser(parser)  # must not redefine a common flag
    args = parser.parse_args(argv)
    defaults = dict(build_dir="build", board_dir="/zephyr/boards/nordic/nrf5340dk",
                    elf_file="build/zephyr/zephyr.elf", exe_file=None,
                    hex_file="build/zephyr/zephyr.hex", bin_file=None, uf2_file=None, file=None)
    config = core.RunnerConfig(**{**defaults, **cfg})
    return zephyr_runner.QspiGdbBinaryRunner.create(config, args)


def test_runner_parses_the_nrf_flags_into_the_same_request(runners_core):
    core, zephyr_runner = runners_core
    caps = zephyr_runner.QspiGdbBinaryRunner.capabilities()
    assert caps.commands == {"flash"} and caps.dev_id and caps.erase and caps.reset and caps.file
    runner = _runner(core, zephyr_runner, [*USER_FLAGS, "--reset"], file="merged.hex",
                     file_type=core.FileType.HEX)
    assert zephyr_runner.QspiGdbBinaryRunner.name() == "qspi-gdb"
    west = request_from_args(_west_parser().parse_args([*USER_FLAGS, "--reset",
                                                        "--board", "nrf5340dk"]))
    assert runner.request == west


def test_runner_defaults_to_the_builds_hex_inside_the_qspi_window(runners_core):
    core, zephyr_runner = runners_core
    runner = _runner(core, zephyr_runner, ["--no-reset"])
    assert runner.request.file == "build/zephyr/zephyr.hex"
    assert runner.request.only_qspi and runner.request.board == "nrf5340dk"
    assert runner.request.argv()[:3] == ["qspi-gdb", "flash", "build/zephyr/zephyr.hex"]


@pytest.mark.integration
@needs_tools
def test_runner_flashes_a_virtual_board(runners_core, tmp_path):
    core, zephyr_runner = runners_core
    image = os.urandom(3000)
    (tmp_path / "app.bin").write_bytes(image)
    runner = _runner(core, zephyr_runner, [
        "-f", str(tmp_path / "app.bin"), "--addr", "0x10002000", "--qspi-board", "sim-nrf5340dk",
        "--sim-image", str(tmp_path / "flash.img"), "--no-reset"])
    runner.run("flash")
    assert (tmp_path / "flash.img").read_bytes()[0x2000:0x2000 + len(image)] == image
    bad = _runner(core, zephyr_runner, ["-f", str(tmp_path / "app.bin"), "--addr", "0x10002000",
                                        "--qspi-board", "sim-nrf5340dk", "-i", "123"])
    with pytest.raises(RuntimeError, match="sim-nrf5340dk is a virtual board"):
        bad.run("flash")


@pytest.mark.skipif(not os.environ.get("ZEPHYR_BASE"), reason="ZEPHYR_BASE not set")
def test_zephyr_finds_the_runner_through_the_module_file(runners_core):
    """With a real Zephyr tree: the file zephyr/module.yml names defines the runner."""
    core, _ = runners_core
    spec = importlib.util.spec_from_file_location("qspi_gdb_runner_file",
                                                  REPO / "scripts" / "qspi_gdb_runner.py")
    spec.loader.exec_module(importlib.util.module_from_spec(spec))
    assert any(cls.name() == "qspi-gdb" for cls in core.ZephyrBinaryRunner.__subclasses__())


# -- west flash-ext with the real west ------------------------------------------------------


def _west_env(tmp_path: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if k != "ZEPHYR_BASE"}
    env["WEST_CONFIG_GLOBAL"] = str(tmp_path / "west-global.cfg")
    env["WEST_CONFIG_SYSTEM"] = str(tmp_path / "west-system.cfg")
    env["PATH"] = f"{VENV_BIN}{os.pathsep}{env['PATH']}"
    return env


@pytest.mark.integration
@needs_tools
def test_readme_west_example_flashes_a_virtual_board(tmp_path):
    image = os.urandom(9000)
    (tmp_path / "zephyr.recovery.bin").write_bytes(image)
    run = subprocess.run(["bash", "-ec", readme_example("west", "sh")], cwd=tmp_path,
                         env=_west_env(tmp_path), capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stdout + run.stderr
    assert "verified 1 range(s) by CRC32 on the target" in run.stdout
    flash = (tmp_path / "flash.img").read_bytes()
    assert flash[0x1E98000:0x1E98000 + len(image)] == image
    # the workspace is there: refusals come back with the tool's exit codes
    ws = tmp_path / "ws"
    for argv, code, text in (
            (["-f", "missing.bin", "--addr", "0x11E98000", "--board", "sim-nrf5340-32mb"], 2,
             "missing.bin: no such file"),
            (["-f", "../zephyr.recovery.bin", "--addr", "0x11E98000", "--board",
              "sim-nrf5340-32mb", "-i", "123"], 2, "sim-nrf5340-32mb is a virtual board"),
            (["-f", "../zephyr.recovery.bin", "--addr", "0x11E98000", "--board", "frdm_k64f"],
             2, "no qspi-gdb preset")):
        again = subprocess.run(["west", "flash-ext", *argv], cwd=ws, env=_west_env(tmp_path),
                               capture_output=True, text=True, timeout=60)
        assert again.returncode == code, again.stderr
        assert text in again.stderr


@pytest.mark.integration
def test_this_repository_as_a_west_project_offers_flash_ext(tmp_path):
    """The shipped west-commands.yml, through a manifest project whose path is this checkout."""
    (tmp_path / "ws" / "manifest").mkdir(parents=True)
    (tmp_path / "ws" / "modules").mkdir()
    (tmp_path / "ws" / "modules" / "qspi-gdb").symlink_to(REPO)
    (tmp_path / "ws" / "manifest" / "west.yml").write_text(
        "manifest:\n"
        "  remotes:\n    - name: local\n      url-base: file:///nonexistent\n"
        "  projects:\n    - name: qspi-gdb\n      remote: local\n      path: modules/qspi-gdb\n"
        "      west-commands: west-commands.yml\n")
    env = _west_env(tmp_path)
    subprocess.run(["west", "init", "-l", "manifest"], cwd=tmp_path / "ws", env=env, check=True,
                   capture_output=True, timeout=60)
    run = subprocess.run(["west", "flash-ext", "--help"], cwd=tmp_path / "ws", env=env,
                         capture_output=True, text=True, timeout=60)
    assert run.returncode == 0, run.stderr
    for flag in ("-i SERIAL, --dev-id SERIAL", "-f FILE, --file FILE", "--file-type",
                 "--erase", "--no-reset", "--ext-mem-config-file"):
        assert flag in run.stdout
