"""`qspi-gdb sim`: run a virtual board as a remote_bitbang server (filled in by the board issue)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add the `sim` subcommand."""
