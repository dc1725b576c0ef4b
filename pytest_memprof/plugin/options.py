"""Every plugin option in one table, resolved command line, then ini file, then default.

A command-line option defaults to None ("not given"), so that an ini value is not shadowed by an
argparse default; one helper resolves them all.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import pytest

from ..errors import UsageError
from ..sizes import parse_size


def _bool(text: str) -> bool:
    lowered = text.strip().lower()
    if lowered in ("1", "true", "yes", "on"):
        return True
    if lowered in ("0", "false", "no", "off", ""):
        return False
    raise UsageError(f"expected true or false, got {text!r}")


def _count(text: str) -> int:
    try:
        value = int(str(text).strip())
    except ValueError:
        raise UsageError(f"expected a whole number, got {text!r}") from None
    if value < 0:
        raise UsageError(f"expected a number of 0 or more, got {value}")
    return value


def _percent(text: str) -> float:
    from ..ci.baseline import parse_percent

    return parse_percent(text)


def _github(text: str) -> str:
    if text not in ("auto", "on", "off"):
        raise UsageError(f"expected 'auto', 'on' or 'off', got {text!r}")
    return text


def _keep(text: str) -> str:
    if text not in ("all", "failed"):
        raise UsageError(f"expected 'all' or 'failed', got {text!r}")
    return text


def _sys_interval(text: str) -> float | None:
    from .sysmon import parse_interval

    return parse_interval(text)


@dataclass(frozen=True)
class Option:
    """One setting: its flags, its ini key, how to parse a value, its default and help."""

    name: str
    flags: tuple[str, ...]
    parse: Callable[[str], Any]
    default: Any
    help: str
    flag_is_switch: bool = False
    metavar: str | None = None
    # A flag whose value may be left out (--memprof-sys or --memprof-sys=0.5): the value it then takes.
    value_if_bare: str | None = None


OPTIONS = (
    Option("memprof", ("--memprof",), _bool, False, "track the memory of every test", True),
    Option("memprof_fixtures", ("--memprof-fixtures",), _bool, False,
           "also track setup and teardown (fixtures) of each tracked test", True),
    Option("memprof_limit", ("--memprof-limit",), parse_size, None,
           "limit_memory applied to every test without its own (implies --memprof)", metavar="SIZE"),
    Option("memprof_stacks", ("--memprof-stacks",), _count, 5, "stacks shown in a failure (default 5)",
           metavar="N"),
    Option("memprof_frames", ("--memprof-frames",), _count, 10, "frames shown per stack (default 10)",
           metavar="M"),
    Option("memprof_summary", ("--memprof-summary",), _count, 5,
           "tests listed in the end-of-session summary, by peak; 0 turns it off (default 5)", metavar="N"),
    Option("memprof_top_n", ("--memprof-top-n",), _count, None,
           "as in the older pytest-memprof: tests in the summary and CSV, 0 for all", metavar="N"),
    Option("memprof_csv_file", ("--memprof-csv-file",), str, None,
           "write each tracked test's peak to this CSV file (header: function,memory); tracked: every test "
           "with --memprof, else the tests with a memory marker (the file is written even if none is)",
           metavar="FILE"),
    Option("memprof_bin_dir", ("--memprof-bin-dir",), str, None,
           "write one capture file per tracked test into this folder", metavar="DIR"),
    Option("memprof_keep", ("--memprof-keep",), _keep, "all",
           "with --memprof-bin-dir: keep 'all' captures or only those of 'failed' tests", metavar="all|failed"),
    Option("memprof_native", ("--memprof-native",), _bool, False,
           "record native (C/C++) stacks too", True),
    Option("memprof_no_python_allocators", ("--memprof-no-python-allocators",), _bool, False,
           "hook the system allocator only: Python objects count through pymalloc's arenas, "
           "at far less cost", True),
    Option("memprof_save_baseline", ("--memprof-save-baseline",), str, None,
           "write each tracked test's peak, leaked bytes and allocations to this JSON baseline", metavar="FILE"),
    Option("memprof_baseline_locations", ("--memprof-baseline-locations",), _count, 5,
           "with --memprof-save-baseline: keep each test's N largest locations at the peak and in its leaks, "
           "with their stacks (at most 2 KB a test), so a later run can say where a test grew (default 5; 0: none)",
           metavar="N"),
    Option("memprof_compare", ("--memprof-compare",), str, None,
           "compare each tracked test with this baseline (saved by --memprof-save-baseline)", metavar="FILE"),
    Option("memprof_fail_on_increase", ("--memprof-fail-on-increase",), _percent, None,
           "fail a test whose peak grew by more than PCT (e.g. 10%%; bare: 0, any growth) and by more than "
           "--memprof-min-bytes, against --memprof-compare FILE or, without it, the previous run in pytest's "
           "cache (pytest-memray's --fail-on-increase)", metavar="PCT", value_if_bare="0"),
    Option("memprof_min_bytes", ("--memprof-min-bytes",), parse_size, 64 * 1024,
           "noise floor for --memprof-fail-on-increase: growth below this never fails (default 64KB)",
           metavar="SIZE"),
    Option("memprof_html", ("--memprof-html",), str, None,
           "write an HTML report into this folder: index.html plus a flame graph per test (implies --memprof)",
           metavar="DIR"),
    Option("memprof_junit", ("--memprof-junit",), str, None,
           "write a memory-only JUnit XML report: a testcase per tracked test (every test with --memprof, else "
           "those with a memory marker; written even if none is), a failure per broken limit",
           metavar="FILE"),
    Option("memprof_github", ("--memprof-github",), _github, "auto",
           "GitHub Actions annotations and step summary: auto (when GITHUB_ACTIONS=true), on, off",
           metavar="auto|on|off"),
    Option("memprof_leak_floor", ("--memprof-leak-floor",), parse_size, 64 * 1024,
           "no_leaks ignores leaks smaller than this in total: interpreter free lists keep a few "
           "objects alive (default 64KB)", metavar="SIZE"),
    Option("memprof_sys", ("--memprof-sys",), _sys_interval, None,
           "sample system memory, swap, CPU and this process's RSS every INTERVAL seconds (default 1) in a "
           "background thread: min/max in the summary, a chart in --memprof-html", metavar="INTERVAL",
           value_if_bare="true"),
)
BY_NAME = {option.name: option for option in OPTIONS}


def add_options(parser: pytest.Parser) -> None:
    """Register every option on the command line (default None: not given) and in the ini file."""
    group = parser.getgroup("memprof", "memory profiling (pytest-memprof)")
    for option in OPTIONS:
        if option.flag_is_switch:
            group.addoption(*option.flags, action="store_const", const="true", default=None,
                            dest=option.name, help=option.help)
        elif option.value_if_bare is not None:
            group.addoption(*option.flags, action="store", nargs="?", const=option.value_if_bare, default=None,
                            dest=option.name, metavar=option.metavar, help=option.help)
        else:
            group.addoption(*option.flags, action="store", default=None, dest=option.name,
                            metavar=option.metavar, help=option.help)
        parser.addini(option.name, option.help, type="string", default="")
    group.addoption("--no-memprof", action="store_true", default=False, dest="no_memprof",
                    help="turn pytest-memprof off entirely, markers included")


def given(config: pytest.Config, name: str) -> bool:
    """Whether option ``name`` was set, on the command line or in the ini file."""
    return config.getoption(name) not in (None, "") or config.getini(name) != ""


def resolve(config: pytest.Config, name: str) -> Any:
    """The value of option ``name``: command line, else ini file, else default."""
    option = BY_NAME[name]
    for source, raw in (("command line", config.getoption(name)), ("ini file", config.getini(name))):
        if raw is None or raw == "":
            continue
        try:
            return option.parse(raw)
        except UsageError as error:
            where = option.flags[0] if source == "command line" else f"ini option {name}"
            raise pytest.UsageError(f"{where}: {error}") from None
    return option.default
