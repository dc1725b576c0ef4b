"""The pytest plugin (entry point ``memprof``): options, markers and the session object."""

from __future__ import annotations

import pytest

from .. import hookspecs
from . import outputs
from .core import RESULT_KEY, MemprofPlugin
from .markers import LeakStack
from .options import OPTIONS, add_options
from .results import TestMemoryResult

__all__ = ["RESULT_KEY", "LeakStack", "MemprofPlugin", "TestMemoryResult"]
PLUGIN_NAME = "memprof-session"
MEMRAY = "memray"  # pytest-memray's entry point, the name its plugin module is registered under
_HEADER_KEY = pytest.StashKey[str]()


def pytest_addoption(parser: pytest.Parser) -> None:
    """Register the memprof options."""
    add_options(parser)


def pytest_addhooks(pluginmanager: pytest.PytestPluginManager) -> None:
    """Register our hooks (``pytest_memprof_test_result``, ``pytest_memprof_session_finish``)."""
    pluginmanager.add_hookspecs(hookspecs)


def _memprof_asked(config: pytest.Config) -> list[str]:
    """The memprof options given, on the command line or in the ini file."""
    given = []
    for option in OPTIONS:
        if config.getoption(option.name) is not None or config.getini(option.name) != "":
            given.append(option.flags[0])
    return given


def _memray_asked(config: pytest.Config) -> bool:
    if config.getoption(MEMRAY, None):
        return True
    try:
        return bool(config.getini(MEMRAY))
    except ValueError:  # pytest-memray's ini key is not declared: it is not installed
        return False


@pytest.hookimpl(tryfirst=True)
def pytest_cmdline_main(config: pytest.Config) -> None:
    """Settle who tracks before any plugin is configured: pytest-memray, or us, never both.

    Both plugins act on limit_memory markers (pytest-memray even without --memray) and both patch
    the allocator, so each would count the other's work (its 16 MiB of buffers in our peaks).
    """
    manager = config.pluginmanager
    if config.getoption("no_memprof") or not manager.has_plugin(MEMRAY):
        return
    ours = _memprof_asked(config)
    if _memray_asked(config):
        if ours:
            raise pytest.UsageError(f"--memray and {ours[0]} both ask to track memory, and pytest-memray and "
                                    "pytest-memprof would count each other's work: choose one")
        # The user asked for pytest-memray: we stand aside as with --no-memprof (markers stay registered).
        config.option.no_memprof = True
        config.stash[_HEADER_KEY] = "memprof: off for this session (--memray asked for pytest-memray)"
        return
    manager.set_blocked(MEMRAY)  # unregisters it before its pytest_configure ever runs
    config.stash[_HEADER_KEY] = "memprof: pytest-memray's plugin is blocked for this session (give --memray to use it)"


def pytest_report_header(config: pytest.Config) -> str | None:
    """Say once which of pytest-memray and us tracks this session, when both are installed."""
    return config.stash.get(_HEADER_KEY, None)


def pytest_configure(config: pytest.Config) -> None:
    """Unless --no-memprof, register the session plugin and the outputs asked for (marks.py registers the markers)."""
    if config.getoption("no_memprof"):
        return
    config.pluginmanager.register(MemprofPlugin(config), PLUGIN_NAME)
    outputs.register(config)
