"""pytest overhead: plain pytest vs ``pytest --memprof`` vs ``pytest --memray`` on one suite.

pytest-memray sees only the system allocator unless given --trace-python-allocators; memprof
traces Python's allocators by default. Both memprof modes are timed: ``memprof`` (every object)
and ``memprof, system allocator`` (--memprof-no-python-allocators, the like-for-like one).

The suite: N small tests (a few allocations each) plus a few that allocate tens of MiB. Runs
alternate between the modes, several rounds, and the table shows medians and ratios to plain
pytest: of wall time, of each round's own ratio, and of CPU time (all threads; a busy machine delays
wake-ups more than it slows work). The machine is shared and noisy: differences under 10% are noise.

Then numpy's own ``test_numeric`` suite (``pytest --pyargs numpy._core.tests.test_numeric``, about
1,600 tests; numpy ships its tests) in the same modes (``--suites small,numpy`` picks).

    python benchmarks/pytest_overhead.py [--tests 300] [--rounds 5] [--suites small,numpy]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

SMALL = '''
import pytest

@pytest.mark.parametrize("n", range({count}))
def test_small(n):
    data = [str(i) * 3 for i in range(50)]
    assert len(data) == 50
'''

LARGE = '''
def test_large_bytes():
    assert len(bytearray(40 * 2**20)) == 40 * 2**20

def test_large_list():
    assert len([object() for _ in range(200_000)]) == 200_000

def test_large_dict():
    assert len({i: str(i) for i in range(100_000)}) == 100_000
'''

MODES = {
    "plain": ["-p", "no:memprof", "-p", "no:memray"],
    "memprof": ["--memprof", "-p", "no:memray", "--memprof-summary", "0"],
    "memprof, system allocator": ["--memprof", "--memprof-no-python-allocators", "-p", "no:memray",
                                  "--memprof-summary", "0"],
    "memray": ["--memray", "-p", "no:memprof", "--most-allocations", "0"],
}


NUMPY_SUITE = "numpy._core.tests.test_numeric"


def run_once(suite: Path, mode: str, pyargs: str | None = None) -> tuple[float, float]:
    """Seconds for one pytest run of the suite in ``mode``, wall (the whole process, as a user
    waits) and CPU (user and system, all its threads: steadier on a busy machine, which delays a
    process's wake-ups but not its work); with ``pyargs``, of that installed test module instead,
    run from the folder ``suite``."""
    target = ["--pyargs", pyargs] if pyargs else [str(suite)]
    command = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-p", "no:randomly",
               *MODES[mode], *target]
    # As a user's machine runs pytest: with bytecode (and pytest's rewritten modules) cached. Without
    # it every run compiles and rewrites every plugin module, which charges the plugin for compiling itself.
    env = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, stdout=output, stderr=subprocess.STDOUT, cwd=suite, env=env)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            output.seek(0)
            raise SystemExit(f"{mode} run failed:\n{output.read()[-4000:].decode(errors='replace')}")
    return elapsed, usage.ru_utime + usage.ru_stime


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tests", type=int, default=300, help="small tests in the suite (default 300)")
    parser.add_argument("--rounds", type=int, default=5, help="rounds of each mode (default 5)")
    parser.add_argument("--suites", default="small,numpy", help="comma-separated: small, numpy (default both)")
    args = parser.parse_args()
    suites = args.suites.split(",")
    if set(suites) - {"small", "numpy"}:
        parser.error(f"unknown suites in {args.suites!r}: small, numpy")
    for index, name in enumerate(suites):
        if index:
            print()
        with tempfile.TemporaryDirectory() as folder:
            suite = Path(folder)
            (suite / "pytest.ini").write_text("[pytest]\n")
            if name == "small":
                (suite / "test_small.py").write_text(SMALL.format(count=args.tests))
                (suite / "test_large.py").write_text(LARGE)
                title = f"pytest suite: {args.tests} small tests + 3 large"
            else:
                title = f"pytest --pyargs {NUMPY_SUITE} (numpy's own tests)"
            pyargs = NUMPY_SUITE if name == "numpy" else None
            times: dict = {mode: [] for mode in MODES}
            cpu: dict = {mode: [] for mode in MODES}
            for mode in MODES:  # warm the file cache and the bytecode
                run_once(suite, mode, pyargs)
            for round_index in range(args.rounds):
                order = list(MODES) if round_index % 2 == 0 else list(reversed(MODES))
                for mode in order:
                    wall, used = run_once(suite, mode, pyargs)
                    times[mode].append(wall)
                    cpu[mode].append(used)
        print_table(title, args.rounds, times, cpu)
    return 0


def print_table(title: str, rounds: int, times: dict, cpu: dict) -> None:
    """Medians of each mode and their ratios to plain pytest and to pytest-memray: wall and CPU time,
    and the median of each round's own ratio to plain (a round's runs are neighbours in time, so a
    slow spell of the machine moves both sides of that ratio)."""
    plain, plain_cpu = statistics.median(times["plain"]), statistics.median(cpu["plain"])
    print(f"{title}, {rounds} rounds, alternating; medians (goal: memprof <= 1.3x plain)")
    width = max(len(mode) for mode in MODES)
    print(f"{'mode':<{width}} {'median s':>9} {'vs plain':>9} {'per round':>10} {'CPU s':>7} {'vs plain':>9}   "
          "all runs (wall s)")
    for mode, values in times.items():
        median = statistics.median(values)
        paired = statistics.median(value / base for value, base in zip(values, times["plain"]))
        used = statistics.median(cpu[mode])
        runs = " ".join(f"{value:.2f}" for value in values)
        print(f"{mode:<{width}} {median:>9.2f} {median / plain:>8.2f}x {paired:>9.2f}x {used:>7.2f} "
              f"{used / plain_cpu:>8.2f}x   {runs}")
    memray, memray_cpu = statistics.median(times["memray"]), statistics.median(cpu["memray"])
    for mode in ("memprof", "memprof, system allocator"):
        print(f"{mode} / memray: {statistics.median(times[mode]) / memray:.2f}x wall, "
              f"{statistics.median(cpu[mode]) / memray_cpu:.2f}x CPU")


if __name__ == "__main__":
    sys.exit(main())
