"""GitHub Actions output through pytester, with GITHUB_ACTIONS and GITHUB_STEP_SUMMARY set."""

from __future__ import annotations

import pytest

from pytest_memprof.ci.github import MemoryFailure, annotations, escape_data, escape_property

SUITE = """
import pytest

@pytest.mark.limit_memory("1MB")
def test_over():
    data = bytearray(3 * 2**20)

def test_fine():
    data = bytearray(1000)

@pytest.mark.parametrize("name", ["a|b<script>"])
@pytest.mark.limit_memory("1MB")
def test_hostile(name):
    data = bytearray(2 * 2**20)
"""


def test_annotations_point_at_the_test_definition_and_the_summary_is_written(pytester, monkeypatch):
    summary = pytester.path / "summary.md"
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_STEP_SUMMARY", str(summary))
    pytester.makepyfile(test_gh=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof")
    result.assert_outcomes(passed=1, failed=2)
    errors = [line for line in result.stdout.lines if line.startswith("::error ")]
    assert len(errors) == 2
    # pytest locates a decorated test at its first decorator: here the limit_memory marker.
    assert errors[0].startswith("::error file=test_gh.py,line=3,title=Memory%3A test_gh.py%3A%3Atest_over::")
    assert "%0A" in errors[0] and "\n" not in errors[0]  # the message keeps its lines, escaped
    text = summary.read_text()
    assert text.startswith("## Memory (pytest-memprof)")
    assert "| `test_gh.py::test_over` | 3.0 MiB |" in text
    assert "2 test(s) failed on memory" in text
    assert "<script>" not in text and "a\\|b&lt;script&gt;" in text


def test_annotations_are_placed_relative_to_the_checkout_when_the_suite_is_in_a_subfolder(pytester, monkeypatch):
    # A monorepo: the suite (and pytest's rootdir) in a subfolder of what GitHub checked out.
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    monkeypatch.setenv("GITHUB_WORKSPACE", str(pytester.path.parent))
    monkeypatch.delenv("GITHUB_STEP_SUMMARY", raising=False)
    pytester.makeini("[pytest]\n")
    pytester.makepyfile(test_gh=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof")
    errors = [line for line in result.stdout.lines if line.startswith("::error ")]
    assert len(errors) == 2
    assert errors[0].startswith(f"::error file={pytester.path.name}/test_gh.py,line=3,"), errors[0]


def test_github_output_can_be_turned_off(pytester, monkeypatch):
    monkeypatch.setenv("GITHUB_ACTIONS", "true")
    pytester.makepyfile(test_gh=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-github=off")
    assert not [line for line in result.stdout.lines if line.startswith("::error")]


def test_no_github_output_outside_actions(pytester, monkeypatch):
    monkeypatch.delenv("GITHUB_ACTIONS", raising=False)
    pytester.makepyfile(test_gh=SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert not [line for line in result.stdout.lines if line.startswith("::")]


def test_annotations_are_capped_at_ten():
    failures = [MemoryFailure(f"t.py::test_{i}", "t.py", i, "too big") for i in range(13)]
    lines = annotations(failures)
    assert len([line for line in lines if line.startswith("::error")]) == 10
    assert lines[-1].startswith("::warning") and "3 more" in lines[-1]


@pytest.mark.parametrize("raw, data, prop", [
    ("50%\nx", "50%25%0Ax", "50%25%0Ax"),
    ("a:b,c", "a:b,c", "a%3Ab%2Cc"),
    ("\r", "%0D", "%0D"),
])
def test_escaping_follows_the_workflow_command_rules(raw, data, prop):
    assert escape_data(raw) == data
    assert escape_property(raw) == prop
