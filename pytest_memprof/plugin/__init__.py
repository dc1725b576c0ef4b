"""The pytest plugin (entry point ``memprof``): options, markers and the session object."""

from __future__ import annotations

import pytest

from .. import hookspecs
from . import outputs
from .core import RESULT_KEY, MemprofPlugin
from .markers import MARKERS, LeakStack
from .options import add_options
from .results import TestMemoryResult

__all__ = ["RESULT_KEY", "LeakStack", "MemprofPlugin", "TestMemoryResult"]
PLUGIN_NAME = "memprof-session"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the memprof options."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register our hooks (``pytest_memprof_test_result``, ``pytest_memprof_session_finish``)."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and, unless --no-memprof, the session plugin and the outputs asked for."""
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    if config.getoption("no_memprof"):
        return
    if config.pluginmanager.has_plugin("memray"):
        # Both plugins act on limit_memory markers and both patch the allocator: their numbers
        # would include each other's work.
        config.issue_config_time_warning(
            pytest.PytestConfigWarning(
                "pytest-memray is installed too: both plugins act on limit_memory markers and track "
                "allocations at once. Run with -p no:memray (or uninstall pytest-memray)."
            ),
            stacklevel=2,
        )
    config.pluginmanager.register(MemprofPlugin(config), PLUGIN_NAME)
    outputs.register(config)
