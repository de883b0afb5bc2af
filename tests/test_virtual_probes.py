"""Several probes on one host, the probe speed and the nRF5340 network core, through the real
OpenOCD, gdb-multiarch and CLI (issue 14). Virtual boards started as servers are virtual probes
with serial numbers: `probes` lists them, -i/--dev-id picks one, and without it several are
refused with a list; a flash leaves a running network core running."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from virtual_probe import VirtualProbe, wait_gone

from qspi_gdb.cli import main
from qspi_gdb.transport.session import TargetOptions, open_session

pytestmark = [pytest.mark.integration,
              pytest.mark.skipif(not (shutil.which("openocd") and shutil.which("gdb-multiarch")),
                                 reason="needs Debian openocd and gdb-multiarch")]

SIZE = 8 << 20


@pytest.fixture
def runtime(private_runtime) -> Path:
    return private_runtime


def flash_file(path: Path, fill: int) -> Path:
    path.write_bytes(bytes([fill]) * SIZE)
    return path


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_several_virtual_probes_are_listed_chosen_by_serial_and_refused_without_one(
        runtime, tmp_path, capsys):
    a = flash_file(tmp_path / "a.img", 0xA5)
    b = flash_file(tmp_path / "b.img", 0x5B)
    with VirtualProbe("sim-nrf5340dk", "BENCH-A", image=a) as pa, \
            VirtualProbe("sim-nrf5340dk", "BENCH-B", "--adapter-khz", "1000", image=b), \
            VirtualProbe("sim-nrf52840dk", "BENCH-C"):
        code, out, _ = run(capsys, "probes", "--json")
        listing = json.loads(out)
        assert code == 0 and listing["schema"] == "qspi-gdb/probes/1"
        assert {(p["serial"], p["board"], p["kind"]) for p in listing["probes"]} == {
            ("BENCH-A", "sim-nrf5340dk", "virtual"), ("BENCH-B", "sim-nrf5340dk", "virtual"),
            ("BENCH-C", "sim-nrf52840dk", "virtual")}

        code, _, err = run(capsys, "read", "0x10000000", "16", "-o", str(tmp_path / "x.bin"),
                           "--board", "sim-nrf5340dk", "--interface", "sim")
        assert code == 2
        line = err.splitlines()[-1]
        assert line.startswith("qspi-gdb: error: 3 virtual boards are running; choose one with "
                               "-i/--dev-id SERIAL: BENCH-A: virtual board sim-nrf5340dk, PID ")
        assert "BENCH-B: virtual board sim-nrf5340dk" in line and "BENCH-C" in line

        for serial, fill, khz in (("BENCH-B", 0x5B, 1000), ("BENCH-A", 0xA5, 4000)):
            out_file = tmp_path / f"{serial}.bin"
            code, out, err = run(capsys, "read", "0x10000000", "64", "-o", str(out_file),
                                 "--board", "sim-nrf5340dk", "-i", serial, "--json")
            assert code == 0, err
            assert out_file.read_bytes() == bytes([fill]) * 64
            result = json.loads(out)
            assert result["probe"] == {"interface": "sim", "serial": serial, "speed_khz": khz}
            assert result["speed_khz"] == khz

        code, _, err = run(capsys, "info", "--board", "sim-nrf5340dk", "-i", "BENCH-C")
        assert code == 2 and err.splitlines()[-1] == (
            "qspi-gdb: error: --dev-id BENCH-C is the virtual board sim-nrf52840dk, not "
            "sim-nrf5340dk: pass --board sim-nrf52840dk")
        code, _, err = run(capsys, "info", "--board", "sim-nrf5340dk", "-i", "NO-SUCH")
        assert code == 2 and err.splitlines()[-1].startswith(
            "qspi-gdb: error: --dev-id NO-SUCH: sim-nrf5340dk is a virtual board and no virtual "
            "board with this serial number runs (running: BENCH-A: virtual board sim-nrf5340dk")
        code, _, err = run(capsys, "info", "--board", "sim-nrf5340dk", "-i", "BENCH-A",
                           "--sim-image", str(b))
        assert code == 2 and "belongs to the running virtual board" in err
        registry = runtime / "qspi-gdb" / "virtual-probes" / "BENCH-A.json"
        assert registry.exists()
        pa.stop()
        assert wait_gone(registry)  # a board that ends takes its entry with it


def test_a_flash_leaves_a_running_network_core_running(runtime, tmp_path, capsys):
    image = tmp_path / "app.bin"
    image.write_bytes(bytes(range(256)) * 40)
    with VirtualProbe("sim-nrf5340dk", "NETRUN", "--network-core", "running") as probe:
        code, out, err = run(capsys, "flash", f"{image}@0x10040000", "--board", "sim-nrf5340dk",
                             "-i", "NETRUN")
        assert code == 0, err
        code, out, err = run(capsys, "info", "--board", "sim-nrf5340dk", "-i", "NETRUN",
                             "--json")
        assert code == 0, err
        network = json.loads(out)["info"]["network_core"]
        assert network == {"running": True, "forceoff": 0, "access_port": "open"}
        stats = probe.stop()
    net = stats["network_core"]
    assert net["running"] and net["forceoff"] == 0
    assert (net["holds"], net["halt_requests"], net["resets"], net["erased"]) == (0, 0, 0, 0)


def test_info_says_when_the_network_core_is_held_off(tmp_path, capsys):
    code, out, err = run(capsys, "info", "--board", "sim-nrf5340dk")
    assert code == 0, err
    assert ("network core: held in Force-OFF (RESET.NETWORK.FORCEOFF=1), not running; qspi-gdb "
            "leaves it so") in out.splitlines()


def test_the_speed_reaches_the_virtual_boards_clock(tmp_path):
    """--speed is the modelled SWD clock of a board of our own: 64 KiB read at 1000 kHz costs
    about four times the DAP time of 4000 kHz."""
    modelled = {}
    for khz in (1000, 4000):
        options = TargetOptions(board="sim-nrf5340dk", chip="nrf5340", virtual=True,
                                adapter_khz=khz, wait_scale=50.0, wait_floor_s=60.0)
        with open_session(options) as session:
            assert session.route.speed_khz == khz
            session.link.read_memory(0x20008000, 0x10000)
            board = session.board_process
        modelled[khz] = (board.stats["stats"]["modelled_s"],
                         board.stats["stats"]["dap_transactions"])
    (slow, n_slow), (fast, n_fast) = modelled[1000], modelled[4000]
    # the same work at a quarter of the clock: each DAP transaction's SWD clocks take four
    # times as long (today's model: 46 clocks, 46 us against 11.5 us; a model that also
    # charges USB round trips keeps the ratio above 2)
    assert slow / n_slow > 2 * fast / n_fast
