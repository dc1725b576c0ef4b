"""Hooks other plugins implement to consume pytest-memprof's results; our own outputs are fed the same way."""

from __future__ import annotations

import pytest


@pytest.hookspec
def pytest_memprof_test_result(item: pytest.Item, result: object, capture: object) -> None:
    """Called once per tracked test with its ``TestMemoryResult`` (peak, leaks, limits, verdict).

    Runs in the process that ran the test (an xdist worker, under xdist), after the memory limits
    were evaluated and before the figures are attached to the report. ``capture`` is the test's
    window as a ``Capture``, read from memory: valid only during the call (the next test reuses it).
    """


@pytest.hookspec
def pytest_memprof_session_finish(session: pytest.Session, results: list, overhead_s: float) -> None:
    """Called once at the end of the session with every tracked test's ``TestMemoryResult``.

    Runs where the session's results meet: the xdist controller under xdist (the results are rebuilt
    from the workers' reports: figures, verdict, outcome and failure text, no stacks), else the only
    process. ``overhead_s``: seconds memprof's own work took around the tests in this process.
    """
