"""Marker values the plugin refuses, and a memory failure that meets a teardown error (issue 17.10)."""

from __future__ import annotations

import pytest

pytest_plugins = ["pytester"]


@pytest.mark.parametrize("size", ['float("inf")', 'float("nan")', '-float("inf")'])
def test_an_infinite_or_nan_limit_is_the_usage_error_other_bad_sizes_get(pytester, size):
    pytester.makepyfile(f"""
import pytest

@pytest.mark.limit_memory({size})
def test_bad():
    pass
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*::test_bad: limit_memory(): invalid memory size *: must be a finite number*"])
    assert "INTERNALERROR" not in result.stdout.str() + result.stderr.str()
    assert "negative" not in result.stderr.str()


def test_warmup_is_at_most_ten(pytester):
    pytester.makepyfile("""
import pytest

@pytest.mark.no_leaks(warmup=10)
def test_ten():
    pass

@pytest.mark.no_leaks(warmup=11)
def test_eleven():
    pass
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*::test_eleven: no_leaks(warmup=...) is at most 10, got 11*"])
    assert "test_ten" not in result.stderr.str()


def test_two_limit_memory_markers_on_one_function_are_a_usage_error(pytester):
    pytester.makepyfile("""
import pytest

pytestmark = pytest.mark.limit_memory("100MB")

class TestInherited:
    pytestmark = pytest.mark.limit_memory("50MB")

    @pytest.mark.limit_memory("10MB")
    def test_one_of_its_own(self):
        pass

@pytest.mark.limit_memory("10MB")
@pytest.mark.limit_memory("20MB")
def test_two():
    pass
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*::test_two: limit_memory is given 2 times on the test; give it once"])
    assert "test_one_of_its_own" not in result.stderr.str()  # class and module markers are inherited, not doubled


TEARDOWN_ERROR = """
import pytest

@pytest.fixture
def breaks_on_teardown():
    yield
    raise RuntimeError("teardown broke")

@pytest.mark.limit_memory("1MB")
def test_over_and_broken(breaks_on_teardown):
    data = bytearray(4 * 2**20)
"""


@pytest.mark.parametrize("flags", [[], ["--memprof-fixtures"]], ids=["call", "fixtures"])
def test_a_teardown_error_after_a_broken_limit_is_an_error_with_the_memory_message(pytester, flags):
    pytester.makepyfile(TEARDOWN_ERROR)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-rA", *flags)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    outcomes = result.parseoutcomes()
    assert outcomes.get("errors") == 1, outcomes
    output = result.stdout.str()
    assert "RuntimeError: teardown broke" in output
    # (4.0 MiB in the call; a little more with --memprof-fixtures, whose window holds pytest's setup too)
    result.stdout.re_match_lines([r"Test used 4\.\d MiB at its peak, more than the 1\.0 MiB allowed by limit_memory"])
    result.stdout.fnmatch_lines(["ERROR *test_over_and_broken*"])
    # The error is the teardown's: never relabelled MEMORY, whichever phase judged the memory.
    errors = output[output.index("ERROR at teardown") :]
    assert "teardown broke" in errors and "Test used 4." in errors
