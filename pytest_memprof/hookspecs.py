"""Hooks other plugins can implement to consume pytest-memprof's results."""

from __future__ import annotations

import pytest


@pytest.hookspec
def pytest_memprof_test_result(item: pytest.Item, result: object) -> None:
    """Called once per tracked test with its ``TestMemoryResult`` (peak, leaks, limits, outcome).

    Runs in the process that ran the test (an xdist worker, under xdist), after the memory
    limits were evaluated.
    """
