"""The memory-bus contract shared by the core, the peripherals and the debug port.

A bus decodes an address to RAM, a peripheral model or nothing. Accesses to nothing, or that a
peripheral refuses, raise BusFault: a debugger sees a FAULT ACK / data abort and the core a
bus fault, never a silent zero.
"""

from __future__ import annotations

from typing import Protocol


class BusFault(Exception):
    def __init__(self, addr: int, write: bool, why: str = "no device at this address") -> None:
        super().__init__(f"bus fault: {'write' if write else 'read'} at 0x{addr:08X}: {why}")
        self.addr = addr
        self.write = write
        self.why = why


class Bus(Protocol):
    def read(self, addr: int, size: int) -> int:
        """Read 1, 2 or 4 bytes (naturally aligned), little-endian value."""

    def write(self, addr: int, size: int, value: int) -> None:
        """Write 1, 2 or 4 bytes (naturally aligned)."""


class Memory(Protocol):
    """Byte-level RAM access used by EasyDMA models."""

    def read(self, addr: int, n: int) -> bytes: ...

    def write(self, addr: int, data: bytes) -> None: ...
