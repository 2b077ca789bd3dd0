"""The fault tests' worker processes: stopped (SIGCONT, SIGTERM, then SIGKILL) when the test ends."""

from __future__ import annotations

import subprocess
from collections.abc import Iterator

import pytest

from worker_procs import stop_workers


@pytest.fixture
def workers() -> Iterator[list[subprocess.Popen[bytes]]]:
    procs: list[subprocess.Popen[bytes]] = []
    yield procs
    stop_workers(procs)
