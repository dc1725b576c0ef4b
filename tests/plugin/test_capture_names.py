"""One capture file per test in --memprof-bin-dir, each listed in the HTML index and JUnit (issue 17.8)."""

from __future__ import annotations

import xml.etree.ElementTree as ET

from pytest_memprof.plugin.window_capture import capture_file_stems

pytest_plugins = ["pytester"]

PARAMETRIZED = """
import pytest

@pytest.mark.parametrize("name", ["a_b", "a/b", "a b", "a:b", "A_B"])
def test_t(name):
    data = bytearray(100_000)
"""


def test_tests_whose_readable_names_collide_get_files_of_their_own(pytester):
    pytester.makeini("[pytest]\npython_files = *.py\n")  # sub_test_x.py is a test file too
    pytester.mkpydir("sub")
    pytester.path.joinpath("sub", "test_x.py").write_text(PARAMETRIZED)
    pytester.path.joinpath("sub_test_x.py").write_text(PARAMETRIZED)
    result = pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--memprof",
        "--memprof-bin-dir",
        "bins",
        "--memprof-html",
        "report",
        "--junitxml",
        "junit.xml",
    )
    result.assert_outcomes(passed=10)
    files = sorted(path.name for path in (pytester.path / "bins").glob("*.bin"))
    assert len(files) == 10, files
    assert all(name.startswith(("sub_test_x.py_test_t_", "sub_test_x.py_test_t-")) for name in files), files
    # JUnit names each test's own capture, and each page's link is a file of its own.
    captures = {}
    for case in ET.parse(pytester.path / "junit.xml").getroot().iter("testcase"):
        values = {prop.get("name"): prop.get("value") for prop in case.iter("property")}
        captures[case.get("classname") + "::" + case.get("name")] = values["memprof_capture"]
    assert len(captures) == 10 and len(set(captures.values())) == 10
    index = (pytester.path / "report" / "index.html").read_text()
    pages = sorted(path.name for path in (pytester.path / "report" / "flamegraphs").glob("*.html"))
    assert len(pages) == 10
    assert all(f"flamegraphs/{page}" in index for page in pages)
    assert all(f'href="../bins/{name}"' in index for name in files)  # each test's capture, linked


def test_names_stay_readable_and_only_colliding_ones_get_a_hash():
    stems = capture_file_stems(
        [
            "tests/test_a.py::test_one",
            "sub/test_x.py::t",
            "sub_test_x.py::t",
            "t.py::f[a_b]",
            "t.py::f[a/b]",
            "t.py::f[A_B]",
        ]
    )
    assert stems["tests/test_a.py::test_one"] == "tests_test_a.py_test_one"
    assert stems["sub/test_x.py::t"].startswith("sub_test_x.py_t-")
    assert len({stem.lower() for stem in stems.values()}) == len(stems)
    # The same set of tests gives the same names (xdist's workers each compute them).
    assert capture_file_stems(reversed(list(stems))) == stems
