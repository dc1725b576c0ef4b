"""Native stacks (native=True): real unwinding in the hooks, symbols and DWARF lines at report time."""

from __future__ import annotations

import ctypes
import json
import os
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import pytest
from pytest_memprof._reader import FORMAT_VERSION, CaptureReader

from pytest_memprof import Capture, CaptureError, CaptureVersionError, Tracker
from tests.conftest import subprocess_env
from tests.native_lib import CALLBACK, build_cpp, load_cpp, marked_lines
from tests.records import string, varint, zigzag

try:  # imported at collection: a test elsewhere in the suite leaves numpy unimportable later on
    import numpy
except ImportError:  # pragma: no cover
    numpy = None

SOURCE = str(Path(__file__).with_name("native_lib") / "nativestacks.cc")
LINES = marked_lines()
BLOCK_DOUBLES = 300_000  # new[] of 2,400,000 bytes, then malloc of as many


@pytest.fixture(scope="module")
def cpplib_path(tmp_path_factory):
    return build_cpp(tmp_path_factory.mktemp("native_cpp"))


@pytest.fixture(scope="module")
def cpplib(cpplib_path):
    return load_cpp(cpplib_path)


def names(frames):
    return [frame.function for frame in frames]


def totals_by_location(stats):
    """(allocating frame, bytes, count) summed per frame over whole stacks, each frame where its first stack is."""
    totals = {}
    for stat in stats:
        total = totals.setdefault(stat.location, [0, 0])
        total[0] += stat.bytes
        total[1] += stat.count
    return [(frame, size, count) for frame, (size, count) in totals.items()]


def index_of(frames, predicate):
    return next(index for index, frame in enumerate(frames) if predicate(frame))


@pytest.fixture(params=["fast", "libgcc"])
def unwinder(request, monkeypatch):
    """Both unwinders: our caching one, and libgcc's _Unwind_Backtrace (its fallback)."""
    if request.param == "libgcc":
        monkeypatch.setenv("MEMPROF_UNWIND", "libgcc")
    return request.param


def test_cpp_frames_are_named_demangled_in_order_with_lines_under_the_python_caller(
        tmp_path, python_allocators, cpplib, unwinder):
    out = tmp_path / "cpp.bin"
    raw = ctypes.c_void_p()
    with Tracker(out, native=True, trace_python_allocators=python_allocators):
        block = cpplib.memprof_test_entry(BLOCK_DOUBLES, ctypes.byref(raw))
    cpplib.memprof_test_release(block, raw)
    capture = Capture.open(out)
    assert capture.metadata.native and capture.metadata.format_version == FORMAT_VERSION
    size = BLOCK_DOUBLES * 8
    stats = [stat for stat in capture.leak_stacks() if stat.bytes == size]
    for label in ("new", "malloc"):
        found = [stat for stat in stats if any(f.file == SOURCE and f.line == LINES[label] for f in stat.frames)]
        assert len(found) == 1, [names(stat.frames) for stat in stats]
        stack = found[0].frames
        python = index_of(stack, lambda f: f.function == "test_cpp_frames_are_named_demangled_in_order_with_"
                          "lines_under_the_python_caller")
        assert not stack[python].native and stack[python].file == __file__
        entry = index_of(stack, lambda f: f.function == "memprof_test_entry")
        build = index_of(stack, lambda f: f.function == "Builder<double>::build(unsigned long, void**)")
        make = index_of(stack, lambda f: f.function == "(anonymous namespace)::make_block(unsigned long, void**)")
        assert python < entry < build < make, names(stack)
        assert (stack[entry].file, stack[entry].line) == (SOURCE, LINES["entry"])
        assert (stack[build].file, stack[build].line) == (SOURCE, LINES["build"])
        assert (stack[make].file, stack[make].line) == (SOURCE, LINES[label])
        assert all(frame.native for frame in stack[entry:])
        if label == "new":  # new[] reaches malloc through libstdc++'s operator new
            assert any("operator new" in frame.function for frame in stack[make + 1:]), names(stack)
        else:
            assert make == len(stack) - 1, names(stack)
        # Interpreter frames are hidden by default: the C frames between Python frames are the
        # extension's (ctypes, libffi), not libpython's.
        assert not any(frame.function.startswith("_PyEval_EvalFrame") for frame in stack)


def test_python_called_back_from_c_sits_between_the_c_frames_in_call_order(
        tmp_path, python_allocators, cpplib, unwinder):
    out = tmp_path / "callback.bin"
    kept = []

    def called_from_c():
        raw = ctypes.c_void_p()
        kept.append((cpplib.memprof_test_entry(BLOCK_DOUBLES, ctypes.byref(raw)), raw))

    with Tracker(out, native=True, trace_python_allocators=python_allocators):
        cpplib.memprof_test_call(CALLBACK(called_from_c))
    for block, raw in kept:
        cpplib.memprof_test_release(block, raw)
    stat = next(stat for stat in Capture.open(out).leak_stacks() if stat.bytes == BLOCK_DOUBLES * 8)
    functions = names(stat.frames)
    # Python 3.11+ names the nested function by its qualified name.
    order = [next(i for i, function in enumerate(functions) if function.split(".")[-1] == name) for name in (
        "test_python_called_back_from_c_sits_between_the_c_frames_in_call_order", "memprof_test_call",
        "called_from_c", "memprof_test_entry", "(anonymous namespace)::make_block(unsigned long, void**)")]
    assert order == sorted(order), functions
    call = stat.frames[functions.index("memprof_test_call")]
    assert (call.file, call.line) == (SOURCE, LINES["callback"])


@pytest.mark.skipif(sys.version_info < (3, 10), reason="3.9's eval loop keeps no marker of its own on the C stack")
def test_eval_frames_are_told_without_the_interpreters_symbols(tmp_path, python_allocators, cpplib, unwinder,
                                                               monkeypatch):
    # As on a stripped interpreter (Debian's python3), or in eval-loop code an optimising build
    # moved out of the function's symbol: no frame is known as the eval loop by its name, so the
    # tracker's own run-time marks must place the Python frames.
    import pytest_memprof.hybrid

    monkeypatch.setattr(pytest_memprof.hybrid, "EVAL_FUNCTION", "no function is called this")
    test_python_called_back_from_c_sits_between_the_c_frames_in_call_order(
        tmp_path, python_allocators, cpplib, unwinder)
    capture = Capture.open(tmp_path / "callback.bin", show_interpreter_frames=True)
    stat = next(stat for stat in capture.leak_stacks() if stat.bytes == BLOCK_DOUBLES * 8)
    functions = names(stat.frames)
    # Each run of Python frames sits under the eval frame that runs it (with the functions the
    # compiler inlined into the loop at that call, if any, between them).
    for name in ("test_eval_frames_are_told_without_the_interpreters_symbols", "called_from_c"):
        at = next(i for i, function in enumerate(functions) if function.split(".")[-1] == name)
        while at > 0 and not stat.frames[at - 1].native:
            at -= 1
        above = []
        while at > 0 and stat.frames[at - 1].native:
            at -= 1
            above.append(functions[at])
        assert any(function.startswith("_PyEval_EvalFrameDefault") for function in above), functions


GETATTR_SCRIPT = """
import sys
from pytest_memprof import Tracker
from tests.native_lib import load

lib = load(sys.argv[1])
with Tracker(sys.argv[2], native=True):
    assert lib.getattr_in_new_thread() == 0
"""


def test_a_threads_first_unwind_inside_pthread_getattr_np_does_not_deadlock(tmp_path, unwinder):
    # pthread_getattr_np allocates while it holds the thread's own lock; the fast unwinder used to
    # ask pthread_getattr_np for the stack's end on a thread's first unwind, and waited forever.
    from tests.native_lib import build

    library = build(tmp_path)
    script = tmp_path / "getattr.py"
    script.write_text(GETATTR_SCRIPT)
    done = subprocess.run([sys.executable, str(script), str(library), str(tmp_path / "getattr.bin")],
                          env=subprocess_env(), capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr


def test_an_inlined_function_is_its_own_frame_with_the_caller_at_the_call_line(tmp_path, cpplib):
    out = tmp_path / "inline.bin"
    with Tracker(out, native=True):
        block = cpplib.memprof_test_inlined(3_456_789)
    ctypes.CDLL(None).free(ctypes.c_void_p(block))
    stat = next(stat for stat in Capture.open(out).total_stacks() if stat.bytes == 3_456_789)
    functions = names(stat.frames)
    outer = functions.index("memprof_test_inlined")
    assert "inlined_allocate" in functions[outer + 1], functions
    assert outer + 1 == len(functions) - 1, functions
    assert (stat.frames[outer].file, stat.frames[outer].line) == (SOURCE, LINES["inline-call"])
    assert (stat.frames[outer + 1].file, stat.frames[outer + 1].line) == (SOURCE, LINES["inlined"])


def test_interpreter_frames_are_shown_on_request(tmp_path, cpplib):
    out = tmp_path / "interp.bin"
    raw = ctypes.c_void_p()
    with Tracker(out, native=True):
        block = cpplib.memprof_test_entry(BLOCK_DOUBLES, ctypes.byref(raw))
    cpplib.memprof_test_release(block, raw)
    capture = Capture.open(out, show_interpreter_frames=True)
    stat = next(stat for stat in capture.leak_stacks() if stat.bytes == BLOCK_DOUBLES * 8)
    functions = names(stat.frames)
    evals = [i for i, name in enumerate(functions) if name.startswith("_PyEval_EvalFrameDefault")]
    this_test = functions.index("test_interpreter_frames_are_shown_on_request")
    assert evals and evals[0] < this_test < functions.index("memprof_test_entry")


@pytest.mark.skipif(numpy is None, reason="numpy is not installed")
def test_numpy_ones_shows_numpys_allocating_functions(tmp_path):
    out = tmp_path / "numpy.bin"
    with Tracker(out, native=True):
        array = numpy.ones(10**7)
    del array
    capture = Capture.open(out)
    top = capture.peak_stacks()[0]
    assert top.bytes >= 8 * 10**7
    native = [frame for frame in top.frames if frame.native]
    numpy_frames = [frame for frame in native if "_multiarray_umath" in frame.file]
    assert numpy_frames, names(top.frames)
    assert {"PyArray_NewFromDescr_int", "PyDataMem_UserNEW"} & set(names(numpy_frames)), names(numpy_frames)
    assert not any("+0x" in frame.function for frame in numpy_frames), names(numpy_frames)
    caller = index_of(top.frames, lambda f: f.function == "test_numpy_ones_shows_numpys_allocating_functions")
    assert caller < top.frames.index(numpy_frames[0])


def test_native_thread_is_tracked_under_its_pthread_name(tmp_path, cpplib, unwinder):
    out = tmp_path / "thread.bin"
    block, raw = ctypes.c_void_p(), ctypes.c_void_p()
    with Tracker(out, native=True):
        assert cpplib.memprof_test_thread(1_234_567, b"memprof-worker", ctypes.byref(block), ctypes.byref(raw)) == 0
    cpplib.memprof_test_release(block, raw)
    capture = Capture.open(out)
    threads = {info.name: info.thread_id for info in capture.threads()}
    assert "memprof-worker" in threads, threads
    stats = [stat for stat in capture.leak_stacks(merge_threads=False) if stat.bytes == 1_234_567]
    assert len(stats) == 2 and {stat.thread_id for stat in stats} == {threads["memprof-worker"]}
    for stat in stats:
        functions = names(stat.frames)
        assert functions.index("thread_main(void*)") < functions.index("Builder<char>::build(unsigned long, void**)")
        assert not any(not frame.native for frame in stat.frames), functions  # no Python in that thread


def test_report_after_the_library_is_deleted_shows_lib_offset_and_warns(tmp_path):
    folder = tmp_path / "gone"
    folder.mkdir()
    library = build_cpp(folder, "libmemprofgone.so")
    out = tmp_path / "gone.bin"
    script = (
        "import ctypes, sys\n"
        "from pytest_memprof import Tracker\n"
        "from tests.native_lib import load_cpp\n"
        f"lib = load_cpp({str(library)!r})\n"
        "raw = ctypes.c_void_p()\n"
        f"with Tracker({str(out)!r}, native=True):\n"
        "    lib.memprof_test_entry(1_000_000, ctypes.byref(raw))\n"
    )
    env = subprocess_env()
    subprocess.run([sys.executable, "-c", script], check=True, env=env, cwd=tmp_path)
    shutil.rmtree(folder)
    result = subprocess.run([sys.executable, "-m", "pytest_memprof", "stats", "--json", str(out)],
                            capture_output=True, text=True, env=env, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    assert "libmemprofgone.so" in result.stderr and "no longer exists" in result.stderr, result.stderr
    rows = json.loads(result.stdout)["top_by_bytes"]
    # The malloc call's innermost frame is in the deleted library (new[]'s is operator new).
    gone = [row for row in rows if row["function"].startswith("libmemprofgone.so+0x")]
    assert gone and gone[0]["bytes"] == 8_000_000, rows
    offset = int(gone[0]["function"].split("+")[1], 16)
    assert 0 < offset < 1 << 20


def test_a_library_rebuilt_since_the_capture_is_not_trusted_for_names(tmp_path):
    path = build_cpp(tmp_path, "libmemprofrebuilt.so")
    lib = load_cpp(path)
    out = tmp_path / "rebuilt.bin"
    raw = ctypes.c_void_p()
    with Tracker(out, native=True):
        lib.memprof_test_entry(54_321, ctypes.byref(raw))
    # Another build at the same path (the loaded one stays mapped under its old inode).
    other = build_cpp(tmp_path / "..", "libmemprofrebuilt.so.new", optimize="-O1")
    os.replace(other, path)
    with pytest.warns(UserWarning, match="libmemprofrebuilt.so is not the build the capture was made with"):
        stats = {stat.bytes: names(stat.frames) for stat in Capture.open(out).leak_stacks()}
    assert any(name.startswith("libmemprofrebuilt.so+0x") for name in stats[54_321 * 8]), stats[54_321 * 8]
    assert "memprof_test_entry" not in stats[54_321 * 8]


def test_newer_format_version_is_refused_by_name(tmp_path):
    out = tmp_path / "future.bin"
    with Tracker(out, native=True):
        pass
    data = bytearray(out.read_bytes())
    newer = FORMAT_VERSION + 1
    data[8:10] = struct.pack("<H", newer)
    out.write_bytes(bytes(data))
    with pytest.raises(CaptureVersionError, match=f"version {newer}, newer than this memprof reads"):
        Capture.open(out)


@pytest.mark.parametrize(("records", "message"), [
    (bytes([72, 5, 0x10]), "native stack whose parent is unknown"),
    (bytes([73, 74, 0x20, 0x10, 0, 1, ord("x"), 0]), "mapping that ends before it starts"),
    (bytes([0x81, 8, 5, 0, 2]), "unknown native stack id"),
    (bytes([74, 1, 2, 0, 0xFF, 0xFF, 0x7F]), "oversized string"),
])
def test_corrupt_native_records_are_one_clear_error(records, message):
    reader = CaptureReader()
    assert not reader.feed(records)
    assert message in reader.error


def test_native_records_decode_whole_in_memory(tmp_path, cpplib):
    # The pytest plugin's path: a memory sink fed to a reader, not a file.
    raw = ctypes.c_void_p()
    tracker = Tracker(None, native=True)
    with tracker:
        block = cpplib.memprof_test_entry(BLOCK_DOUBLES, ctypes.byref(raw))
        records = tracker.drain()
    records += tracker.drain()
    cpplib.memprof_test_release(block, raw)
    reader = CaptureReader()
    assert reader.feed(records), reader.error
    capture = Capture.from_reader(reader)
    stat = next(stat for stat in capture.total_stacks() if stat.bytes == BLOCK_DOUBLES * 8)
    assert "memprof_test_entry" in names(stat.frames)


@pytest.mark.parametrize("show_interpreter_frames", [False, True])
def test_the_innermost_frame_alone_is_the_last_frame_of_the_whole_stack(tmp_path, cpplib, show_interpreter_frames):
    out = tmp_path / "locations.bin"
    raw = ctypes.c_void_p()
    with Tracker(out, native=True):
        block = cpplib.memprof_test_entry(BLOCK_DOUBLES, ctypes.byref(raw))
        kept = [bytearray(1000 + i) for i in range(100)]  # Python frames as the innermost ones
        if numpy is not None:
            kept.append(numpy.ones(1000))
    cpplib.memprof_test_release(block, raw)
    del kept
    # One capture computes locations alone (what stats uses), the other whole stacks.
    alone = Capture.open(out, show_interpreter_frames=show_interpreter_frames)
    whole = Capture.open(out, show_interpreter_frames=show_interpreter_frames)
    locations = alone.location_totals("total")
    stats = whole.total_stacks()
    assert len(stats) > len(locations) > 5  # stacks that share their allocating frame are summed
    assert locations == totals_by_location(stats)
    assert any(frame is not None and frame.native for frame, _, _ in locations)
    # Shown, the interpreter's own allocating functions are the innermost frames of Python's objects
    assert any(frame is not None and not frame.native for frame, _, _ in locations) != show_interpreter_frames


@pytest.mark.parametrize(("native", "show_interpreter_frames"), [(True, False), (True, True), (False, False)])
def test_innermost_frames_alone_match_whole_stacks_under_memprof_run(tmp_path, native, show_interpreter_frames):
    # memprof run drops the runner's frames from every stack: the innermost frame must not move, and
    # what the runner allocated before the program started shows no frame at all. Importing a module
    # makes stacks whose innermost eval loop runs no frame yet (the module's code, being set up).
    (tmp_path / "helper.py").write_text("TABLE = {str(i): [i] * 3 for i in range(200)}\n"
                                        "import json, decimal, fractions\n")
    script = tmp_path / "program.py"
    script.write_text("import helper\n\ndef build(n):\n    return [bytearray(100 + i) for i in range(n)]\n\n"
                      "kept = build(200)\nkept += [str(i) * 3 for i in range(300)]\n")
    out = tmp_path / "run.bin"
    subprocess.run([sys.executable, "-m", "pytest_memprof", "run", "-q", *(["--native"] if native else []),
                    "-o", str(out), str(script)], check=True, env=subprocess_env(), cwd=tmp_path)
    locations = Capture.open(out, show_interpreter_frames=show_interpreter_frames).location_totals("total")
    stats = Capture.open(out, show_interpreter_frames=show_interpreter_frames).total_stacks()
    assert len(stats) > len(locations) > 5
    assert locations == totals_by_location(stats)
    if show_interpreter_frames:  # shown, the interpreter's own C frames are the innermost ones
        assert any(frame is not None and frame.native for frame, _, _ in locations)
    else:
        assert any(frame is not None and frame.function == "build" for frame, _, _ in locations)
        assert any(stat.launcher for stat in stats)
        assert None in [frame for frame, _, _ in locations]
    # stats, the command, lists the same sums.
    result = subprocess.run([sys.executable, "-m", "pytest_memprof", "stats", "--json", "-n", "100000",
                             *(["--show-interpreter-frames"] if show_interpreter_frames else []), str(out)],
                            check=True, env=subprocess_env(), cwd=tmp_path, capture_output=True, text=True)
    listed = {(row["function"], row["file"], row["line"]): (row["bytes"], row["count"])
              for row in json.loads(result.stdout)["top_by_bytes"]}
    expected: dict = {}
    for frame, size, count in totals_by_location(stats):
        key = (frame.function, frame.file, frame.line) if frame else ("<unknown>", "<unknown>", 0)
        total = expected.setdefault(key, (0, 0))
        expected[key] = (total[0] + size, total[1] + count)
    assert listed == expected


def test_missing_capture_is_still_a_capture_error(tmp_path):
    with pytest.raises(CaptureError):
        Capture.open(tmp_path / "nothing.bin")


def test_every_report_shows_the_hybrid_stack(tmp_path, python_allocators, cpplib):
    out = tmp_path / "reports.bin"
    raw = ctypes.c_void_p()
    with Tracker(out, native=True, trace_python_allocators=python_allocators):
        block = cpplib.memprof_test_entry(BLOCK_DOUBLES, ctypes.byref(raw))
    cpplib.memprof_test_release(block, raw)
    env = subprocess_env(COLUMNS="400")

    def memprof(*args):
        result = subprocess.run([sys.executable, "-m", "pytest_memprof", *args], capture_output=True, text=True,
                                env=env, cwd=tmp_path)
        assert result.returncode == 0, result.stderr
        assert "Traceback" not in result.stderr
        return result.stdout

    for command in ("tree", "summary"):
        text = memprof(command, "--leaks", str(out), *(["--max-rows", "200"] if command == "summary" else []))
        assert "make_block" in text, text
        assert "_PyEval_EvalFrameDefault" not in text
    assert "_PyEval_EvalFrameDefault" in memprof("tree", "--leaks", "--show-interpreter-frames", str(out))
    for command in ("flamegraph", "table"):
        memprof(command, "--leaks", "-o", str(tmp_path / f"{command}.html"), str(out))
        assert "memprof_test_entry" in (tmp_path / f"{command}.html").read_text()
    dump = memprof("parse", str(out))
    assert "NATIVE_NODE id=1 " in dump and "\nMAPS\n" in dump and "native=" in dump


def test_libraries_loaded_and_unloaded_while_tracking_are_symbolised_from_their_own_files(tmp_path):
    _ctypes = pytest.importorskip("_ctypes")
    first = build_cpp(tmp_path, "libmemproffirst.so")
    second = build_cpp(tmp_path, "libmemprofsecond.so")
    out = tmp_path / "dl.bin"
    blocks = []
    with Tracker(out, native=True):
        for path, doubles in ((first, 100_001), (second, 100_002)):
            lib = load_cpp(path)  # dlopen while tracking: the mappings are recorded again
            raw = ctypes.c_void_p()
            blocks.append(lib.memprof_test_entry(doubles, ctypes.byref(raw)))
            _ctypes.dlclose(lib._handle)  # the next library may land at the same addresses
    # With the first file gone, its frames can only show as lib+offset: if the second library's
    # addresses were resolved against the first one's (stale) mappings, they would too.
    first.unlink()
    with pytest.warns(UserWarning, match="libmemproffirst.so no longer exists"):
        stats = {stat.bytes: names(stat.frames) for stat in Capture.open(out).leak_stacks()}
    assert any(name.startswith("libmemproffirst.so+0x") for name in stats[100_001 * 8]), stats[100_001 * 8]
    assert "memprof_test_entry" not in stats[100_001 * 8]
    assert "memprof_test_entry" in stats[100_002 * 8], stats[100_002 * 8]
    assert not any("libmemproffirst" in name for name in stats[100_002 * 8])


# numpy, imported at collection, starts OpenBLAS's server thread: Python 3.12+ then warns at any fork
# in this process. That the tracker's own threads never cause the warning is test_fork.py's concern.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded, use of fork:DeprecationWarning")
def test_a_followed_fork_child_writes_native_stacks_too(tmp_path, python_allocators, cpplib):
    out = tmp_path / "fork.bin"
    with Tracker(out, native=True, follow_fork=True, trace_python_allocators=python_allocators):
        pid = os.fork()
        if pid == 0:
            raw = ctypes.c_void_p()
            cpplib.memprof_test_entry(123_457, ctypes.byref(raw))
            os._exit(0)
        os.waitpid(pid, 0)
    child = Capture.open(tmp_path / f"fork.bin.{pid}")
    assert child.metadata.native and not child.truncated
    stat = next(stat for stat in child.leak_stacks() if stat.bytes == 123_457 * 8)
    assert "memprof_test_entry" in names(stat.frames)
    assert "test_a_followed_fork_child_writes_native_stacks_too" in names(stat.frames)


def test_a_library_loaded_while_paused_is_hooked_and_named_after_resume(tmp_path):
    # The pytest plugin pauses between tests; a test may import an extension outside its window.
    path = build_cpp(tmp_path, "libmemprofpaused.so")
    tracker = Tracker(None, native=True)
    reader = CaptureReader()
    raw = ctypes.c_void_p()
    with tracker:
        tracker.pause()
        assert reader.feed(tracker.drain()), reader.error
        lib = load_cpp(path)
        reader.reset_window()  # as the plugin does: each window's records decode on their own
        tracker.resume()
        lib.memprof_test_entry(77_001, ctypes.byref(raw))
        records = tracker.drain()
    records += tracker.drain()
    assert reader.feed(records), reader.error
    stats = [stat for stat in Capture.from_reader(reader).total_stacks() if stat.bytes == 77_001 * 8]
    assert stats, "the library's allocations were not seen"
    assert "memprof_test_entry" in names(stats[0].frames), names(stats[0].frames)


@pytest.mark.parametrize("path", [b"/dev/zero", b"/", b"", b"/proc/self/fd/0", __file__.encode(), b"\xff\xfe"])
def test_hostile_native_records_are_an_error_or_frames_never_a_crash(path):
    records = (
        bytes([73, 74]) + varint(0x1000) + varint(0x2000) + varint(0x1000) + string(path) + string(b"\x01\x02")
        + bytes([72]) + varint(0) + varint(0x1800)
        + bytes([72]) + varint(1) + varint(0x1FFFFFFFFFFFF)
        + bytes([72]) + varint(2) + varint(0)
        # a malloc of 100 bytes at 0x5000 (in 16-byte units), Python stack 0, native stack 3
        + bytes([0x81]) + varint(100) + varint(2 * zigzag(0x5000 >> 4) + 1) + varint(0) + varint(2 * 3)
    )
    reader = CaptureReader()
    assert reader.feed(records), reader.error
    with pytest.warns(UserWarning, match="its frames are shown as"):
        (stat,) = Capture.from_reader(reader).total_stacks()
    assert stat.bytes == 100 and len(stat.frames) == 3 and all(frame.native for frame in stat.frames)
