"""Tracking overhead: ``memprof run`` vs ``memray run`` vs untracked, Python-only and native modes.

Also the size of each tracker's capture and the time its ``stats`` command takes to read it.

Each shared workload (../shared/bench/workloads/*.py) runs in every mode, the modes alternating
within a round (forward, then backward) so that a slow spell of the shared machine hits all
modes alike; the table shows medians and each tracker's overhead (its time minus untracked)
as a ratio to memray's in the same configuration. Pairs compare like with like: memprof hooks
Python's allocators by default, memray only with --trace-python-allocators, so each memprof mode
is paired with the memray mode that sees the same events.

    python benchmarks/overhead.py [--rounds 3] [--scale 0.5] [--workloads py_alloc,np_alloc] [--top-pad]
                                  [--modes "memprof,memprof (profile callback)"]

memprof follows Python calls through sys.monitoring on 3.12+ and a PEP 523 frame evaluation
function on 3.9-3.11; the "profile callback" modes run it with MEMPROF_CALLS=profile (the callback
it falls back to when neither can be had), and a table compares the two.

A last table puts ``memprof`` (every object seen) beside memray's default mode, the goal of
issue 19: no more overhead than memray charges to see only what reaches the system allocator.

``--top-pad`` runs every mode with MALLOC_TOP_PAD_=64MiB: np_alloc otherwise measures mostly
how often glibc trims the heap, which any allocation made in between (by a tracker) changes.
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

ROOT = Path(__file__).resolve().parent.parent
# The shared workloads sit beside the checkout (../shared) or beside the worktrees' folder (../../shared).
WORKLOADS = next((folder for folder in (ROOT.parent / "shared" / "bench" / "workloads",
                                        ROOT.parent.parent / "shared" / "bench" / "workloads") if folder.is_dir()),
                 ROOT.parent / "shared" / "bench" / "workloads")

MEMPROF = [sys.executable, "-m", "pytest_memprof", "run", "-q", "-f", "-o", "{out}"]
MEMRAY = [sys.executable, "-m", "memray", "run", "-q", "-f", "-o", "{out}"]
MODES = {
    "untracked": [sys.executable],
    "untracked, top pad": [sys.executable],
    "memprof": MEMPROF,
    "memray --trace-python-allocators": [*MEMRAY, "--trace-python-allocators"],
    "memprof --no-python-allocators": [*MEMPROF, "--no-python-allocators"],
    "memray": MEMRAY,
    "memprof --native": [*MEMPROF, "--native"],
    "memray --native --trace-python-allocators": [*MEMRAY, "--native", "--trace-python-allocators"],
    "memprof --native --no-python-allocators": [*MEMPROF, "--native", "--no-python-allocators"],
    "memray --native": [*MEMRAY, "--native"],
}
if sys.version_info >= (3, 12):
    MODES["memprof (profile callback)"] = MEMPROF
    MODES["memprof --native (profile callback)"] = [*MEMPROF, "--native"]
# (sys.monitoring mode, profile callback mode)
CALL_PAIRS = [("memprof", "memprof (profile callback)"), ("memprof --native", "memprof --native (profile callback)")]
# (memprof mode, memray mode seeing the same events, table section)
PAIRS = [
    ("memprof", "memray --trace-python-allocators", "python-only, all Python allocations"),
    ("memprof --no-python-allocators", "memray", "python-only, system allocator only"),
    ("memprof --native", "memray --native --trace-python-allocators", "native, all Python allocations"),
    ("memprof --native --no-python-allocators", "memray --native", "native, system allocator only"),
]


def run_once(mode: str, workload: Path, folder: Path) -> tuple[float, int | None, float | None]:
    """Wall-clock seconds of one run of ``workload`` in ``mode`` (the whole process); for a tracked
    mode also the capture's size in bytes and the seconds its tracker's ``stats`` takes on it."""
    out = folder / "capture.bin"
    command = [part.format(out=out) for part in MODES[mode]] + [str(workload)]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    if mode.endswith("(profile callback)"):
        env["MEMPROF_CALLS"] = "profile"
    if mode == "untracked, top pad":
        # glibc otherwise trims and regrows the heap top all the time in np_alloc; a tracker's own
        # small allocations hide that cost, so an untracked run can look slower than a tracked one.
        env["MALLOC_TOP_PAD_"] = str(64 << 20)
    started = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=env, cwd=folder)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"{mode} on {workload.name} failed:\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    if not out.exists():
        return elapsed, None, None
    size = out.stat().st_size
    tool = "pytest_memprof" if mode.startswith("memprof") else "memray"
    started = time.perf_counter()
    stats = subprocess.run([sys.executable, "-m", tool, "stats", str(out)], capture_output=True, text=True, env=env,
                           cwd=folder)
    stats_s = time.perf_counter() - started
    if stats.returncode != 0:
        raise SystemExit(f"{tool} stats after {mode} on {workload.name} failed:\n{stats.stderr[-2000:]}")
    out.unlink()
    return elapsed, size, stats_s


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=3, help="runs of each mode per workload (default 3)")
    parser.add_argument("--scale", default="0.5", help="BENCH_SCALE for the workloads (default 0.5)")
    parser.add_argument("--workloads", help="comma-separated names (default: every workload)")
    parser.add_argument("--top-pad", action="store_true", help="run every mode with MALLOC_TOP_PAD_=64MiB")
    parser.add_argument("--modes", help="comma-separated modes to run (default: all; both untracked ones always)")
    parser.add_argument("--workloads-dir", type=Path, default=WORKLOADS,
                        help=f"folder of the workload scripts (default {WORKLOADS})")
    args = parser.parse_args()
    workloads = args.workloads_dir.resolve()  # each run starts in a temporary folder
    modes = list(MODES)
    if args.modes:
        wanted = {"untracked", "untracked, top pad", *(m.strip() for m in args.modes.split(","))}
        unknown = wanted - set(MODES)
        if unknown:
            parser.error(f"unknown modes {sorted(unknown)}; known: {', '.join(MODES)}")
        modes = [mode for mode in MODES if mode in wanted]
    os.environ["BENCH_SCALE"] = args.scale
    if args.top_pad:
        os.environ["MALLOC_TOP_PAD_"] = str(64 << 20)
    names = args.workloads.split(",") if args.workloads else sorted(
        path.stem for path in workloads.glob("*.py") if not path.stem.startswith("_"))
    missing = [name for name in names if not (workloads / f"{name}.py").is_file()]
    if not names or missing:
        parser.error(f"no workload {', '.join(missing) or 'scripts'} in {workloads} (see --workloads-dir)")
    times: dict = {}
    sizes: dict = {}
    stats_times: dict = {}
    with tempfile.TemporaryDirectory() as folder:
        for name in names:
            workload = workloads / f"{name}.py"
            for mode in modes:  # warm the file cache and the bytecode
                run_once(mode, workload, Path(folder))
            for round_index in range(args.rounds):
                order = modes if round_index % 2 == 0 else list(reversed(modes))
                for mode in order:
                    elapsed, size, stats_s = run_once(mode, workload, Path(folder))
                    times.setdefault((name, mode), []).append(elapsed)
                    if size is not None:
                        sizes.setdefault((name, mode), []).append(size)
                        stats_times.setdefault((name, mode), []).append(stats_s)
                print(f"  {name}: round {round_index + 1}/{args.rounds} done", file=sys.stderr)
    print(f"BENCH_SCALE={args.scale}{', MALLOC_TOP_PAD_=64MiB' if args.top_pad else ''}, {args.rounds} rounds "
          "alternating; medians in seconds; "
          "overhead = mode - the faster of the two untracked runs")
    print()
    print("| workload | " + " | ".join(modes) + " |")
    print("|---|" + "---|" * len(modes))
    for name in names:
        cells = [f"{statistics.median(times[(name, mode)]):.2f}" for mode in modes]
        print(f"| {name} | " + " | ".join(cells) + " |")

    def overheads(name: str, mode: str, other_mode: str) -> tuple[float, float, str]:
        """Each mode's time minus the faster untracked run's, and their ratio."""
        base = min(statistics.median(times[(name, untracked)]) for untracked in ("untracked", "untracked, top pad"))
        mine = statistics.median(times[(name, mode)]) - base
        other = statistics.median(times[(name, other_mode)]) - base
        return mine, other, f"{mine / other:.2f}" if other > 0.02 else "n/a (overhead ~0)"

    pairs = [(ours, theirs, label) for ours, theirs, label in PAIRS if ours in modes and theirs in modes]
    if pairs:
        print()
        print("| configuration | workload | memprof overhead s | memray overhead s | ratio (goal <= 0.7 native) |")
        print("|---|---|---|---|---|")
    for ours, theirs, label in pairs:
        for name in names:
            mine, other, ratio = overheads(name, ours, theirs)
            print(f"| {label} | {name} | {mine:.2f} | {other:.2f} | {ratio} |")
    if not args.top_pad:
        for name in names:
            plain, padded = (statistics.median(times[(name, mode)]) for mode in ("untracked", "untracked, top pad"))
            if plain > 1.25 * padded:
                # Then each mode's time depends on whether anything happens to sit at the heap's top.
                print(f"\n{name}: untracked takes {plain / padded:.1f}x as long without MALLOC_TOP_PAD_ "
                      "(glibc trimming and regrowing the heap top): its rows measure that more than the "
                      "trackers; compare them with --top-pad.")
    if pairs:
        print()
        print("| configuration | workload | memprof capture MB | memray capture MB | size ratio (goal <= 1) "
              "| memprof stats s | memray stats s | stats ratio |")
        print("|---|---|---|---|---|---|---|---|")
    for ours, theirs, label in pairs:
        for name in names:
            mine, other = (statistics.median(sizes[(name, mode)]) for mode in (ours, theirs))
            mine_s, other_s = (statistics.median(stats_times[(name, mode)]) for mode in (ours, theirs))
            print(f"| {label} | {name} | {mine / 1e6:.2f} | {other / 1e6:.2f} | {mine / other:.2f} "
                  f"| {mine_s:.2f} | {other_s:.2f} | {mine_s / other_s:.2f} |")
    if "memprof" in modes and "memray" in modes:
        # Issue 19, goal 1: seeing every object should cost no more than memray's default, which
        # sees only what reaches the system allocator (pymalloc hides small objects from it).
        print()
        print("| every object: memprof vs memray's default mode | memprof overhead s | memray overhead s "
              "| ratio (goal <= 1.0) |")
        print("|---|---|---|---|")
        for name in names:
            mine, other, ratio = overheads(name, "memprof", "memray")
            print(f"| {name} | {mine:.2f} | {other:.2f} | {ratio} |")
    calls = [(ours, theirs) for ours, theirs in CALL_PAIRS if ours in modes and theirs in modes]
    if calls:
        print()
        print("| memprof mode | workload | sys.monitoring overhead s | profile callback overhead s | ratio |")
        print("|---|---|---|---|---|")
        for ours, theirs in calls:
            for name in names:
                mine, other, ratio = overheads(name, ours, theirs)
                print(f"| {ours} | {name} | {mine:.2f} | {other:.2f} | {ratio} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
