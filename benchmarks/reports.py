"""Report cost: ``memprof flamegraph`` vs ``memray flamegraph``, time and HTML size.

Each workload of ``../shared/bench/workloads/`` is captured once by ``memprof run`` and once by
``memray run --trace-python-allocators`` (both then see every Python object, as memprof does by
default). Then the two flame-graph commands, plain and with ``--temporal``, run alternately
on their own capture, several rounds, as a user would run them (whole process). The table shows medians and ratios
memprof/memray: below 1.0 is better. The machine is shared and noisy: differences under 10%
are noise.

Then the scale case of the reports issue: a capture of 1 million allocations from 10,000
distinct stacks, its flame graph's size, and how long headless chromium takes to show it
(from navigation to the first frame drawn; median of the rounds).

    python benchmarks/reports.py [--rounds 5] [--scale 0.5] [--workloads py_alloc,threads]
"""

from __future__ import annotations

import argparse
import contextlib
import io
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

WORKLOADS = Path(__file__).resolve().parents[1].parent / "shared" / "bench" / "workloads"
ROOT = Path(__file__).resolve().parents[1]


def run(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds for ``command``; exits with its output if it fails."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def memray_command() -> list[str]:
    """``memray`` beside this interpreter (or on PATH), else ``python -m memray``."""
    beside = Path(sys.executable).with_name("memray")
    if beside.exists():
        return [str(beside)]
    return [shutil.which("memray")] if shutil.which("memray") else [sys.executable, "-m", "memray"]


MANY_STACKS = Path(__file__).resolve().parents[1] / "examples" / "many_stacks.py"


def open_times(html: Path, rounds: int) -> list[float] | None:
    """Seconds from navigation to the first drawn frame in headless chromium, or None without one."""
    chromium = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else shutil.which("chromium")
    try:
        from playwright.sync_api import sync_playwright
    except ImportError:
        return None
    if not chromium:
        return None
    times = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=chromium, args=["--no-sandbox", "--disable-gpu"])
        for _ in range(rounds):
            page = browser.new_page(viewport={"width": 1280, "height": 900})
            started = time.perf_counter()
            page.goto(html.as_uri())
            page.wait_for_selector("#graph .frame")
            times.append(time.perf_counter() - started)
            page.close()
        browser.close()
    return times


def scale_case(work: Path, env: dict[str, str], memprof: list[str], rounds: int) -> None:
    """Print the size and opening time of the flame graph of 1M allocations from 10,000 stacks."""
    shutil.copy(MANY_STACKS, work / "many_stacks.py")
    run([*memprof, "run", "-q", "-o", "many.bin", "many_stacks.py"], work, env)
    print("\n1 million allocations from 10,000 distinct stacks:")
    for extra in ([], ["--temporal"]):
        html = work / f"many{''.join(extra)}.html"
        render = statistics.median(
            run([*memprof, "flamegraph", *extra, "-f", "-o", str(html), "many.bin"], work, env) for _ in range(rounds))
        opened = open_times(html, rounds)
        shown = f"{statistics.median(opened):.2f} s to open in headless chromium" if opened else "no chromium"
        print(f"  flamegraph {' '.join(extra):<10} {render:.2f} s to write, {html.stat().st_size / 2**20:.2f} MiB, "
              f"{shown}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating runs of each command (default 5)")
    parser.add_argument("--scale", default="0.5", help="BENCH_SCALE for the workloads (default 0.5)")
    parser.add_argument("--workloads", default="py_alloc,np_alloc,threads,deep_stack",
                        help="comma-separated workload names (default: all but noop)")
    args = parser.parse_args()
    env = {**os.environ, "BENCH_SCALE": args.scale,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    memprof = [sys.executable, "-m", "pytest_memprof"]
    memray = memray_command()
    rows = []
    with tempfile.TemporaryDirectory(prefix="memprof-bench-reports-") as folder:
        work = Path(folder)
        for name in args.workloads.split(","):
            script = WORKLOADS / f"{name}.py"
            if not script.exists():
                raise SystemExit(f"no workload {script}")
            ours, theirs = work / f"{name}.memprof.bin", work / f"{name}.memray.bin"
            run([*memprof, "run", "-q", "-o", str(ours), str(script)], work, env)
            run([*memray, "run", "-q", "--trace-python-allocators", "-o", str(theirs), str(script)], work, env)
            captures = {"memprof": ours.stat().st_size, "memray": theirs.stat().st_size}
            for mode in ("plain", "temporal"):
                extra = ["--temporal"] if mode == "temporal" else []
                outputs = {tool: work / f"{name}.{mode}.{tool}.html" for tool in ("memprof", "memray")}
                commands = {
                    "memprof": [*memprof, "flamegraph", *extra, "-f", "-o", str(outputs["memprof"]), str(ours)],
                    "memray": [*memray, "flamegraph", *extra, "-f", "-o", str(outputs["memray"]), str(theirs)],
                }
                times: dict[str, list[float]] = {"memprof": [], "memray": []}
                for round_number in range(args.rounds):
                    # Alternate which goes first, so drifts in machine load hit both alike.
                    order = ["memprof", "memray"] if round_number % 2 == 0 else ["memray", "memprof"]
                    for tool in order:
                        times[tool].append(run(commands[tool], work, env))
                sizes = {tool: outputs[tool].stat().st_size for tool in times}
                medians = {tool: statistics.median(values) for tool, values in times.items()}
                rows.append((name if mode == "plain" else f"{name} -t", medians, sizes, captures))
            print(f"{name}: done", file=sys.stderr)
        scale_lines = io.StringIO()
        with contextlib.redirect_stdout(scale_lines):
            scale_case(work, env, memprof, args.rounds)
    print(f"\nflame graph of each workload (BENCH_SCALE={args.scale}, {args.rounds} alternating rounds, medians; "
          "-t: with --temporal)\n")
    header = (f"{'workload':<15} {'memprof s':>10} {'memray s':>10} {'time ratio':>11} {'memprof KiB':>12} "
              f"{'memray KiB':>11} {'size ratio':>11} {'captures KiB (memprof/memray)':>31}")
    print(header)
    print("-" * len(header))
    for name, medians, sizes, captures in rows:
        print(f"{name:<15} {medians['memprof']:>10.2f} {medians['memray']:>10.2f} "
              f"{medians['memprof'] / medians['memray']:>11.2f} {sizes['memprof'] / 1024:>12.0f} "
              f"{sizes['memray'] / 1024:>11.0f} {sizes['memprof'] / sizes['memray']:>11.2f} "
              f"{captures['memprof'] / 1024:>15.0f} / {captures['memray'] / 1024:<13.0f}")
    print(scale_lines.getvalue(), end="")
    return 0


if __name__ == "__main__":
    sys.exit(main())
