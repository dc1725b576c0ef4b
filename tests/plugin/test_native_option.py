"""pytest --memprof-native: failure messages and per-test captures with hybrid stacks."""

from __future__ import annotations

import pytest
from pytest_memprof._reader import FORMAT_VERSION

from pytest_memprof import Capture
from tests.conftest import subprocess_env

pytest_plugins = ["pytester"]


def test_memprof_native_shows_numpys_c_frames_in_the_failure_and_the_test_capture(pytester, monkeypatch):
    pytest.importorskip("numpy")
    monkeypatch.setenv("PYTHONPATH", subprocess_env()["PYTHONPATH"])
    pytester.makepyfile("""
import numpy as np
import pytest

@pytest.mark.limit_memory("10MB")
def test_ones():
    data = np.ones(10**7)

def test_small():
    data = [1, 2, 3]
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-native",
                                           "--memprof-bin-dir", "captures", "--memprof-keep", "all")
    result.assert_outcomes(passed=1, failed=1)
    result.stdout.fnmatch_lines([
        "*Test used 76.3 MiB at its peak*",
        "*#1  76.3 MiB in *",
    ])
    text = result.stdout.str()
    message = text[text.index("#1  76.3 MiB"):]
    # Allocating frame first: numpy's C functions, then the test function that called them.
    assert message.index("PyArray_NewFromDescr_int") < message.index("test_ones at"), message
    captures = list((pytester.path / "captures").glob("*test_ones*.bin"))
    assert captures, list((pytester.path / "captures").iterdir())
    capture = Capture.open(captures[0])
    assert capture.metadata.native and capture.metadata.format_version == FORMAT_VERSION
    top = capture.peak_stacks()[0]
    functions = [frame.function for frame in top.frames]
    assert "test_ones" in functions and any(frame.native for frame in top.frames), functions
    assert functions.index("test_ones") < functions.index("PyArray_NewFromDescr_int"), functions
