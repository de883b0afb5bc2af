"""Typed progress events: the programmer emits them, the report draws or logs them.

Phases are named as probe-rs names them: "Reading flash", "Erasing", "Programming", "Verifying".
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Union

READING = "Reading flash"
ERASING = "Erasing"
PROGRAMMING = "Programming"
VERIFYING = "Verifying"
PHASES = (READING, ERASING, PROGRAMMING, VERIFYING)


@dataclass(frozen=True)
class PhaseStarted:
    phase: str
    total_bytes: int


@dataclass(frozen=True)
class PhaseProgress:
    phase: str
    done_bytes: int
    total_bytes: int


@dataclass(frozen=True)
class PhaseFinished:
    phase: str
    total_bytes: int
    seconds: float


@dataclass(frozen=True)
class PhaseFailed:
    phase: str
    message: str


ProgressEvent = Union[PhaseStarted, PhaseProgress, PhaseFinished, PhaseFailed]
ProgressSink = Callable[[ProgressEvent], None]


def ignore(_event: ProgressEvent) -> None:
    """A sink that drops every event (library use without output)."""
