"""The session's outputs: plugin objects of their own, registered only when asked for, fed through our hooks."""

from __future__ import annotations

from pytest_memprof.plugin.verdict import Failure, FailureKind

pytest_plugins = ["pytester"]

LIST_PLUGINS = """
def pytest_unconfigure(config):
    names = sorted(name for name, _ in config.pluginmanager.list_name_plugin() if name.startswith("memprof-"))
    print("MEMPROF PLUGINS " + " ".join(names))
"""


def registered(result) -> list[str]:
    line = next(line for line in result.stdout.lines if line.startswith("MEMPROF PLUGINS"))
    return line.split()[2:]


def test_each_output_is_a_plugin_registered_only_when_its_option_is_on(pytester):
    pytester.makeconftest(LIST_PLUGINS)
    pytester.makepyfile("def test_a():\n    pass\n")
    plain = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--memprof-github=off",
                                          "--memprof-summary", "0")
    assert registered(plain) == ["memprof-output-log", "memprof-session"]
    every = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "--memprof-github=on", "--memprof",
                                          "--memprof-junit", "j.xml", "--memprof-csv-file", "c.csv",
                                          "--memprof-save-baseline", "b.json", "--memprof-html", "report")
    assert registered(every) == ["memprof-baseline", "memprof-csv", "memprof-github", "memprof-html", "memprof-junit",
                                 "memprof-output-log", "memprof-session", "memprof-summary"]


def test_the_html_report_renders_each_test_from_memory(pytester):
    # The page comes from the window's in-memory capture: the capture file just written is not read back.
    pytester.makeconftest("""
from pytest_memprof import capture

def refuse(*args, **kwargs):
    raise AssertionError("a capture file was read back")

capture.Capture.open = refuse
""")
    pytester.makepyfile("def test_a():\n    data = bytearray(2_000_000)\n")
    result = pytester.runpytest_subprocess("-p", "no:cacheprovider", "--memprof-html", "report")
    result.assert_outcomes(passed=1)
    [page] = (pytester.path / "report" / "flamegraphs").glob("*.html")
    html = page.read_text()
    assert "test_a" in html and 'id="truncated"' not in html  # a closed window is a whole capture


def test_a_verdict_is_figures_until_it_is_shown():
    failure = Failure(FailureKind.PEAK_OVER_LIMIT, 3 << 20, 1 << 20, "limit_memory('1MB')")
    assert failure.about_peak
    assert failure.text() == "Test used 3.0 MiB at its peak, more than the 1.0 MiB allowed by limit_memory('1MB')."
    grew = Failure(FailureKind.PEAK_GREW, 150, 100, percent=10)
    assert grew.about_peak and "+50.0% over the baseline" in grew.text()
    assert not Failure(FailureKind.LEAKED, 1 << 20).about_peak
