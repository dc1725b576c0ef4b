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

Then the big-capture goal of issue 19 (item 5): ``flamegraph`` and ``table`` on a capture of 10
million allocations (MEMPROF_BENCH_ALLOCATIONS scales it; both trackers see every object), time and
peak RSS of the report process (``wait4``'s maxrss of a fresh process each run), ours against
memray's (goal: at most 0.5x), after one uncounted warm-up run of each; and start-up: ``run``
of an empty script against ``python`` of it (goal: at most 1.2x) and against ``memray run``, in a
venv laid out as a wheel install lays it out (see clean_install: an editable install's finder
imports pathlib and re into every interpreter, python's own run too).

Then native reports (issue 19 item 3): ``memprof stats``, ``flamegraph`` and ``tree`` of a
``--native`` capture of np_alloc against memray's of its own ``--native`` capture (goal: at most
0.5x each). ``memray tree`` is an interactive viewer that does not end by itself, so it is timed
until its first screen is written (its root row), ours until the whole tree is printed. Each
counted run is cold: a fresh XDG_CACHE_HOME, so no symbol cache carries over.

Every command runs with bytecode caching on, as on a user's machine (memray's modules are compiled
at install, python's own always are; ours are after their first run), whatever
PYTHONDONTWRITEBYTECODE the caller sets; the big, start-up and native sections first run each command
once, uncounted.

Then the symbol cache: ``stats`` and ``tree`` on a ``--native`` capture of np_alloc with the
cache empty and filled (warm/cold below 1.0: the cache saves that share).

    python benchmarks/reports.py [--rounds 5] [--scale 0.5] [--workloads py_alloc,threads]
                                 [--sections workloads,scale,big,startup,native,symbols]
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

ROOT = Path(__file__).resolve().parents[1]
# The shared workloads sit beside the checkout (../shared) or beside the worktrees' folder (../../shared).
WORKLOADS = next((folder for folder in (ROOT.parent / "shared" / "bench" / "workloads",
                                        ROOT.parent.parent / "shared" / "bench" / "workloads") if folder.is_dir()),
                 ROOT.parent / "shared" / "bench" / "workloads")


def run(command: list[str], cwd: Path, env: dict[str, str]) -> float:
    """Seconds for ``command``; exits with its output if it fails."""
    started = time.perf_counter()
    result = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if result.returncode != 0:
        raise SystemExit(f"failed: {' '.join(command)}\n{result.stdout[-2000:]}\n{result.stderr[-2000:]}")
    return elapsed


def run_measured(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, int]:
    """Seconds and peak RSS (bytes) of ``command``'s own process; exits with its output if it fails."""
    started = time.perf_counter()
    with tempfile.TemporaryFile() as output:
        process = subprocess.Popen(command, cwd=cwd, env=env, stdout=output, stderr=subprocess.STDOUT)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        process.returncode = os.waitstatus_to_exitcode(status)
        if process.returncode != 0:
            output.seek(0)
            raise SystemExit(f"failed: {' '.join(command)}\n{output.read()[-2000:].decode(errors='replace')}")
    return elapsed, usage.ru_maxrss * 1024  # KiB on Linux


BIG = """
import os
n = int(os.environ.get("MEMPROF_BENCH_ALLOCATIONS", "10000000"))
def leaf(i):
    return bytearray(i % 64 + 1)
def middle(i):
    return leaf(i)
keep = []
for i in range(n):
    block = middle(i)
    if i % 1000 == 0:
        keep.append(block)
"""


def big_capture(work: Path, env: dict[str, str], memprof: list[str], memray: list[str], rounds: int) -> None:
    """Print time and peak RSS of flamegraph and table on a capture of many allocations, both tools.

    The report commands run with bytecode caching on, as on a user's machine (memray's modules are
    compiled at install; ours are after the warm-up run), and the warm-up is not counted.
    """
    (work / "big.py").write_text(BIG)
    count = int(env.get("MEMPROF_BENCH_ALLOCATIONS", "10000000"))
    run([*memprof, "run", "-q", "-f", "-o", "big.memprof.bin", "big.py"], work, env)
    run([*memray, "run", "-q", "-f", "--trace-python-allocators", "-o", "big.memray.bin", "big.py"], work, env)
    sizes = {tool: (work / f"big.{tool}.bin").stat().st_size for tool in ("memprof", "memray")}
    print(f"\n{count:,} allocations (MEMPROF_BENCH_ALLOCATIONS), every object traced by both; captures "
          f"{sizes['memprof'] / 2**20:.1f} MiB (memprof) / {sizes['memray'] / 2**20:.1f} MiB (memray); "
          f"{rounds} alternating rounds, medians; goal: ratio <= 0.5\n")
    print("| report | memprof s | memray s | time ratio | memprof peak RSS MiB | memray peak RSS MiB | RSS ratio |")
    print("|---|---|---|---|---|---|---|")
    for report in ("flamegraph", "table"):
        commands = {
            "memprof": [*memprof, report, "-f", "-o", f"big.{report}.memprof.html", "big.memprof.bin"],
            "memray": [*memray, report, "-f", "-o", f"big.{report}.memray.html", "big.memray.bin"],
        }
        figures: dict[str, list[tuple[float, int]]] = {"memprof": [], "memray": []}
        for tool in commands:
            run_measured(commands[tool], work, env)
        for round_number in range(rounds):
            for tool in (["memprof", "memray"] if round_number % 2 == 0 else ["memray", "memprof"]):
                figures[tool].append(run_measured(commands[tool], work, env))
        seconds = {tool: statistics.median(t for t, _ in values) for tool, values in figures.items()}
        rss = {tool: statistics.median(r for _, r in values) / 2**20 for tool, values in figures.items()}
        print(f"| {report} | {seconds['memprof']:.2f} | {seconds['memray']:.2f} | "
              f"{seconds['memprof'] / seconds['memray']:.2f} | {rss['memprof']:.0f} | {rss['memray']:.0f} | "
              f"{rss['memprof'] / rss['memray']:.2f} |")


def clean_install(work: Path) -> tuple[str, dict[str, list[str]]]:
    """A venv as a user's wheel install makes it: its python, and ``memprof`` and ``memray`` console scripts.

    An editable install (``pip install -e``, as ./scripts/test makes) puts a .pth in site-packages
    whose finder imports pathlib, re, importlib.util and urllib.parse into every interpreter of
    that venv, ``python empty.py`` too: 9 ms that python's own start-up never pays elsewhere, that
    hid whatever we import of the same, and that flattered the ratio (1.2x there was 2.4x on a
    wheel install). Here the package is copied into a venv of its own (its compiled extensions
    with it), this environment's site-packages are on a plain .pth line (their own .pth files are
    not run from there), and the scripts are written as pip writes console scripts.
    """
    import importlib.metadata
    import site
    import venv

    home = work / "clean-venv"
    venv.create(home, with_pip=False, symlinks=True)
    python = home / "bin" / "python"
    purelib = subprocess.run([str(python), "-c", "import sysconfig; print(sysconfig.get_path('purelib'))"],
                             capture_output=True, text=True, check=True).stdout.strip()
    shutil.copytree(ROOT / "pytest_memprof", Path(purelib) / "pytest_memprof",
                    ignore=shutil.ignore_patterns("__pycache__", "*.cpp", "*.pyx"))
    (Path(purelib) / "outer-site-packages.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    scripts = {}
    try:
        console_scripts = list(importlib.metadata.entry_points(group="console_scripts"))
    except TypeError:  # 3.9: a dict of groups
        console_scripts = list(importlib.metadata.entry_points().get("console_scripts", ()))
    for name in ("memprof", "memray"):
        entry = next((point for point in console_scripts if point.name == name), None)
        if entry is None:
            raise SystemExit(f"no console script {name} in this environment")
        script = home / "bin" / name
        script.write_text(f"#!{python}\nimport sys\nfrom {entry.module} import {entry.attr}\n"
                          f"if __name__ == '__main__':\n    sys.exit({entry.attr}())\n")
        script.chmod(0o755)
        scripts[name] = [str(script)]
    return str(python), scripts


def startup(work: Path, env: dict[str, str], rounds: int) -> None:
    """Print how long ``run`` of an empty script takes against ``python`` of it (and memray's).

    In a venv as a wheel install makes it (clean_install), with bytecode caching on, as on a
    user's machine (an installed wheel's modules are compiled at install; python's own always
    are): one uncounted warm-up run of each writes our .pyc files, so the rounds time start-up,
    not compiling memprof's sources (several ms under PYTHONDONTWRITEBYTECODE=1, which python's
    stdlib never pays). memprof and memray start as their console scripts, as users start them.
    """
    (work / "empty.py").write_text("")
    python, scripts = clean_install(work)
    env = {name: value for name, value in env.items() if name != "PYTHONPATH"}
    # Each run writes a new file, as a user's `memprof run script.py` does (its default name has
    # the pid in it): rewriting one with -f costs a truncation whose blocks ext4 flushes at close
    # (its replace-by-truncate safeguard), 1.5 ms of a 20 ms run here, which is the disk's, not
    # the tracker's. The old file is removed between runs, untimed.
    outputs = {"memprof run": work / "empty.memprof.bin", "memray run": work / "empty.memray.bin"}
    commands = {
        "python": [python, "empty.py"],
        "memprof run": [*scripts["memprof"], "run", "-q", "-o", str(outputs["memprof run"]), "empty.py"],
        "memray run": [*scripts["memray"], "run", "-q", "-o", str(outputs["memray run"]), "empty.py"],
    }

    def timed(name: str) -> tuple[float, float]:
        if name in outputs:
            outputs[name].unlink(missing_ok=True)
        started = time.perf_counter()
        process = subprocess.Popen(commands[name], cwd=work, env=env, stdout=subprocess.DEVNULL,
                                   stderr=subprocess.DEVNULL)
        _, status, usage = os.wait4(process.pid, 0)
        elapsed = time.perf_counter() - started
        if os.waitstatus_to_exitcode(status) != 0:
            raise SystemExit(f"failed: {' '.join(commands[name])}")
        return elapsed, usage.ru_utime + usage.ru_stime

    for name in commands:
        timed(name)
    times: dict[str, list[float]] = {name: [] for name in commands}
    cpu: dict[str, list[float]] = {name: [] for name in commands}
    for round_number in range(rounds):
        for name in (list(commands) if round_number % 2 == 0 else list(reversed(commands))):
            wall, used = timed(name)
            times[name].append(wall)
            cpu[name].append(used)
    medians = {name: statistics.median(values) for name, values in times.items()}
    cpu_medians = {name: statistics.median(values) for name, values in cpu.items()}
    print(f"\nstart-up, an empty script ({rounds} alternating rounds, medians, bytecode cached, a wheel-like "
          "install; goal: memprof run <= 1.2x python; CPU: user and system time, all threads, steadier "
          "on a busy machine; per round: the median of each round's own ratio)\n")
    print("| command | median s | vs python | per round | CPU s | vs python |")
    print("|---|---|---|---|---|---|")
    for name, median in medians.items():
        paired = statistics.median(value / base for value, base in zip(times[name], times["python"]))
        print(f"| {name} | {median:.4f} | {median / medians['python']:.2f}x | {paired:.2f}x | "
              f"{cpu_medians[name]:.4f} | {cpu_medians[name] / cpu_medians['python']:.2f}x |")


def run_until_shown(command: list[str], cwd: Path, env: dict[str, str], marker: bytes) -> float:
    """Seconds until ``command`` has written ``marker`` to its output (an interactive viewer's first
    screen), then the process is killed; exits with its output if it ends without showing it."""
    started = time.perf_counter()
    process = subprocess.Popen(command, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                               stderr=subprocess.STDOUT)
    seen = b""
    assert process.stdout is not None
    try:
        while marker not in seen:
            chunk = os.read(process.stdout.fileno(), 1 << 16)
            if not chunk:
                raise SystemExit(f"ended without showing {marker!r}: {' '.join(command)}\n"
                                 f"{seen[-2000:].decode(errors='replace')}")
            seen = seen[-len(marker):] + chunk if len(seen) > 1 << 20 else seen + chunk
        return time.perf_counter() - started
    finally:
        process.kill()
        process.wait()


def native_reports(work: Path, env: dict[str, str], memprof: list[str], memray: list[str], rounds: int,
                   script: Path) -> None:
    """Print ``stats``, ``flamegraph`` and ``tree`` of a ``--native`` capture, memprof's against
    memray's, cold runs. memray's tree is an interactive viewer that never ends by itself: it is
    timed to its first screen (its root row written), ours to its whole printed tree."""
    run([*memprof, "run", "-q", "--native", "-o", "native.memprof.bin", str(script)], work, env)
    run([*memray, "run", "-q", "--native", "-o", "native.memray.bin", str(script)], work, env)
    commands = {
        "stats": {"memprof": [*memprof, "stats", "native.memprof.bin"],
                  "memray": [*memray, "stats", "native.memray.bin"]},
        "flamegraph": {"memprof": [*memprof, "flamegraph", "-f", "-o", "native.memprof.html", "native.memprof.bin"],
                       "memray": [*memray, "flamegraph", "-f", "-o", "native.memray.html", "native.memray.bin"]},
        "tree": {"memprof": [*memprof, "tree", "native.memprof.bin"],
                 "memray": [*memray, "tree", "native.memray.bin"]},
    }
    shown = {"tree": {"memray": b"<ROOT>"}}  # timed to this on its output, then stopped

    def timed(report: str, tool: str, environment: dict[str, str]) -> float:
        marker = shown.get(report, {}).get(tool)
        if marker is None:
            return run(commands[report][tool], work, environment)
        return run_until_shown(commands[report][tool], work, environment, marker)

    print(f"\nnative reports, {script.name} captured with --native ({rounds} alternating cold rounds, medians; "
          "goal: each <= 0.5x memray; memray's tree to its first screen)\n")
    print("| report | memprof s | memray s | ratio |")
    print("|---|---|---|---|")
    for report, pair in commands.items():
        times: dict[str, list[float]] = {"memprof": [], "memray": []}
        for tool in pair:
            timed(report, tool, env)  # uncounted: compiles what a first run compiles
        for round_number in range(rounds):
            for tool in (["memprof", "memray"] if round_number % 2 == 0 else ["memray", "memprof"]):
                with tempfile.TemporaryDirectory(prefix="cache-", dir=work) as cache:
                    cold = {key: value for key, value in env.items() if key != "MEMPROF_SYMBOL_CACHE"}
                    times[tool].append(timed(report, tool, {**cold, "XDG_CACHE_HOME": cache}))
        medians = {tool: statistics.median(values) for tool, values in times.items()}
        print(f"| {report} | {medians['memprof']:.2f} | {medians['memray']:.2f} | "
              f"{medians['memprof'] / medians['memray']:.2f} |")


def symbol_cache(work: Path, env: dict[str, str], memprof: list[str], rounds: int, workloads: Path) -> None:
    """Print ``stats`` and ``tree`` on a ``--native`` capture of np_alloc without the symbol cache
    (off), with it empty (cold: every object's symbols and DWARF read, then written) and filled by
    an earlier report (warm)."""
    script = workloads.resolve() / "np_alloc.py"
    capture = work / "np_alloc.native.bin"
    run([*memprof, "run", "-q", "-f", "--native", "-o", str(capture), str(script)], work, env)
    folders = {"off": "0", "cold": str(work / "symbols-cold"), "warm": str(work / "symbols-warm")}
    print(f"\nsymbol cache: reports on a --native capture of np_alloc (BENCH_SCALE={env['BENCH_SCALE']}, "
          f"{capture.stat().st_size / 2**20:.1f} MiB) with the cache off, empty (cold) and filled by an earlier "
          f"report (warm); {rounds} alternating rounds, medians\n")
    print("| report | off s | cold s | warm s | warm/cold |")
    print("|---|---|---|---|---|")
    for report in ("stats", "tree"):
        command = [*memprof, report, str(capture)]
        run(command, work, {**env, "MEMPROF_SYMBOL_CACHE": folders["warm"]})  # fills the warm cache
        times: dict[str, list[float]] = {kind: [] for kind in folders}
        for round_number in range(rounds):
            for kind in (list(folders) if round_number % 2 == 0 else list(reversed(folders))):
                if kind == "cold":
                    shutil.rmtree(folders["cold"], ignore_errors=True)
                times[kind].append(run(command, work, {**env, "MEMPROF_SYMBOL_CACHE": folders[kind]}))
        medians = {kind: statistics.median(values) for kind, values in times.items()}
        print(f"| {report} | {medians['off']:.2f} | {medians['cold']:.2f} | {medians['warm']:.2f} | "
              f"{medians['warm'] / medians['cold']:.2f} |")

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
    parser.add_argument("--sections", default="workloads,scale,big,startup,native,symbols",
                        help="comma-separated parts to run: workloads, scale, big, startup, native, symbols "
                        "(default: all)")
    parser.add_argument("--workloads-dir", type=Path, default=WORKLOADS,
                        help=f"folder of the workload scripts (default {WORKLOADS})")
    args = parser.parse_args()
    sections = set(args.sections.split(","))
    unknown = sections - {"workloads", "scale", "big", "startup", "native", "symbols"}
    if unknown:
        parser.error(f"unknown sections {sorted(unknown)}")
    # Bytecode cached, as on a user's machine: an installed wheel's modules (memray's) are compiled
    # at install and python's own always are, so ours are too after their first run, instead of
    # being compiled at every run under a PYTHONDONTWRITEBYTECODE=1 of the caller's.
    cached = {name: value for name, value in os.environ.items() if name != "PYTHONDONTWRITEBYTECODE"}
    env = {**cached, "BENCH_SCALE": args.scale,
           "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    memprof = [sys.executable, "-m", "pytest_memprof"]
    memray = memray_command()
    rows = []
    with tempfile.TemporaryDirectory(prefix="memprof-bench-reports-") as folder:
        work = Path(folder)
        for name in args.workloads.split(",") if "workloads" in sections else []:
            script = args.workloads_dir.resolve() / f"{name}.py"
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
            if "scale" in sections:
                scale_case(work, env, memprof, args.rounds)
            if "big" in sections:
                big_capture(work, env, memprof, memray, args.rounds)
            if "startup" in sections:
                startup(work, env, args.rounds)
            if "native" in sections:
                native_reports(work, env, memprof, memray, args.rounds, args.workloads_dir.resolve() / "np_alloc.py")
            if "symbols" in sections:
                symbol_cache(work, env, memprof, args.rounds, args.workloads_dir)
    if not rows:
        print(scale_lines.getvalue(), end="")
        return 0
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
