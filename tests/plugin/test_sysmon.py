"""``--memprof-sys[=INTERVAL]``: system samples during a pytest session (pytester, real subprocess runs)."""

from __future__ import annotations

import re

import pytest

SLOW_SUITE = """
import time

def test_one():
    time.sleep(0.5)

def test_two():
    data = b"x" * (20 << 20)
    time.sleep(0.6)  # several samples while the 20 MiB are held, even on a busy machine
"""

THREAD_CHECK = """
import threading

def pytest_unconfigure(config):
    alive = [thread.name for thread in threading.enumerate() if thread.name == "memprof-sysmon"]
    print(f"sysmon threads alive at unconfigure: {len(alive)}")
"""

SUMMARY_LINE = r"{label}\s+min\s+(?P<min>[\d.]+ ?\S+)\s+max\s+(?P<max>[\d.]+ ?\S+)"


def _figures(stdout: str, label: str) -> tuple[str, str]:
    match = re.search(SUMMARY_LINE.format(label=re.escape(label)), stdout)
    assert match, stdout
    return match["min"], match["max"]


def _bytes(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+) ?(\w+)", text).groups()
    return float(number) * {"B": 1, "KiB": 2**10, "MiB": 2**20, "GiB": 2**30, "TiB": 2**40}[unit]


def test_memprof_sys_shows_min_and_max_in_the_summary(pytester):
    pytester.makepyfile(test_suite=SLOW_SUITE)
    pytester.makeconftest(THREAD_CHECK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--memprof-sys=0.1")
    result.assert_outcomes(passed=2)
    result.stdout.fnmatch_lines(["*memprof: system during the session (* sample(s), every 0.1 s)*"])
    count = int(re.search(r"system during the session \((\d+) sample", result.stdout.str()).group(1))
    assert count >= 3
    stdout = result.stdout.str()
    low, high = (_bytes(text) for text in _figures(stdout, "this pytest process's RSS"))
    assert 0 < low <= high
    assert high - low >= 10 * 2**20  # test_two's 20 MiB showed up in a sample
    low, high = (_bytes(text) for text in _figures(stdout, "system memory used"))
    assert 0 < low <= high
    for label in ("system memory used (%)", "CPU busy (all cores)"):
        low, high = (float(text.rstrip("%")) for text in _figures(stdout, label))
        assert 0 <= low <= high <= 100
    _figures(stdout, "swap used")
    assert "sysmon threads alive at unconfigure: 0" in stdout


def test_a_bare_flag_samples_every_second(pytester):
    pytester.makepyfile(test_suite="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "test_suite.py", "--memprof-sys")
    result.assert_outcomes(passed=1)
    result.stdout.fnmatch_lines(["*memprof: system during the session (* sample(s), every 1 s)*"])


def test_the_ini_option_turns_it_on(pytester):
    pytester.makepyfile(test_suite="def test_a():\n    pass\n")
    pytester.makeini("[pytest]\nmemprof_sys = 0.2\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.stdout.fnmatch_lines(["*memprof: system during the session (* sample(s), every 0.2 s)*"])


def test_without_the_flag_nothing_is_sampled(pytester):
    pytester.makepyfile(test_suite="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider")
    result.assert_outcomes(passed=1)
    assert "system during the session" not in result.stdout.str()


def test_sampling_stops_cleanly_on_ctrl_c(pytester):
    pytester.makepyfile(test_suite="""
import os, signal, time

def test_interrupted():
    time.sleep(0.3)
    os.kill(os.getpid(), signal.SIGINT)
    time.sleep(5)

def test_never_run():
    pass
""")
    pytester.makeconftest(THREAD_CHECK)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--memprof-sys=0.1", timeout=60)
    assert result.ret == pytest.ExitCode.INTERRUPTED
    result.stdout.fnmatch_lines(["*memprof: system during the session*", "*pytest process's RSS*min*max*"])
    result.stdout.fnmatch_lines(["*KeyboardInterrupt*"])
    assert "sysmon threads alive at unconfigure: 0" in result.stdout.str()
    assert "Exception in thread" not in result.stderr.str()


@pytest.mark.parametrize("value", ["0", "-1", "soon", "nan"])
def test_a_bad_interval_is_a_usage_error(pytester, value):
    pytester.makepyfile(test_suite="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", f"--memprof-sys={value}")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memprof-sys: *"])
    assert "Traceback" not in result.stderr.str()


def test_a_path_after_the_bare_flag_gets_a_helpful_error(pytester):
    pytester.makepyfile(test_suite="def test_a():\n    pass\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-sys", "test_suite.py")
    assert result.ret == pytest.ExitCode.USAGE_ERROR
    result.stderr.fnmatch_lines(["*--memprof-sys: expected an interval in seconds, got 'test_suite.py'*"
                                 "write --memprof-sys=INTERVAL*"])


@pytest.mark.browser
def test_the_html_index_charts_the_series(pytester, page):
    pytester.makepyfile(test_suite=SLOW_SUITE)
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-sys=0.1",
                                           "--memprof-html", "memreport")
    result.assert_outcomes(passed=2)
    index = pytester.path / "memreport" / "index.html"
    page.goto(index.as_uri())
    assert page.locator("#system-chart polyline").count() == 3
    points = page.get_attribute("#system-chart .sys-mem", "points").split()
    assert len(points) >= 3
    rows = page.eval_on_selector_all("#system-minmax tbody tr",
                                     "rows => rows.map(r => Array.from(r.cells, c => c.textContent))")
    labels = [row[0] for row in rows]
    assert labels == ["system memory used", "system memory used (%)", "swap used", "CPU busy", "pytest process RSS"]
    stdout = result.stdout.str()
    low, high = _figures(stdout, "this pytest process's RSS")
    assert rows[-1][1:] == [low, high]
    assert not page.console_errors, page.console_errors


def test_the_sampler_thread_is_not_counted_in_tests_memory(pytester):
    pytester.makepyfile(test_suite="""
import time

def test_idle_while_sampling():
    time.sleep(1.0)
""")

    def allocations(*args: str) -> int:
        result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof", *args)
        result.assert_outcomes(passed=1)
        row = re.search(r"^\s*\S+ \S+\s+\S+ \S+\s+([\d,]+)\s+\d+\s+test_suite.py::", result.stdout.str(), re.M)
        assert row, result.stdout.str()
        return int(row.group(1).replace(",", ""))

    alone = allocations()
    sampled = allocations("--memprof-sys=0.005")  # about 200 samples during the test
    # Unignored, the sampler added 264,000 allocations and 82 KiB of "leaks" to this idle test.
    assert sampled <= alone + 50, (alone, sampled)


def test_under_xdist_the_workers_rss_is_reported(pytester):
    pytest.importorskip("xdist")
    pytester.makepyfile(test_suite="""
import time
import pytest

@pytest.mark.parametrize("n", range(4))
def test_x(n):
    data = b"x" * (n * 10 << 20)
    time.sleep(0.6)
""")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-p", "xdist", "-n", "2", "--memprof-sys=0.1")
    result.assert_outcomes(passed=4)
    low, high = (_bytes(text) for text in _figures(result.stdout.str(), "xdist workers' RSS (gw0, gw1)"))
    assert high - low >= 20 * 2**20  # the 30 MiB test ran in a worker
