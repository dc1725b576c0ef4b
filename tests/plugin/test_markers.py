"""The markers' meanings through pytester: limit_leaks per place and filter_fn as pytest-memray has them."""

from __future__ import annotations

import json
import sys

import pytest

pytest_plugins = ["pytester"]

THREE_PLACES = """
import json
import sys
import pytest

KEPT = []

def leak_a():
    KEPT.append(bytearray(600 * 1024))

def leak_b():
    KEPT.append(bytearray(600 * 1024))

def leak_c():
    KEPT.append(bytearray(600 * 1024))

def leak_big():
    KEPT.append(bytearray(1200 * 1024))

def three_places():
    leak_a()
    leak_b()
    leak_c()
"""


def test_limit_leaks_is_per_place_not_the_total(pytester):
    # Three 600 KiB leaks at three places: 1.8 MiB in all, but no place over 1 MiB.
    pytester.makepyfile(
        THREE_PLACES
        + """
@pytest.mark.limit_leaks("1MB")
def test_three_small_places():
    three_places()

@pytest.mark.limit_leaks("1MB")
def test_one_big_place():
    leak_big()

@pytest.mark.no_leaks
def test_no_leaks_counts_the_total():
    three_places()
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.stdout.fnmatch_lines(
        ["*test_three_small_places PASSED*", "*test_one_big_place MEMORY*", "*test_no_leaks_counts_the_total MEMORY*"]
    )
    result.stdout.fnmatch_lines(
        [
            "*One place leaked 1.2 MiB, more than the 1.0 MiB per place allowed by limit_leaks('1MB').*",
            "*Leaking stacks:*",
            "*leak_big at test_limit_leaks_is_per_place_not_the_total.py:*",
        ]
    )
    result.stdout.fnmatch_lines(["*Test leaked 1.8 MiB (no_leaks*"])


def test_limit_leaks_counts_every_place_over_the_limit(pytester):
    pytester.makepyfile(
        THREE_PLACES
        + """
@pytest.mark.limit_leaks("500KB")
def test_all_over():
    three_places()
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(failed=1)
    result.stdout.fnmatch_lines(
        [
            "*One place leaked 600.? KiB, more than the 500.0 KiB per place allowed by "
            "limit_leaks('500KB') (3 places over the limit).*"
        ]
    )


def test_filter_fn_gets_pytest_memrays_frames_most_recent_first(pytester):
    pytester.makepyfile(
        THREE_PLACES
        + """
def keep_all_but_big(stack):
    seen = [[frame.function, frame.filename, frame.lineno, frame.file, frame.line] for frame in stack.frames]
    with open("seen.json", "a") as out:
        out.write(json.dumps({"frames": seen, "bytes": stack.bytes, "location": stack.location.function}) + "\\n")
    return stack.frames[0].function != "leak_big"

@pytest.mark.limit_leaks("1MB", filter_fn=keep_all_but_big)
def test_big_filtered_out():
    leak_big()

@pytest.mark.limit_leaks("1MB", filter_fn=lambda stack: stack.frames[0].function == "leak_big")
def test_big_kept():
    leak_big()
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.stdout.fnmatch_lines(["*test_big_filtered_out PASSED*", "*test_big_kept MEMORY*"])
    seen = [json.loads(line) for line in (pytester.path / "seen.json").read_text().splitlines()]
    big = [entry for entry in seen if entry["bytes"] >= 1200 * 1024]
    assert len(big) == 1, seen
    frames = big[0]["frames"]
    # Most recent call first: the allocating function, then the test that called it.
    assert [frame[0] for frame in frames[:2]] == ["leak_big", "test_big_filtered_out"]
    assert big[0]["location"] == "leak_big"
    for _function, filename, lineno, file, line in frames[:2]:
        assert filename == file and filename.endswith("test_filter_fn_gets_pytest_memrays_frames_most_recent_first.py")
        assert lineno == line and lineno > 0
    source = (pytester.path / "test_filter_fn_gets_pytest_memrays_frames_most_recent_first.py").read_text()
    assert "KEPT.append(bytearray(1200 * 1024))" in source.splitlines()[frames[0][2] - 1]


@pytest.mark.parametrize(
    "marker",
    [
        "no_leaks(filter_fn=lambda stack: not stack.location.filename.endswith('.py'))",
        "limit_leaks('1KB', filter_fn=lambda stack: stack.location.lineno < 0)",
    ],
)
def test_filter_fn_that_drops_every_stack_passes(pytester, marker):
    pytester.makepyfile(
        THREE_PLACES
        + f"""
@pytest.mark.{marker}
def test_filtered():
    three_places()
"""
    )
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)


OBJECTS = """
import pytest

KEPT = []


class Widget:
    pass


@pytest.mark.limit_leaked_objects
def test_keeps_a_widget():
    KEPT.append(Widget())


@pytest.mark.limit_leaked_objects()
def test_clean():
    widgets = [Widget() for _ in range(10)]
    del widgets


@pytest.mark.limit_leaked_objects(filter_fn=lambda obj: not isinstance(obj, Widget))
def test_keeps_a_widget_filtered_out():
    KEPT.append(Widget())
"""


@pytest.mark.skipif(sys.version_info < (3, 13, 3), reason="object lifetimes are tracked on CPython 3.13.3+")
def test_limit_leaked_objects_fails_on_the_objects_the_test_kept(pytester):
    pytester.makepyfile(OBJECTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-v")
    result.stdout.fnmatch_lines(
        ["*test_keeps_a_widget MEMORY*", "*test_clean PASSED*", "*test_keeps_a_widget_filtered_out PASSED*"]
    )
    result.stdout.fnmatch_lines(["*Test leaked 1 object(s) (limit_leaked_objects;*): 1 Widget."])


@pytest.mark.skipif(sys.version_info >= (3, 13, 3), reason="CPython 3.13.3+ tracks object lifetimes")
def test_limit_leaked_objects_is_refused_before_cpython_3_13_3(pytester):
    pytester.makepyfile(OBJECTS)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*test_keeps_a_widget: limit_leaked_objects needs CPython 3.13.3 or later*"])
    assert "Traceback" not in result.stderr.str()
