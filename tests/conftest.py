"""Fixtures shared by the whole suite."""

from __future__ import annotations

import os
import shutil
import signal
from pathlib import Path

import pytest

import pytest_memprof

pytest_plugins = ["pytester", "tests.diff_programs"]  # diff_programs: the diff tests' captures

# A run started in the background by a non-interactive shell (`cmd &`) inherits SIGINT ignored,
# and so would every program the tests interrupt with it (Ctrl-C tests would see SIGTERM's 143).
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)

# The folder holding the pytest_memprof this run imported: the source tree in a development
# install, site-packages under tox. Subprocesses must import that same copy (the source tree
# has no built extension under tox), then anything else from the repository.
PACKAGE_PARENT = Path(pytest_memprof.__file__).resolve().parent.parent
REPO = Path(__file__).resolve().parent.parent


def subprocess_env(**extra: str) -> dict:
    """os.environ for a subprocess that imports the same pytest_memprof as this test run."""
    path = [str(PACKAGE_PARENT), str(REPO), os.environ.get("PYTHONPATH", "")]
    return {**os.environ, "PYTHONPATH": os.pathsep.join(dict.fromkeys(p for p in path if p)), **extra}


@pytest.fixture(scope="session", autouse=True)
def _symbol_cache_of_the_session(tmp_path_factory):
    """Reports made by the tests (in this process and in every subprocess, which inherit the
    environment) keep symbols in a folder of this session, never in the user's cache; a test that
    sets MEMPROF_SYMBOL_CACHE itself (monkeypatch, a subprocess's env) wins."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MEMPROF_SYMBOL_CACHE", str(tmp_path_factory.mktemp("symbol-cache")))
        yield


@pytest.fixture(autouse=True)
def _inner_runs_without_pytest_memray(request, monkeypatch):
    """pytest-memray is a test dependency (the migration test compares with it): inner pytest runs leave
    its plugin out unless they ask for it with ``-p memray``, which unblocks it. schemathesis (a library
    of the REST API's test) is left out of them too: some of its releases (4.30 on 3.10) import a
    module tree in their pytest_pyfunc_call wrapper on the first test, about 2 MiB that the inner
    suites' figures would count in their first test."""
    if "pytester" in request.fixturenames:
        # runpytest_subprocess passes the first string plugin as ``-p NAME`` before the test's own arguments.
        request.getfixturevalue("pytester").plugins.insert(0, "no:memray")
        monkeypatch.setenv("PYTEST_ADDOPTS", " ".join(filter(None, [os.environ.get("PYTEST_ADDOPTS", ""),
                                                                    "-p no:schemathesis"])))


@pytest.fixture(params=[True, False], ids=["profiled-stacks", "walked-stacks"])
def python_allocators(request) -> bool:
    """Both ways the tracker knows Python stacks: a profile callback while Python's allocators are
    traced, a walk of the interpreter's frames at each allocation with the system allocator only."""
    return request.param


CHROMIUM = "/usr/bin/chromium"
ARTIFACTS = Path(os.environ.get("MEMPROF_TEST_ARTIFACTS", Path(__file__).parent.parent / "test-artifacts"))


@pytest.fixture(scope="session")
def browser():
    """A headless Debian chromium driven by Playwright; skipped with a reason where it is missing."""
    if not (os.path.exists(CHROMIUM) or shutil.which("chromium")):
        pytest.skip("Debian's chromium is not installed (apt-get install chromium); .ci/run installs it")
    sync_api = pytest.importorskip("playwright.sync_api", reason="the playwright package is not installed")
    with sync_api.sync_playwright() as playwright:
        instance = playwright.chromium.launch(
            executable_path=CHROMIUM if os.path.exists(CHROMIUM) else shutil.which("chromium"),
            args=["--no-sandbox", "--disable-gpu"],
        )
        yield instance
        instance.close()


@pytest.fixture
def page(browser, request):
    """A fresh page that fails the test on any console error and saves a screenshot as an artifact."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    errors: list = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.console_errors = errors
    yield page
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    safe = "".join(c if c.isalnum() or c in "-_." else "_" for c in request.node.nodeid)[-120:]
    try:
        page.screenshot(path=str(ARTIFACTS / f"{safe}.png"), full_page=True)
    except Exception:  # a closed page has nothing to show; the test result already says why
        pass
    context.close()
