"""Controller subcommands: flash, verify, read, erase, info (filled in by the controller issue)."""

from __future__ import annotations


def register(subparsers) -> None:
    """Add the controller subcommands."""
