"""The report subcommands end to end: ``memprof flamegraph/table/tree/summary`` on real captures."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_memprof import Tracker
from tests.cli.conftest import assert_one_line_error, memprof_command
from tests.conftest import subprocess_env
from tests.records import FIXED_HEADER, whole_frame_end

ROOT = Path(__file__).resolve().parents[2]

PROGRAM = '''
def build_cache():
    cache = []  # a loop: before 3.12 a comprehension is a function of its own (<listcomp>)
    for _ in range(40):
        cache.append(bytearray(50_000))
    return cache


cache = build_cache()
'''


def memprof(*args: str, cwd: Path, columns: int = 160) -> subprocess.CompletedProcess:
    # The console script, not `python -m`: with cwd at the repository that would import the
    # source tree, which has no built extension under tox.
    return subprocess.run([*memprof_command(), *args], capture_output=True, text=True, cwd=cwd,
                          env=subprocess_env(COLUMNS=str(columns)), timeout=300)


@pytest.fixture(scope="module")
def capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("cli-reports")
    (folder / "program.py").write_text(PROGRAM)
    result = memprof("run", "-q", "-o", "prog.bin", "program.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "prog.bin"


@pytest.fixture
def empty(tmp_path) -> Path:
    # Even an idle tracker records its own start-up allocation: a capture cut right after its
    # header (a process killed before its first flush) is the real capture with no allocations.
    path = tmp_path / "empty.bin"
    with Tracker(path, trace_python_allocators=False):
        pass
    data = path.read_bytes()
    path.write_bytes(data[: 16 + struct.unpack_from("<I", data, 12)[0]])
    return path


@pytest.fixture
def truncated(capture, tmp_path) -> Path:
    data = capture.read_bytes()
    path = tmp_path / "cut.bin"
    path.write_bytes(data[: len(data) * 2 // 3])
    return path


@pytest.mark.parametrize("command", ["flamegraph", "table"])
def test_html_goes_next_to_the_capture_and_is_not_overwritten_without_force(command, capture, tmp_path):
    local = tmp_path / "prog.bin"
    local.write_bytes(capture.read_bytes())
    result = memprof(command, str(local), cwd=ROOT)
    assert result.returncode == 0, result.stderr
    expected = tmp_path / f"memprof-{command}-prog.html"
    assert f"wrote {expected}" in result.stdout
    assert "build_cache" in expected.read_text()

    before = expected.read_bytes()
    assert_one_line_error(memprof(command, str(local), cwd=ROOT), "already exists", "--force")
    assert expected.read_bytes() == before

    forced = memprof(command, "-f", str(local), cwd=ROOT)
    assert forced.returncode == 0, forced.stderr
    other = memprof(command, "-o", "sub/dir/out.html", str(local), cwd=tmp_path)
    assert other.returncode == 0, other.stderr
    assert (tmp_path / "sub" / "dir" / "out.html").exists()


@pytest.mark.parametrize("command", ["flamegraph", "table"])
def test_an_output_folder_that_cannot_be_made_is_one_line(command, capture, tmp_path):
    (tmp_path / "a_file").write_text("not a folder")
    assert_one_line_error(memprof(command, "-o", "a_file/out.html", str(capture), cwd=tmp_path),
                          "cannot create the folder")
    (tmp_path / "a_folder").mkdir()
    assert_one_line_error(memprof(command, "-o", "a_folder", str(capture), cwd=tmp_path), "is a folder")


@pytest.mark.parametrize("command", ["flamegraph", "table", "tree", "summary"])
def test_bad_captures_are_one_line_errors(command, tmp_path):
    assert_one_line_error(memprof(command, "missing.bin", cwd=tmp_path), "missing.bin")
    (tmp_path / "garbage.bin").write_bytes(b"certainly not a capture file, only words")
    assert_one_line_error(memprof(command, "garbage.bin", cwd=tmp_path), "garbage.bin")
    assert not list(tmp_path.glob("*.html"))


@pytest.mark.parametrize("command", ["flamegraph", "table"])
def test_html_of_empty_and_truncated_captures(command, empty, truncated, tmp_path):
    result = memprof(command, "-o", "empty.html", str(empty), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "No allocations were recorded" in (tmp_path / "empty.html").read_text()
    result = memprof(command, "-o", "cut.html", str(truncated), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "truncated" in result.stdout
    assert 'id="truncated"' in (tmp_path / "cut.html").read_text()


def test_flamegraph_options(capture, tmp_path):
    result = memprof("flamegraph", "--leaks", "--inverted", "--split-threads", "--temporal", "-o", "fg.html",
                     str(capture), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    html = (tmp_path / "fg.html").read_text()
    assert '"kind":"leaks"' in html and '"temporal":true' in html and '"inverted":true' in html
    assert '"intervals":"' in html  # packed temporal rows
    both = memprof("flamegraph", "--leaks", "--temporary-allocations", str(capture), cwd=tmp_path)
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_tree_shows_the_biggest_branch(capture, empty, truncated, tmp_path):
    result = memprof("tree", str(capture), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("The ") and "bytes at the peak" in lines[0]
    assert any("build_cache" in line and "program.py" in line for line in lines)
    assert "1.9 MiB" in result.stdout  # 40 x 50,000 bytes
    one = memprof("tree", "--biggest-allocs", "1", str(capture), cwd=tmp_path)
    assert one.stdout.startswith("The 1 biggest of")
    assert memprof("tree", "--biggest-allocs", "0", str(capture), cwd=tmp_path).returncode == 2

    nothing = memprof("tree", str(empty), cwd=tmp_path)
    assert nothing.returncode == 0 and "No allocations were recorded" in nothing.stdout
    cut = memprof("tree", str(truncated), cwd=tmp_path)
    assert cut.returncode == 0 and "truncated" in cut.stdout and "Traceback" not in cut.stderr


def test_summary_by_function(capture, empty, truncated, tmp_path):
    result = memprof("summary", str(capture), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    rows = [line for line in result.stdout.splitlines() if "program.py" in line]
    assert "build_cache" in rows[0] or "<module>" in rows[0]
    assert any("build_cache" in row and "1.9 MiB" in row for row in rows)

    own = memprof("summary", "--sort-column", "own-bytes", "--max-rows", "1", str(capture), cwd=tmp_path)
    assert own.returncode == 0, own.stderr
    assert "1 of" in own.stdout and "build_cache" in own.stdout
    assert memprof("summary", "--sort-column", "nope", str(capture), cwd=tmp_path).returncode == 2

    nothing = memprof("summary", str(empty), cwd=tmp_path)
    assert nothing.returncode == 0 and "No allocations were recorded" in nothing.stdout
    cut = memprof("summary", str(truncated), cwd=tmp_path)
    assert cut.returncode == 0 and "truncated" in cut.stdout


@pytest.mark.parametrize("command", ["stats", "summary", "tree", "table", "flamegraph", "parse"])
def test_a_capture_cut_anywhere_says_what_it_lost_and_exits_as_every_truncated_capture(command, capture, tmp_path):
    # Before: cut by 1 byte (into the end mark) the report held every allocation; cut by 7, 20 or 100
    # (into the block, here the only one) it showed 0 allocations and "No allocations were recorded"
    # as if that were the whole truth, with nothing saying what the cut had taken.
    data = capture.read_bytes()
    header_end = FIXED_HEADER.size + FIXED_HEADER.unpack_from(data)[3]
    statuses = {}
    for cut in (1, 7, 20, 100, len(data) - header_end):
        kept = data[:-cut]
        path = tmp_path / f"cut{cut}.bin"
        path.write_bytes(kept)
        html = tmp_path / f"cut{cut}.html"
        result = memprof(command, *(["-o", html.name] if command in ("table", "flamegraph") else []), path.name,
                         cwd=tmp_path, columns=400)
        assert "Traceback" not in result.stderr, result.stderr
        statuses[cut] = result.returncode
        said = result.stderr if command == "parse" else result.stdout
        lost = len(kept) - whole_frame_end(kept)
        if cut == 1:
            expected = "its last 3 bytes are cut short after the tracker's trailer: every record is there"
        elif lost:
            expected = f"its last {lost:,} bytes could not be decoded"
        else:
            expected = "it ends right after its header, before any record"
        assert "is truncated: " + expected in said, (cut, said)
        if command in ("table", "flamegraph"):
            assert expected in html.read_text().replace("&#39;", "'")
        if lost and cut != 1:
            assert "No allocations were recorded" not in said, (cut, said)
            if command == "stats" and "Allocations: 0 " in said:
                assert "No allocations could be decoded" in said
    # One rule for every cut, the documented one (docs/capture-format.md): a report of a truncated
    # capture covers what was decoded and exits 0; parse, the debugging dump, exits 1.
    assert set(statuses.values()) == {1 if command == "parse" else 0}, statuses


def test_terminal_reports_print_markup_in_paths_literally(tmp_path):
    folder = tmp_path / "[bold red]odd"
    folder.mkdir()
    (folder / "program.py").write_text(PROGRAM)
    result = memprof("run", "-q", "-o", "odd.bin", str(folder / "program.py"), cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("tree", "summary"):
        # Wide enough that no cell wraps the path (xdist's longer tmp_path did at 160)
        shown = memprof(command, "odd.bin", cwd=tmp_path, columns=400)
        assert shown.returncode == 0, shown.stderr
        assert "[bold red]odd" in shown.stdout.replace("\n", ""), shown.stdout


def test_stats_histogram_in_the_terminal_matches_the_json(capture, tmp_path):
    text = memprof("stats", str(capture), cwd=tmp_path)
    as_json = json.loads(memprof("stats", "--json", str(capture), cwd=tmp_path).stdout)
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    start = next(index for index, line in enumerate(lines) if "Allocation sizes" in line)
    bars = [line for line in lines[start:] if "█" in line]
    assert len(bars) == len(as_json["size_histogram"])
    for line, bucket in zip(bars, as_json["size_histogram"]):
        assert f"{bucket['count']:,}" in line, (line, bucket)


def test_summary_sort_columns_match_the_reporter():
    from pytest_memprof.cli import summary as command
    from pytest_memprof.reports import summary as reporter

    assert command.SORT_COLUMNS == reporter.SORT_COLUMNS


@pytest.mark.parametrize("command", ["tree", "flamegraph", "table"])
def test_the_progress_bar_goes_to_stderr_only_when_a_terminal_or_asked(command, capture, tmp_path):
    args = [command, str(capture)] + ([] if command == "tree" else ["-f", "-o", str(tmp_path / "out.html")])

    def run(**extra: str) -> subprocess.CompletedProcess:
        env = subprocess_env(COLUMNS="160", MEMPROF_PROGRESS_DELAY="0", **extra)
        return subprocess.run([*memprof_command(), *args], capture_output=True, text=True, cwd=tmp_path, env=env,
                              timeout=300)

    piped, forced, never = run(), run(MEMPROF_PROGRESS="always"), run(MEMPROF_PROGRESS="never")
    assert piped.returncode == forced.returncode == never.returncode == 0, forced.stderr
    assert piped.stderr == "" and never.stderr == ""  # a pipe or a CI log gets no bar unless asked
    assert f"reading {capture.name}" in forced.stderr
    assert "reading" not in forced.stdout and forced.stdout == piped.stdout  # the report itself is unchanged


@pytest.mark.parametrize("command", ["flamegraph", "table"])
def test_an_html_report_loads_neither_the_tracker_nor_rich_nor_the_symboliser_nor_openssl(command, capture,
                                                                                          tmp_path):
    # What a report of a Python-only capture does not need is not in its memory: the tracker's
    # extension, rich (nothing is printed with it), the symboliser (no native frames), libcrypto
    # (Jinja2 imports hashlib for a cache the pages never use).
    target = tmp_path / "out.html"
    probe = (
        "import sys\n"
        "from pytest_memprof.cli import main\n"
        f"code = main([{command!r}, '-f', '-o', {str(target)!r}, {str(capture)!r}])\n"
        "maps = open('/proc/self/maps').read()\n"
        "loaded = [name for name in ('pytest_memprof._tracker', 'rich', 'pytest_memprof.symbols', 'ctypes',"
        " '_hashlib') if sys.modules.get(name)]\n"
        "print(code, loaded, 'libcrypto' in maps)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                            env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "0 [] False", result.stdout
    assert "build_cache" in target.read_text()


def test_a_report_imports_what_it_needs_next_while_its_capture_is_read(capture, tmp_path):
    # open_capture's second thread imports during the C++ read; it is gone once the capture is open,
    # and a module that cannot be imported leaves the open as it was (the report's own import says why).
    probe = (
        "import sys, threading\n"
        "from pytest_memprof.cli._common import open_capture\n"
        f"capture = open_capture({str(capture)!r}, meanwhile=('json.tool', 'no_such_module_of_memprof'))\n"
        "print(threading.active_count(), 'json.tool' in sys.modules, capture.total_allocations > 40)\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                            env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "1 True True", result.stdout
    assert result.stderr == ""


def test_hashlib_imported_before_a_report_keeps_openssl(capture, tmp_path):
    probe = (
        "import hashlib\n"
        "from pytest_memprof.cli import main\n"
        f"main(['flamegraph', '-f', '-o', 'out.html', {str(capture)!r}])\n"
        "print(hashlib.sha256(b'x').hexdigest()[:8], hasattr(hashlib, 'pbkdf2_hmac'))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, cwd=tmp_path,
                            env=subprocess_env(), timeout=300)
    assert result.returncode == 0, result.stderr
    assert result.stdout.split("\n")[-2] == "2d711642 True", result.stdout
