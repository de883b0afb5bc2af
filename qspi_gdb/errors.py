"""Typed errors and the exit codes they map to (README "Exit codes")."""

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
