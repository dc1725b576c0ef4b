"""memray's command lines on memprof: the same figures as memray on the same scripts, and memray's
report options accepted under its names, meaning what they mean there."""

from __future__ import annotations

import csv
import json
import re
import shutil
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest

from tests.cli.conftest import assert_one_line_error
from tests.conftest import subprocess_env
from tests.reports.conftest import run_memprof

# Big enough that the few hundred allocations each tracker makes around start-up (they start at
# different points) stay well under 1% of every figure. No C method is called in a loop: up to 3.11
# memray follows calls with a profile function, whose C-call event makes the interpreter build a
# bound method object for each such call (72 bytes) that the program alone never makes, and memray
# counts those (test_frames.py pins that memprof does not).
SCRIPTS = {
    "blocks": """
kept = [None] * 60_000
for i in range(60_000):
    kept[i] = bytearray(500 + i % 100)
del kept[::2]
""",
    "objects": """
def build():
    return [{"key": str(i), "value": [i] * 10} for i in range(50_000)]


data = build()
total = sum(len(entry["value"]) for entry in data)
""",
    "threads": """
import threading

out = [[None] * 20_000 for _ in range(3)]


def work(mine):
    for i in range(20_000):
        mine[i] = bytearray(1_000)  # not b"x" * 1_000: the compiler folds that into one constant


threads = [threading.Thread(target=work, args=(mine,)) for mine in out]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
""",
}

# Line 2 is freed after the two allocations of line 3 (its object and its buffer), line 3 right away.
TEMPORARY = """def pair():
    first = bytearray(300_000)
    second = bytearray(200_000)
    del first
    del second


for _ in range(100):
    pair()
"""


def memray(*args: str, cwd: Path):
    command = shutil.which("memray", path=str(Path(sys.executable).parent)) or shutil.which("memray")
    assert command, "memray is a test dependency (pyproject.toml, test extras)"
    result = subprocess.run(
        [command, *args], capture_output=True, text=True, cwd=cwd, env=subprocess_env(), timeout=300
    )
    assert result.returncode == 0, result.stderr
    return result


def ours(*args: str, cwd: Path):
    result = run_memprof(*args, cwd=cwd)
    assert result.returncode == 0, result.stderr
    return result


def _both_stats(script: str, tmp_path: Path, source: str | None = None) -> tuple[dict, dict]:
    (tmp_path / f"{script}.py").write_text(SCRIPTS.get(script, "") if source is None else source)
    memray("run", "-q", "-f", "--trace-python-allocators", "-o", f"{script}.memray.bin", f"{script}.py", cwd=tmp_path)
    memray("stats", "--json", "-f", "-o", f"{script}.memray.json", f"{script}.memray.bin", cwd=tmp_path)
    ours("run", "-q", "-o", f"{script}.memprof.bin", f"{script}.py", cwd=tmp_path)
    ours("stats", "--json", "-o", f"{script}.memprof.json", f"{script}.memprof.bin", cwd=tmp_path)
    return (json.loads((tmp_path / f"{script}.memprof.json").read_text()),
            json.loads((tmp_path / f"{script}.memray.json").read_text()))


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_peak_total_bytes_and_counts_agree_with_memray(name, tmp_path):
    mine, theirs = _both_stats(name, tmp_path)
    # Totals count what each runner itself allocates before the program starts, and the two differ
    # by far more than 1% of these (memray's runpy.run_path imports pkgutil and, on 3.11, typing;
    # memprof's does not). The same for the modules a runner imports for itself: memray imports
    # threading, memprof leaves it to the program, which then pays for its import as it does under
    # python. Each tool's figures for a script of the program's imports alone are taken off.
    imports = "".join(line + "\n" for line in SCRIPTS[name].splitlines() if line.startswith(("import ", "from ")))
    my_launcher, their_launcher = _both_stats("imports", tmp_path, imports)
    pairs = {
        "peak": (mine["peak_bytes"], theirs["metadata"]["peak_memory"]),
        "total bytes": (mine["total_bytes"] - my_launcher["total_bytes"],
                        theirs["total_bytes_allocated"] - their_launcher["total_bytes_allocated"]),
        "allocations": (mine["total_allocations"] - my_launcher["total_allocations"],
                        theirs["total_num_allocations"] - their_launcher["total_num_allocations"]),
    }
    for figure, (our_value, their_value) in pairs.items():
        assert their_value > 0, figure
        assert abs(our_value - their_value) <= 0.01 * their_value, (name, figure, our_value, their_value)


def _temporary_bytes_by_line(rows, location_of, in_function: str = "pair") -> Counter:
    found: Counter = Counter()
    for row in rows:
        function, line, size = location_of(row)
        if function == in_function:
            found[line] += size
    return found


def _ours_row(row):
    function, _, rest = row["location"].partition(" at ")
    return function, int(rest.rsplit(":", 1)[1]) if rest else 0, int(row["bytes"])


def _memray_row(row):
    innermost = row["stack_trace"].split("|")[0].split(";")
    if len(innermost) != 3:  # an allocation with no Python frame
        return "", 0, int(row["size"])
    function, _, line = innermost
    return function, int(line), int(row["size"])


# A block held by one thread while another allocates hundreds of times: memray counts only the
# holding thread's own allocations between the block's allocation and its free.
THREADED_TEMPORARY = """import threading

ready = threading.Event()
done = threading.Event()


def holder():
    for _ in range(20):
        block = bytearray(300_000)
        ready.set()
        done.wait()
        done.clear()
        own = bytearray(8)
        del block


def churner():
    for _ in range(20):
        ready.wait()
        ready.clear()
        junk = [bytearray(100) for _ in range(200)]
        del junk
        done.set()


threads = [threading.Thread(target=holder), threading.Thread(target=churner)]
for thread in threads:
    thread.start()
for thread in threads:
    thread.join()
"""


def test_temporary_counts_the_allocating_threads_allocations_as_memray(tmp_path):
    (tmp_path / "threads.py").write_text(THREADED_TEMPORARY)
    memray("run", "-q", "--trace-python-allocators", "-o", "theirs.bin", "threads.py", cwd=tmp_path)
    ours("run", "-q", "-o", "ours.bin", "threads.py", cwd=tmp_path)
    for threshold in (1, 50):
        option = ["--temporary-allocation-threshold", str(threshold)]
        memray("transform", "csv", "-f", *option, "-o", "theirs.csv", "theirs.bin", cwd=tmp_path)
        ours("transform", "csv", "-f", *option, "-o", "ours.csv", "ours.bin", cwd=tmp_path)
        with (tmp_path / "theirs.csv").open(newline="") as file:
            theirs = _temporary_bytes_by_line(csv.DictReader(file), _memray_row, "holder")
        with (tmp_path / "ours.csv").open(newline="") as file:
            mine = _temporary_bytes_by_line(csv.DictReader(file), _ours_row, "holder")
        # Line 9's blocks live while the other thread makes 200 allocations, but the holder makes
        # only a few (line 13's, and Event.wait's): temporary at threshold 50, not at 1, for both
        # trackers. The few must be the program's own: on 3.12+ ours follows calls by
        # sys.monitoring and makes no frame objects, where memray's profile function makes one a call.
        assert (mine[9] >= 20 * 300_000) == (threshold == 50), (threshold, mine)
        assert (theirs[9] >= 20 * 300_000) == (threshold == 50), (threshold, theirs)


@pytest.mark.parametrize("threshold", [0, 1, 2])
def test_temporary_allocation_threshold_means_what_it_means_in_memray(threshold, tmp_path):
    (tmp_path / "pairs.py").write_text(TEMPORARY)
    memray("run", "-q", "--trace-python-allocators", "-o", "theirs.bin", "pairs.py", cwd=tmp_path)
    ours("run", "-q", "-o", "ours.bin", "pairs.py", cwd=tmp_path)
    option = ["--temporary-allocation-threshold", str(threshold)]
    memray("transform", "csv", *option, "-o", "theirs.csv", "theirs.bin", cwd=tmp_path)
    ours("transform", "csv", *option, "-o", "ours.csv", "ours.bin", cwd=tmp_path)
    with (tmp_path / "theirs.csv").open(newline="") as file:
        theirs = _temporary_bytes_by_line(csv.DictReader(file), _memray_row)
    with (tmp_path / "ours.csv").open(newline="") as file:
        mine = _temporary_bytes_by_line(csv.DictReader(file), _ours_row)
    assert mine == theirs
    # Line 2's 300 kB blocks see two allocations before their free: temporary from threshold 2 on.
    assert (mine[2] >= 100 * 300_000) == (threshold >= 2)
    assert mine[3] >= 100 * 200_000


def test_temporary_allocations_is_memrays_threshold_one(tmp_path):
    (tmp_path / "pairs.py").write_text(TEMPORARY)
    ours("run", "-q", "-o", "ours.bin", "pairs.py", cwd=tmp_path)
    ours("transform", "csv", "--temporary-allocations", "-o", "flag.csv", "ours.bin", cwd=tmp_path)
    ours("transform", "csv", "--temporary-allocation-threshold", "1", "-o", "one.csv", "ours.bin", cwd=tmp_path)
    ours("transform", "csv", "--temporary-allocation-threshold", "0", "-o", "zero.csv", "ours.bin", cwd=tmp_path)
    assert (tmp_path / "flag.csv").read_text() == (tmp_path / "one.csv").read_text()
    assert (tmp_path / "flag.csv").read_text() != (tmp_path / "zero.csv").read_text()
    helped = run_memprof("flamegraph", "--help", cwd=tmp_path)
    assert "threshold 1" in " ".join(helped.stdout.split()) and "as memray" in helped.stdout
    bad = run_memprof("tree", "ours.bin", "--temporary-allocation-threshold", "-1", cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "0 or more" in bad.stderr


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("memray-options")
    (folder / "script.py").write_text(SCRIPTS["threads"])
    ours("run", "-q", "-o", "prog.bin", "script.py", cwd=folder)
    return folder / "prog.bin"


# Every memray report option of issue 20, item 3, as a memray user types it.
MEMRAY_COMMAND_LINES = [
    ["stats", "--num-largest", "3"],
    ["stats", "-n", "3"],
    ["stats", "--json", "-o", "{out}.json"],
    ["tree", "-b", "3"],
    ["tree", "--biggest-allocs", "3"],
    ["tree", "--temporary-allocations"],
    ["tree", "--temporary-allocation-threshold", "2"],
    ["summary", "-s", "3"],
    ["summary", "--sort-column", "5"],
    ["summary", "-r", "4"],
    ["summary", "--max-rows", "4"],
    ["summary", "--temporary-allocation-threshold", "0"],
    ["table", "-o", "{out}.html", "--split-threads"],
    ["table", "-o", "{out}.html", "--no-web"],
    ["table", "-o", "{out}.html", "--temporary-allocation-threshold", "1"],
    ["flamegraph", "-o", "{out}.html", "--max-memory-records", "50"],
    ["flamegraph", "-o", "{out}.html", "--no-web"],
    ["flamegraph", "-o", "{out}.html", "--confidential-files", "all"],
    ["flamegraph", "-o", "{out}.html", "--temporary-allocation-threshold", "3"],
    ["flamegraph", "-o", "{out}.html", "--split-threads", "--inverted", "--leaks", "-f"],
    ["transform", "csv", "-o", "{out}.csv", "--temporary-allocation-threshold", "1"],
]


@pytest.mark.parametrize("words", MEMRAY_COMMAND_LINES, ids=" ".join)
def test_memray_report_options_are_accepted(words, capture, tmp_path):
    args = [word.format(out=tmp_path / "out") for word in words]
    result = run_memprof(*args, str(capture), cwd=tmp_path)  # memray's order: options, then the capture
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr


def test_run_takes_memrays_flags(tmp_path):
    (tmp_path / "script.py").write_text("kept = [bytearray(1000) for _ in range(100)]\n")
    result = run_memprof(
        "run", "-q", "--trace-python-allocators", "--no-compress", "-o", "a.bin", "script.py", cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    assert re.search(r"^memprof: note: --no-compress has no effect", result.stderr, re.M), result.stderr
    stats = json.loads(run_memprof("stats", "--json", "a.bin", cwd=tmp_path).stdout)
    assert stats["allocators"].get("PyObject_Malloc", {}).get("count", 0) >= 100  # Python's allocators traced
    both = run_memprof("run", "--trace-python-allocators", "--no-python-allocators", "script.py", cwd=tmp_path)
    assert_one_line_error(both, "contradict")


def test_no_web_is_a_note_not_an_error(capture, tmp_path):
    result = run_memprof("flamegraph", str(capture), "--no-web", "-o", str(tmp_path / "f.html"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert result.stderr.strip().startswith("memprof: note: --no-web has no effect"), result.stderr
    assert (tmp_path / "f.html").exists()


def test_stats_json_to_a_file_and_num_largest(capture, tmp_path):
    out = tmp_path / "stats.json"
    result = run_memprof("stats", str(capture), "--json", "-o", str(out), "-n", "2", cwd=tmp_path)
    assert result.returncode == 0 and f"wrote {out}" in result.stdout
    data = json.loads(out.read_text())
    assert data["schema_version"] == 1 and len(data["top_by_bytes"]) == 2
    assert data == json.loads(run_memprof("stats", str(capture), "--json", "--top", "2", cwd=tmp_path).stdout) | {
        "file": data["file"]
    }
    assert_one_line_error(run_memprof("stats", str(capture), "--json", "-o", str(out), cwd=tmp_path), "already exists")
    assert run_memprof("stats", str(capture), "--json", "-o", str(out), "-f", cwd=tmp_path).returncode == 0
    assert_one_line_error(run_memprof("stats", str(capture), "-o", str(tmp_path / "x.json"), cwd=tmp_path), "--json")


def test_tree_biggest_allocs_short_flag(capture, tmp_path):
    one = run_memprof("tree", str(capture), "-b", "1", cwd=tmp_path)
    assert one.returncode == 0, one.stderr
    assert "The 1 biggest of" in one.stdout


def test_summary_sort_column_numbers_are_memrays(capture, tmp_path):
    by_number = run_memprof("summary", str(capture), "-s", "3", "-r", "3", cwd=tmp_path)
    by_name = run_memprof("summary", str(capture), "--sort-column", "own-bytes", "--max-rows", "3", cwd=tmp_path)
    assert by_number.returncode == 0, by_number.stderr
    assert by_number.stdout == by_name.stdout
    assert "3 of" in by_number.stdout
    assert (
        run_memprof("summary", str(capture), "-s", "5", cwd=tmp_path).stdout
        == run_memprof("summary", str(capture), "-s", "total-count", cwd=tmp_path).stdout
    )
    bad = run_memprof("summary", str(capture), "-s", "9", cwd=tmp_path)
    assert bad.returncode == 2 and "column number" in bad.stderr and "Traceback" not in bad.stderr


def _page_data(path: Path) -> dict:
    text = path.read_text()
    start = text.index('<script type="application/json" id="memprof-data">') + len(
        '<script type="application/json" id="memprof-data">'
    )
    return json.loads(text[start : text.index("</script>", start)])


def test_table_merges_threads_unless_split(capture, tmp_path):
    ours("table", str(capture), "-o", str(tmp_path / "merged.html"), cwd=tmp_path)
    ours("table", str(capture), "-o", str(tmp_path / "split.html"), "--split-threads", cwd=tmp_path)
    merged, split = _page_data(tmp_path / "merged.html"), _page_data(tmp_path / "split.html")
    assert merged["threads"] == [[0, ""]]
    assert len(split["threads"]) >= 3  # the three workers (and the main thread)
    assert sum(merged["rows"][3::5]) == sum(split["rows"][3::5])
    assert len(merged["rows"]) < len(split["rows"])


def test_flamegraph_max_memory_records(capture, tmp_path):
    ours("flamegraph", str(capture), "-o", str(tmp_path / "all.html"), cwd=tmp_path)
    ours("flamegraph", str(capture), "-o", str(tmp_path / "few.html"), "--max-memory-records", "2", cwd=tmp_path)
    every, few = _page_data(tmp_path / "all.html")["timeline"], _page_data(tmp_path / "few.html")["timeline"]
    assert len(few) <= 3 * 2 < len(every)
    assert max(few[1::3]) == max(every[1::3])  # the highest heap of each stretch is kept


def test_aggregated_capture_says_its_temporary_threshold_is_fixed(tmp_path):
    (tmp_path / "pairs.py").write_text(TEMPORARY)
    ours("run", "-q", "--aggregate", "-o", "agg.bin", "pairs.py", cwd=tmp_path)
    noted = ours("tree", "--temporary-allocations", "agg.bin", cwd=tmp_path)
    assert "is aggregated: its temporary allocations were counted with threshold 0" in noted.stderr
    assert "pair" in noted.stdout
    strict = ours("tree", "--temporary-allocation-threshold", "0", "agg.bin", cwd=tmp_path)
    assert strict.stderr == ""
