"""Which debug probes are attached, and which one a command uses.

USB probes come from sysfs (/sys/bus/usb/devices/*: idVendor, idProduct, serial, product and the
interface strings), matched the way OpenOCD 0.12's drivers and its udev rules
(contrib/60-openocd.rules, installed by Debian as /usr/lib/udev/rules.d/60-openocd.rules) know
them:
- SEGGER J-Link (external and the on-board J-Link OB of the Nordic DKs): vendor 0x1366, any
  product (libjaylink opens every 1366 device; the rules list 0101-0108, 1010-1020, 1051, 1055,
  1061).
- CMSIS-DAP v1 (HID) and v2 (bulk), e.g. DAPLink (0d28:0204) or the Raspberry Pi debugprobe
  (2e8a:000c): any device whose product or interface string contains "CMSIS-DAP" (OpenOCD's
  cmsis_dap driver; the udev rule matches ATTRS{product}=="*CMSIS-DAP*").
- ST-LINK: vendor 0x0483, products 3744 (V1), 3748 (V2), 374b/3752 (V2-1), 374d/374e/374f/3753/
  3754 (V3) (interface/stlink.cfg, interface/stlink-dap.cfg `vid_pid` lists and the udev rules).

Virtual boards started as servers (`qspi-gdb sim`) are virtual probes: they announce themselves
in the per-user runtime directory (`virtual-probes/<serial>.json`, see qspi_gdb.sim.registry).

`choose()` picks the probe of a command: the one with --dev-id SERIAL, the only one of the kind
asked for, or none (refused, listing what is attached, when several fit).
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass
from pathlib import Path

from qspi_gdb.errors import UsageError
from qspi_gdb.rundir import RunDirError, process_alive, runtime_dir

SYSFS_USB = Path("/sys/bus/usb/devices")
SEGGER_VID = 0x1366
ST_VID = 0x0483
STLINK_PIDS = frozenset({0x3744, 0x3748, 0x374B, 0x3752, 0x374D, 0x374E, 0x374F, 0x3753, 0x3754})
CMSIS_DAP_TEXT = "CMSIS-DAP"
VIRTUAL_PROBES = "virtual-probes"

# --interface NAME -> the kind of probe it drives
KIND_OF_INTERFACE = {"jlink": "jlink", "cmsis-dap": "cmsis-dap", "stlink": "stlink",
                     "stlink-dap": "stlink", "sim": "virtual"}


@dataclass(frozen=True)
class Probe:
    kind: str  # "jlink" | "cmsis-dap" | "stlink" | "virtual"
    serial: str | None
    product: str
    usb_id: str | None = None  # "1366:1051"
    location: str | None = None  # USB path ("1-1.2", OpenOCD `adapter usb location`)
    board: str | None = None  # virtual probes: the virtual board
    endpoint: str | None = None  # virtual probes: "unix:PATH" or "127.0.0.1:PORT"
    pid: int | None = None  # virtual probes: the board's process
    adapter_khz: float | None = None  # virtual probes: the clock it models

    def describe(self) -> str:
        what = f"{self.product} ({self.usb_id})" if self.usb_id else self.product
        where = f" at USB {self.location}" if self.location else ""
        if self.kind == "virtual":
            where = f", PID {self.pid}"
        return f"{self.serial or '(no serial)'}: {what}{where}"

    def to_json(self) -> dict:
        return {k: v for k, v in asdict(self).items() if v is not None}


def _read(path: Path) -> str | None:
    try:
        return path.read_text(errors="replace").strip()
    except OSError:
        return None


def usb_probes(root: Path = SYSFS_USB) -> list[Probe] | None:
    """The debug probes on USB, or None when USB devices cannot be listed here (no sysfs)."""
    if not root.is_dir():
        return None
    found = []
    for dev in sorted(root.iterdir()):
        if ":" in dev.name:  # an interface, not a device
            continue
        vid, pid = _read(dev / "idVendor"), _read(dev / "idProduct")
        if not vid or not pid:
            continue
        try:
            vendor, product_id = int(vid, 16), int(pid, 16)
        except ValueError:
            continue
        product = _read(dev / "product") or ""
        # its interfaces (1-4:1.0, ...) are listed beside it, and inside it
        interfaces = [_read(i / "interface") or "" for i in root.glob(f"{dev.name}:*")]
        if vendor == SEGGER_VID:
            kind = "jlink"
        elif vendor == ST_VID and product_id in STLINK_PIDS:
            kind = "stlink"
        elif CMSIS_DAP_TEXT in product or any(CMSIS_DAP_TEXT in i for i in interfaces):
            kind = "cmsis-dap"
        else:
            continue
        found.append(Probe(kind, _read(dev / "serial"), product or kind, f"{vid}:{pid}",
                           dev.name))
    return found


def virtual_probes(directory: Path | None = None) -> list[Probe]:
    """Running virtual boards that announced themselves (stale entries are skipped)."""
    if directory is None:
        try:
            directory = runtime_dir() / VIRTUAL_PROBES
        except RunDirError:
            return []
    found = []
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else ():
        try:
            entry = json.loads(path.read_text())
            pid = int(entry["pid"])
        except (OSError, ValueError, KeyError, TypeError):
            continue  # unreadable
        if not process_alive(pid):
            continue  # its board is gone
        found.append(Probe("virtual", str(entry.get("serial")),
                           f"virtual board {entry.get('board')}", board=entry.get("board"),
                           endpoint=entry.get("remote_bitbang"), pid=pid,
                           adapter_khz=entry.get("adapter_khz")))
    return found


def attached(root: Path = SYSFS_USB) -> tuple[list[Probe], bool]:
    """Every probe: USB ones and virtual ones; the flag says whether USB could be listed."""
    usb = usb_probes(root)
    return [*(usb or []), *virtual_probes()], usb is not None


def listing(probes: list[Probe]) -> str:
    return "; ".join(p.describe() for p in probes) or "none"


def choose(interface: str, dev_id: str | None, probes: list[Probe], *,
           usb_listed: bool = True) -> Probe | None:
    """The probe a command uses. interface: the --interface name (its kind of probe); dev_id:
    --dev-id. Refused (UsageError, nothing started) when dev_id names no attached probe or when
    several probes of the kind are attached and none is named. None: let OpenOCD pick (USB
    could not be listed, or no probe of the kind is attached: OpenOCD's own error says so)."""
    kind = KIND_OF_INTERFACE.get(interface)
    fitting = [p for p in probes if p.kind == kind] if kind else []
    if dev_id:
        named = [p for p in probes if p.serial == dev_id]
        if not named:
            if kind != "virtual" and not usb_listed:
                return None  # cannot check here: OpenOCD will
            raise UsageError(f"--dev-id {dev_id}: no attached probe has this serial number "
                             f"(attached: {listing(probes)})")
        of_kind = [p for p in named if p.kind == kind]
        if kind and not of_kind:
            raise UsageError(f"--dev-id {dev_id} is a {named[0].kind} probe, not {interface}: "
                             f"pass --interface {_interface_for(named[0].kind)}")
        return (of_kind or named)[0]
    if len(fitting) > 1:
        what = "virtual boards are running" if kind == "virtual" else f"{interface} probes are attached"
        raise UsageError(f"{len(fitting)} {what}; choose one with -i/--dev-id SERIAL: "
                         f"{listing(fitting)}")
    if fitting:
        return fitting[0]
    if kind == "virtual":
        raise UsageError("no virtual board is running as a probe; start one with "
                         "`qspi-gdb sim --board NAME` or drop --interface sim")
    return None


def _interface_for(kind: str) -> str:
    return {"jlink": "jlink", "cmsis-dap": "cmsis-dap", "stlink": "stlink-dap",
            "virtual": "sim"}.get(kind, kind)
