"""The pytest plugin (entry point ``memprof``): options, markers and the session object."""

from __future__ import annotations

import pytest

from .. import hookspecs
from .core import RESULT_KEY, MemprofPlugin
from .markers import MARKERS
from .options import add_options
from .results import TestMemoryResult

__all__ = ["RESULT_KEY", "MemprofPlugin", "TestMemoryResult"]
PLUGIN_NAME = "memprof-session"


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the memprof options."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register ``pytest_memprof_test_result``."""
    pluginmanager.add_hookspecs(hookspecs)


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers and, unless --no-memprof, the session plugin."""
    for name, description in MARKERS.items():
        config.addinivalue_line("markers", f"{name}: {description}")
    if config.getoption("no_memprof"):
        return
    config.pluginmanager.register(MemprofPlugin(config), PLUGIN_NAME)
