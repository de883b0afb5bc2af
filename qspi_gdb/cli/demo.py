"""`qspi-gdb demo` (`make demo`): the case that started the project, on a virtual board.

Creates an example 512,583-byte image, flashes it at XIP address 0x11E98000 (flash offset
0x1E98000) of the 32 MiB virtual nRF5340 board configured by the nrfutil ext-mem JSON from
examples/, through the real OpenOCD and gdb-multiarch, verifies it (CRC32 on target), prints the
summary and reads a few bytes back through the same path.
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Callable

IMAGE_BYTES = 512_583
XIP_ADDRESS = 0x11E98000
BOARD = "sim-nrf5340-32mb"
EXAMPLES = Path(__file__).resolve().parents[2] / "examples"  # a checkout; a wheel writes its own
CONFIG = EXAMPLES / "nrf5340_32mb_ext_mem.json"
CONFIG_TEXT = """\
{"firmware_config": {"peripheral": "QSPI"},
 "pins": {"sck": 17, "csn": 18, "io0": 13, "io1": 14, "io2": 15, "io3": 16},
 "flash_size": 33554432, "sck_frequency": 8000000, "address_mode": "MODE32BIT",
 "readoc": "READ4IO", "writeoc": "PP4IO", "pp_size": "PPSIZE256",
 "sck_delay": 0, "rx_delay": 0, "page_size": 4096}
"""


def example_image(size: int = IMAGE_BYTES, seed: int = 5340) -> bytes:
    """Deterministic stand-in for zephyr.recovery.bin: a recognisable header, then noise."""
    header = b"qspi-gdb demo image: zephyr.recovery.bin stand-in\n"
    return header + random.Random(seed).randbytes(size - len(header))


def hexdump(data: bytes, base: int) -> str:
    lines = []
    for i in range(0, len(data), 16):
        chunk = data[i:i + 16]
        text = "".join(chr(b) if 32 <= b < 127 else "." for b in chunk)
        lines.append(f"  {base + i:08X}  {chunk.hex(' '):<47}  {text}")
    return "\n".join(lines)


def run_demo(qspi_gdb: Callable[[list[str]], int], workdir: str | Path = "build/demo", *,
             fresh: bool = True) -> int:
    """Flash the seed case with the command line `qspi_gdb` (its main), read it back, show it;
    returns the exit code."""
    work = Path(workdir)
    work.mkdir(parents=True, exist_ok=True)
    image_path = work / "zephyr.recovery.bin"
    image = example_image()
    image_path.write_bytes(image)
    config = CONFIG if CONFIG.is_file() else work / "nrf5340_32mb_ext_mem.json"
    if not config.is_file():
        config.write_text(CONFIG_TEXT)
    flash_file = work / "flash-32mb.bin"
    if fresh and flash_file.exists():
        flash_file.unlink()

    print(f"Flashing {image_path} ({len(image):,} bytes) at 0x{XIP_ADDRESS:08X} on {BOARD} "
          f"with {config}", flush=True)
    common = ["--board", BOARD, "--config", str(config), "--sim-image", str(flash_file)]
    code = qspi_gdb(["flash", f"{image_path}@0x{XIP_ADDRESS:08X}", *common])
    if code:
        return code

    readback = work / "readback.bin"
    code = qspi_gdb(["read", f"0x{XIP_ADDRESS:08X}", "64", "-o", str(readback), *common])
    if code:
        return code
    data = readback.read_bytes()
    same = "matches the image" if data == image[:64] else "DIFFERS from the image"
    print(f"Read back 64 bytes at 0x{XIP_ADDRESS:08X} ({same}):")
    print(hexdump(data, XIP_ADDRESS))
    if data != image[:64]:
        return 4
    # Where to go from here: the flash file persists, so the next command sees the same chip.
    print(f"The virtual board's flash is kept in {flash_file}; next, try:\n"
          f"  .venv/bin/qspi-gdb verify {image_path}@0x{XIP_ADDRESS:08X} {' '.join(common)}\n"
          f"  .venv/bin/qspi-gdb info {' '.join(common)}")
    return 0
