"""Test helper: speak OpenOCD's remote_bitbang protocol to a virtual board's debug wire."""

from __future__ import annotations

import socket


def read_idcode(sock: socket.socket) -> int:
    """The JTAG IDCODE, scanned over a connected remote_bitbang socket the way OpenOCD does.

    Five TMS=1 clocks reach Test-Logic-Reset (which selects IDCODE), then Idle -> Select-DR ->
    Capture-DR -> Shift-DR and 32 samples of TDO; 'Q' ends the session.
    """
    chars = "26" * 5 + "04" + "26" + "04" + "04"
    for i in range(32):
        tms = 1 if i == 31 else 0
        chars += f"{tms << 1}R{4 | tms << 1}"
    chars += "Q"
    sock.sendall(chars.encode())
    reply = b""
    while len(reply) < 32:
        chunk = sock.recv(64)
        assert chunk
        reply += chunk
    return sum((reply[i] - 48) << i for i in range(32))
