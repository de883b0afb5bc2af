"""Bench images: random bytes (incompressible) and a realistic external-flash image.

`realistic_image()` imitates what a Zephyr product keeps in external QSPI flash, built from a
seeded RNG so every run writes the same bytes:
- an application image (MCUboot secondary slot / XIP code, ~600 KiB): Thumb-2 code made of a
  few hundred recurring instruction words with random immediates and registers, literal pools
  of peripheral and RAM addresses, a string table of log/format strings, and the 0xFF padding
  up to the end of its slot;
- a file-system partition (littlefs-like, 4 KiB blocks): text files (logs, JSON-ish config),
  binary records with zero runs, metadata blocks, and free blocks left erased (0xFF).
It compresses the way such images do (roughly 2-3x with LZ4) and has whole pages of 0xFF.
"""

from __future__ import annotations

import random

KIB = 1024
MIB = 1024 * KIB

_WORDS = ("sensor", "temperature", "humidity", "battery", "voltage", "ok", "error", "retry",
          "connected", "ble", "adv", "interval", "timeout", "flash", "write", "read", "status",
          "config", "device", "name", "value", "true", "false", "null", "mode", "level", "info",
          "debug", "warn", "uptime", "ms", "reset", "reason", "version", "build", "zephyr")
_FORMATS = (b"<inf> app: %s: %d\n", b"<err> flash: write failed at 0x%08x (%d)\n",
            b"<dbg> ble: conn %p interval %u latency %u\n", b"[%08u] %s = %s\n",
            b"assertion \"%s\" failed: file \"%s\", line %d\n", b"%s: unexpected event %d\n")


def random_image(size: int, seed: str) -> bytes:
    return random.Random(seed).randbytes(size)


def _code(rng: random.Random, size: int) -> bytes:
    """Thumb-2-like code: recurring instruction words, literal pools, a string table."""
    common = [rng.randrange(0x10000) for _ in range(300)]
    pools = [0x40000000 + rng.randrange(0x40) * 0x1000, 0x20000000 + rng.randrange(0x40000),
             0x50000000 + rng.randrange(0x1000) * 4]
    out = bytearray()
    while len(out) < size * 3 // 4:
        run = rng.randrange(8, 64)
        for _ in range(run):
            half = rng.choice(common) if rng.random() < 0.7 else rng.randrange(0x10000)
            out += half.to_bytes(2, "little")
        for _ in range(rng.randrange(0, 4)):  # a literal pool after the function
            word = rng.choice(pools) + rng.randrange(0, 0x100, 4)
            out += word.to_bytes(4, "little")
    while len(out) < size:  # the string table
        fmt = rng.choice(_FORMATS)
        out += fmt.replace(b"%s", rng.choice(_WORDS).encode()) + b"\0"
    return bytes(out[:size])


def _fs_block(rng: random.Random) -> bytes:
    kind = rng.random()
    if kind < 0.2:  # free: erased
        return b"\xff" * 4096
    if kind < 0.55:  # a text file block, the tail of the block unused (zeros)
        text = bytearray()
        limit = rng.randrange(2048, 4097)
        while len(text) < limit:
            words = " ".join(rng.choice(_WORDS) for _ in range(rng.randrange(3, 9)))
            text += f"{rng.randrange(100000):06d} {words} = {rng.randrange(-50, 500)}\n".encode()
        return bytes(text[:limit]).ljust(4096, b"\0")
    if kind < 0.85:  # binary records: counters, timestamps, zero padding
        rec = bytearray()
        while len(rec) < 4096:
            rec += rng.randbytes(8) + bytes(4) + rng.randrange(1 << 16).to_bytes(2, "little")
            rec += bytes(2)
        return bytes(rec[:4096])
    # metadata: a small header, tags, the rest erased
    meta = bytearray(rng.randbytes(64))
    for _ in range(rng.randrange(2, 12)):
        meta += b"\x20\x00\x00\x10" + rng.choice(_WORDS).encode().ljust(12, b"\0")
    return bytes(meta).ljust(4096, b"\xff")


def realistic_image(size: int = 4 * MIB, seed: str = "qspi-gdb-realistic") -> bytes:
    """An application slot (code, then 0xFF up to 1 MiB) followed by a file system."""
    rng = random.Random(seed)
    app_size = min(size, 600 * KIB)
    slot = min(size, MIB)
    image = bytearray(_code(rng, app_size))
    image += b"\xff" * (slot - app_size)
    while len(image) < size:
        image += _fs_block(rng)
    return bytes(image[:size])
