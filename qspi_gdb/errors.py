"""Typed errors and the exit codes they map to (README "Exit codes"), and the "did you mean"
hint every refusal of a misspelt name carries."""

import difflib

EXIT_OK = 0
EXIT_INTERNAL = 1  # an unexpected exception: a bug
EXIT_USAGE = 2  # usage or bad input; nothing was written
EXIT_TARGET = 3  # connection or target failure
EXIT_VERIFY = 4  # verify mismatch
EXIT_INTERRUPTED = 130


class QspiGdbError(Exception):
    """Base of every error the CLI renders as one line and an exit code."""

    exit_code = EXIT_TARGET
    result = None  # the Result so far, where the Python API or the labgrid driver set it


class UsageError(QspiGdbError):
    """Bad arguments, files, addresses or configs: refused before anything is written."""

    exit_code = EXIT_USAGE


class TargetError(QspiGdbError):
    """The probe, OpenOCD, GDB, the loader or the flash chip failed."""

    exit_code = EXIT_TARGET
    result = None  # the Result so far, where the Python API or the labgrid driver set it


class VerifyError(QspiGdbError):
    """The flash does not hold what was written."""

    exit_code = EXIT_VERIFY


class ConnectionLost(TargetError):
    """A process on the way to the target (OpenOCD, a virtual board, gdb-multiarch) has ended:
    nothing more can be asked of the target in this session."""


def connection_lost(exc: BaseException | None) -> ConnectionLost | None:
    """The ConnectionLost behind exc (itself, or what it was raised from), if any."""
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, ConnectionLost):
            return exc
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__
    return None


def closest(word: str, candidates) -> str | None:
    """The candidate nearest to a misspelt word (difflib's ratio of at least 0.6, as Python's
    own suggestions; case ignored when nothing matches as typed), or None."""
    candidates = list(candidates)
    close = difflib.get_close_matches(word, candidates, n=1, cutoff=0.6)
    if close:
        return close[0]
    lowered = {c.lower(): c for c in candidates}
    close = difflib.get_close_matches(word.lower(), list(lowered), n=1, cutoff=0.6)
    return lowered[close[0]] if close else None


def did_you_mean(word: str, candidates, quote: str = "'") -> str:
    """' (did you mean 'x'?)' for the candidate nearest to a misspelt word, or ''."""
    near = closest(word, candidates)
    return f" (did you mean {quote}{near}{quote}?)" if near else ""


class ChipProtected(TargetError):
    """The chip's access-port protection (APPROTECT) keeps the debugger from its core; the
    message says how to unlock it and what that erases."""
