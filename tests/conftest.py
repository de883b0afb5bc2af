"""Fixtures shared by several test modules (opt-in with `pytestmark = pytest.mark.usefixtures(...)`)."""

from __future__ import annotations

import os
import signal

import pytest
import structlog

# A suite started in the background of a non-interactive shell inherits SIGINT ignored (POSIX
# shells do that to asynchronous commands), and so does every qspi-gdb it starts: the Ctrl-C
# tests would then watch a flash carry on to the end. What a terminal's Ctrl-C meets instead:
if signal.getsignal(signal.SIGINT) is signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


@pytest.fixture
def logging_to_a_live_stream():
    """An earlier test may have pointed structlog at its own, now closed, captured stream
    (cli.main configures logging); log with structlog's defaults (stdout at call time)."""
    structlog.reset_defaults()


@pytest.fixture
def private_runtime(tmp_path, monkeypatch):
    """This test's own per-user runtime directory (locks, the virtual-probe registry): the real
    one may hold other runs' locks and virtual boards. Child processes inherit it."""
    where = tmp_path / "run"
    where.mkdir(mode=0o700)
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(where))
    return where


@pytest.fixture(autouse=True, scope="session")
def private_state_home(tmp_path_factory):
    """Kept-bytes journals (`qspi_gdb.flash.journal`) of the tests' failed flashes go to a
    directory of this run, never the user's ~/.local/state. Child processes inherit it."""
    import os

    where = tmp_path_factory.mktemp("state")
    before = os.environ.get("XDG_STATE_HOME")
    os.environ["XDG_STATE_HOME"] = str(where)
    yield where
    if before is None:
        os.environ.pop("XDG_STATE_HOME", None)
    else:
        os.environ["XDG_STATE_HOME"] = before
