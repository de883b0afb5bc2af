"""Protected chips through the real OpenOCD, gdb-multiarch and CLI (issue 14): every command on a
locked virtual board fails with one line that says how to unlock it and what that erases;
`recover` refuses without consent and, with it, runs ERASEALL through the CTRL-AP(s) (on the
nRF5340 the network core first, then the application core), keeps the external QSPI flash,
and leaves the chip open for the next command."""

from __future__ import annotations

import json
import random
import shutil

import pytest
from virtual_probe import VirtualProbe

from qspi_gdb.cli import main

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("private_runtime"),
              pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                                 reason="needs Debian openocd and gdb-multiarch")]

CHIPS = {"sim-nrf52840dk": ("nRF52840", 0x12000000), "sim-nrf5340dk": ("nRF5340", 0x10000000)}
FLASH_SIZE = 8 << 20


def locked_line(board: str, dev_id: str = "") -> str:
    chip = CHIPS[board][0]
    select = f" --dev-id {dev_id}" if dev_id else ""
    return (f"qspi-gdb: error: {board}: the {chip} is protected (APPROTECT keeps the debugger "
            f"from its application core); unlock it with `qspi-gdb recover --board {board}"
            f"{select} --yes-erase-internal-flash`, which erases the chip's internal flash, "
            "UICR and RAM but not the external QSPI flash")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.mark.parametrize("board", list(CHIPS))
def test_every_command_on_a_locked_board_fails_with_one_line(board, tmp_path, capsys):
    image = tmp_path / "app.bin"
    image.write_bytes(bytes(range(256)) * 16)
    xip = CHIPS[board][1]
    commands = [["info"], ["flash", f"{image}@{xip:#x}"], ["verify", f"{image}@{xip:#x}"],
                ["read", hex(xip), "4096", "-o", str(tmp_path / "r.bin")],
                ["erase", hex(xip), "4096"]]
    if board == "sim-nrf5340dk":
        commands = commands[:2]  # the same path for every command: two suffice here
    for command in commands:
        code, out, err = run(capsys, *command, "--board", board, "--sim-locked", "--json")
        assert code == 3, err
        assert err.splitlines()[-1] == locked_line(board)
        result = json.loads(out)
        assert result["ok"] is False and result["error"]["exit_code"] == 3
    assert not (tmp_path / "r.bin").exists()


def test_recover_without_consent_refuses_and_touches_nothing(tmp_path, capsys):
    with VirtualProbe("sim-nrf5340dk", "LOCKED-1", "--locked") as board:
        code, out, err = run(capsys, "recover", "--board", "sim-nrf5340dk", "-i", "LOCKED-1",
                             "--json")
        stats = board.stop()
    assert code == 2
    assert err.splitlines()[-1] == (
        "qspi-gdb: error: recover erases the nRF5340's internal flash, UICR and RAM (network "
        "and application cores; the external QSPI flash is not erased); pass "
        "--yes-erase-internal-flash to do it")
    assert json.loads(out)["error"]["exit_code"] == 2
    assert stats["protection"] == {"locked": {"application": True, "network": True},
                                   "eraseall": []}
    assert stats["dap_transactions"] == 0  # nothing reached the board


@pytest.mark.parametrize("board, order", [("sim-nrf52840dk", ["application"]),
                                          ("sim-nrf5340dk", ["network", "application"])])
def test_recover_erases_through_every_ctrl_ap_keeps_the_qspi_flash_and_opens_the_chip(
        board, order, tmp_path, capsys):
    flash = tmp_path / "ext.img"
    contents = random.Random(14).randbytes(FLASH_SIZE)
    flash.write_bytes(contents)
    xip = CHIPS[board][1]
    image = tmp_path / "new.bin"
    image.write_bytes(random.Random(15).randbytes(6000))
    with VirtualProbe(board, "LOCKED-2", "--locked", image=flash) as probe:
        code, _, err = run(capsys, "flash", f"{image}@{xip + 0x20000:#x}", "--board", board,
                           "-i", "LOCKED-2")
        assert code == 3 and err.splitlines()[-1] == locked_line(board, "LOCKED-2")

        code, out, err = run(capsys, "recover", "--board", board, "-i", "LOCKED-2",
                             "--yes-erase-internal-flash", "--json")
        assert code == 0, err
        result = json.loads(out)
        cores = result["recover"]["cores"]
        assert [c["core"] for c in cores] == order
        assert all(c["erase"] == "ok" and c["was_open"] is False for c in cores)
        assert cores[-1]["open_now"] is True  # the application core's access port
        assert result["probe"] == {"interface": "sim", "serial": "LOCKED-2", "speed_khz": 4000}

        # open now: the next command works, and the external flash kept its contents
        code, _, err = run(capsys, "read", hex(xip), "0x10000", "-o", str(tmp_path / "r.bin"),
                           "--board", board, "-i", "LOCKED-2")
        assert code == 0, err
        assert (tmp_path / "r.bin").read_bytes() == contents[:0x10000]
        code, _, err = run(capsys, "flash", f"{image}@{xip + 0x20000:#x}", "--board", board,
                           "-i", "LOCKED-2")
        assert code == 0, err
        stats = probe.stop()
    assert stats["protection"]["eraseall"] == order
    assert not any(stats["protection"]["locked"].values())
    after = flash.read_bytes()
    assert after[0x20000:0x20000 + 6000] == image.read_bytes()
    assert after[:0x20000] == contents[:0x20000]
    assert after[0x20000 + 6000:] == contents[0x20000 + 6000:]  # kept around the image


def test_recover_works_on_a_board_of_its_own_and_says_what_it_did(capsys):
    code, out, err = run(capsys, "recover", "--board", "sim-nrf52840dk", "--sim-locked",
                         "--yes-erase-internal-flash")
    assert code == 0, err
    lines = out.splitlines()
    assert lines[0].startswith("application core (CTRL-AP 1): ERASEALL ok in ")
    assert lines[0].endswith("; was protected; access port open now")
    assert lines[-1].startswith(
        "Recovered the nRF52840: erased its internal flash, UICR and RAM (application core; the "
        "external QSPI flash is not erased); the access port stays open until the next reset "
        "or power cycle. Finished in ")


def test_a_protected_network_core_alone_does_not_stop_the_application_core(capsys):
    with VirtualProbe("sim-nrf5340dk", "NETLOCK", "--locked", "network",
                      "--network-core", "running") as probe:
        code, out, err = run(capsys, "info", "--board", "sim-nrf5340dk", "-i", "NETLOCK")
        stats = probe.stop()
    assert code == 0, err
    assert ("network core: running (RESET.NETWORK.FORCEOFF=0), its access port is closed "
            "(APPROTECT); qspi-gdb leaves it running") in out.splitlines()
    assert stats["network_core"]["running"] is True


def test_recover_needs_our_openocd(capsys):
    code, _, err = run(capsys, "recover", "--board", "nrf5340dk", "--gdb-server",
                       "127.0.0.1:2331", "--yes-erase-internal-flash")
    assert code == 2
    assert err.splitlines()[-1] == (
        "qspi-gdb: error: this works below the core, through an OpenOCD qspi-gdb starts; it "
        "cannot go through --gdb-server")
