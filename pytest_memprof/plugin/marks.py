"""The memory markers' names, registered by a plugin of their own (entry point ``memprof_markers``).

It stays loaded when the tracking plugin is not (``-p no:memprof``, ``--no-memprof``), so marked
tests still run, the markers inert, without "unknown mark" warnings or ``--strict-markers`` errors.
"""

from __future__ import annotations

import pytest

from .markers import MARKERS


def pytest_configure(config: pytest.Config) -> None:
    """Register each memory marker's name and signature."""
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
