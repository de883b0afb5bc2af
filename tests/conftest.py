"""Fixtures shared by several test modules (opt-in with `pytestmark = pytest.mark.usefixtures(...)`)."""

from __future__ import annotations

import pytest
import structlog


@pytest.fixture
def logging_to_a_live_stream():
    """An earlier test may have pointed structlog at its own, now closed, captured stream
    (cli.main configures logging); log with structlog's defaults (stdout at call time)."""
    structlog.reset_defaults()
