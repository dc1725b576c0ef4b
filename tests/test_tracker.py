"""The tracker, end to end: real hooks, real capture files, read back by the real reader."""

from __future__ import annotations

import ctypes
import gc
import inspect
import os
import shutil
import subprocess
import sys
import sysconfig
import threading
from pathlib import Path

import pytest

from pytest_memprof import Capture, Tracker, TrackerError
from tests.conftest import PACKAGE_PARENT, subprocess_env
from tests.native_lib import build, build_embedding_program, load

MiB = 2**20
_GLOBAL_CACHE: list = []


def here() -> int:
    """The line number of the caller (for asserting attribution)."""
    return inspect.currentframe().f_back.f_lineno


@pytest.fixture(scope="module")
def testlib_path(tmp_path_factory):
    return build(tmp_path_factory.mktemp("native"))


@pytest.fixture
def testlib(testlib_path):
    return load(testlib_path)


def rows_of(stats, *, allocator=None, size=None, function=None):
    return [
        s for s in stats
        if (allocator is None or s.allocator == allocator)
        and (size is None or s.bytes == size)
        and (function is None or (s.location is not None and s.location.function == function))
    ]


def allocate_fifty_mib():
    return bytearray(50 * MiB)


def test_bytearray_peak_is_fifty_mib_with_the_allocating_line(tmp_path, python_allocators):
    out = tmp_path / "peak.bin"
    with Tracker(out, trace_python_allocators=python_allocators):
        data = allocate_fifty_mib()
        del data
    capture = Capture.open(out)
    assert 50 * MiB <= capture.peak_bytes <= 51 * MiB
    top = capture.peak_stacks()[0]
    assert top.bytes >= 50 * MiB
    assert top.location.function == "allocate_fifty_mib"
    assert top.location.line == inspect.getsourcelines(allocate_fifty_mib)[1] + 1
    assert top.location.file == __file__
    caller = top.frames[-2]
    assert caller.function == "test_bytearray_peak_is_fifty_mib_with_the_allocating_line"
    assert not capture.truncated
    assert capture.leaked_bytes < 1 * MiB


def test_each_c_allocator_is_seen_with_its_exact_size_and_python_line(tmp_path, python_allocators, testlib):
    out = tmp_path / "family.bin"
    lines = {}
    with Tracker(out, trace_python_allocators=python_allocators):
        p_malloc = testlib.alloc_malloc(1_234_567); lines["malloc"] = here()  # noqa: E702
        p_calloc = testlib.alloc_calloc(1000, 1_001); lines["calloc"] = here()  # noqa: E702
        p_moved = testlib.alloc_malloc(100)
        p_realloc = testlib.alloc_realloc(p_moved, 2_345_671); lines["realloc"] = here()  # noqa: E702
        p_posix = testlib.alloc_posix_memalign(345_671); lines["posix_memalign"] = here()  # noqa: E702
        p_aligned = testlib.alloc_aligned_alloc(456_704); lines["aligned_alloc"] = here()  # noqa: E702
        p_memalign = testlib.alloc_memalign(567_891); lines["memalign"] = here()  # noqa: E702
        p_valloc = testlib.alloc_valloc(678_912); lines["valloc"] = here()  # noqa: E702
        p_pvalloc = testlib.alloc_pvalloc(789_123); lines["pvalloc"] = here()  # noqa: E702
        p_mmap = testlib.alloc_mmap(64 * 4096); lines["mmap"] = here()  # noqa: E702
        testlib.release(testlib.alloc_malloc(3_333_333))
    expected = {
        "malloc": 1_234_567, "calloc": 1_001_000, "realloc": 2_345_671, "posix_memalign": 345_671,
        "aligned_alloc": 456_704, "memalign": 567_891, "valloc": 678_912, "pvalloc": 789_123,
        "mmap": 64 * 4096,
    }
    capture = Capture.open(out)
    leaks = capture.leak_stacks(merge_allocators=False)
    for allocator, size in expected.items():
        found = rows_of(leaks, allocator=allocator, size=size)
        assert found, f"{allocator}({size}) not seen live at the end"
        frame = found[0].location
        assert frame.function == "test_each_c_allocator_is_seen_with_its_exact_size_and_python_line"
        assert frame.line == lines[allocator], allocator
    # The block realloc moved away from, and the one freed inside tracking, are not live.
    assert not rows_of(leaks, size=100, allocator="malloc")
    assert not rows_of(leaks, size=3_333_333)
    assert rows_of(capture.total_stacks(merge_allocators=False), allocator="malloc", size=3_333_333)
    for pointer in (p_malloc, p_calloc, p_realloc, p_posix, p_aligned, p_memalign, p_valloc, p_pvalloc):
        testlib.release(pointer)
    testlib.release_mmap(p_mmap, 64 * 4096)


def test_munmap_of_part_of_a_mapping_keeps_the_rest_live(tmp_path, testlib):
    out = tmp_path / "munmap.bin"
    page = 4096
    with Tracker(out):
        mapping = testlib.alloc_mmap(10 * page)
        testlib.release_mmap(mapping, 4 * page)
    capture = Capture.open(out)
    assert rows_of(capture.leak_stacks(merge_allocators=False), allocator="mmap", size=6 * page)
    testlib.release_mmap(mapping + 4 * page, 6 * page)


def test_native_thread_allocations_are_seen_with_the_thread_name(tmp_path, python_allocators, testlib):
    out = tmp_path / "native_thread.bin"
    with Tracker(out, trace_python_allocators=python_allocators):
        kept = testlib.native_thread_allocate(77_777, 10, b"native-worker")
    capture = Capture.open(out)
    named = {thread.name: thread.thread_id for thread in capture.threads()}
    assert "native-worker" in named
    tid = named["native-worker"]
    totals = [s for s in capture.total_stacks(merge_threads=False) if s.thread_id == tid and s.bytes % 77_777 == 0]
    assert sum(s.count for s in totals) == 11
    leaks = [s for s in capture.leak_stacks(merge_threads=False) if s.thread_id == tid]
    assert [(s.bytes, s.count) for s in leaks if s.bytes == 77_777] == [(77_777, 1)]
    testlib.release(kept)


def test_a_crowd_of_native_threads_fighting_over_the_lock_keeps_exact_counts(tmp_path, python_allocators, testlib):
    # Twelve threads on this machine's few cores: the tracker's lock is contended, its holder is
    # preempted inside it and waiters fall back to sleeping; no event may be lost or doubled.
    out = tmp_path / "crowd.bin"
    threads, size, count = 12, 30_011, 20_000
    with Tracker(out, trace_python_allocators=python_allocators):
        assert testlib.native_threads_allocate(threads, size, count) == threads
    capture = Capture.open(out)
    totals = capture.total_stacks(merge_threads=False, merge_allocators=False)
    for index in range(threads):
        rows = [s for s in totals if s.allocator == "malloc" and s.bytes % (size + index) == 0
                and s.bytes // (size + index) == s.count]
        assert sum(s.count for s in rows) == count, f"thread {index}"
        assert len({s.thread_id for s in rows}) == 1, f"thread {index}'s allocations under one thread"
    assert not [s for s in capture.leak_stacks(merge_allocators=False)
                if s.allocator == "malloc" and size <= s.bytes / max(s.count, 1) < size + threads]


def test_library_loaded_after_tracking_started_is_covered(tmp_path, python_allocators, testlib_path):
    late_copy = tmp_path / "liblate.so"
    shutil.copy(testlib_path, late_copy)
    out = tmp_path / "dlopen.bin"
    with Tracker(out, trace_python_allocators=python_allocators):
        late = load(late_copy)  # dlopen while tracking
        pointer = late.alloc_malloc(2_222_223); line = here()  # noqa: E702
    capture = Capture.open(out)
    found = rows_of(capture.leak_stacks(merge_allocators=False), allocator="malloc", size=2_222_223)
    assert found and found[0].location.line == line
    late.release(pointer)


def test_stop_restores_every_patched_slot(tmp_path, testlib):
    libc_malloc = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
    assert testlib.malloc_slot() == libc_malloc
    with Tracker(tmp_path / "slots.bin"):
        assert testlib.malloc_slot() != libc_malloc, "malloc is not routed through the hook"
    assert testlib.malloc_slot() == libc_malloc, "the hook stayed on the allocation path after stop"


def test_stop_restores_the_slots_of_a_library_loaded_while_tracking(tmp_path, testlib_path):
    # Stop writes back the slots the installing passes recorded (native/elf_patch.cc), the
    # dlopen's pass among them, without reading every object's relocations again.
    libc_malloc = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
    late_copy = tmp_path / "liblate-restored.so"
    shutil.copy(testlib_path, late_copy)
    with Tracker(tmp_path / "late.bin"):
        late = load(late_copy)
        assert late.malloc_slot() != libc_malloc, "the late library's malloc is not routed through the hook"
    assert late.malloc_slot() == libc_malloc, "the late library's slot kept the hook after stop"


def test_stop_after_a_library_was_unloaded_while_tracking_restores_every_slot(tmp_path, testlib, testlib_path):
    # An unload makes that record unusable (the object's slots are gone, and another object may
    # be loaded where it was): stop reads every loaded object's relocations instead, and neither
    # writes into the unmapped library nor leaves the others hooked.
    import _ctypes

    libc_malloc = ctypes.cast(ctypes.CDLL(None).malloc, ctypes.c_void_p).value
    gone_copy = tmp_path / "libgone.so"
    shutil.copy(testlib_path, gone_copy)
    with Tracker(tmp_path / "gone.bin"):
        gone = load(gone_copy)
        assert gone.malloc_slot() != libc_malloc
        handle = gone._handle
        del gone
        _ctypes.dlclose(handle)
        assert str(gone_copy) not in Path("/proc/self/maps").read_text(), "the library is still mapped"
        assert testlib.malloc_slot() != libc_malloc
    assert testlib.malloc_slot() == libc_malloc, "the hook stayed on the allocation path after stop"


class ArenaAllocator(ctypes.Structure):
    _fields_ = [("ctx", ctypes.c_void_p), ("alloc", ctypes.c_void_p), ("free", ctypes.c_void_p)]


def arena_allocator() -> tuple:
    allocator = ArenaAllocator()
    ctypes.pythonapi.PyObject_GetArenaAllocator(ctypes.byref(allocator))
    return allocator.ctx, allocator.alloc, allocator.free


def recurse(depth: int) -> int:
    return 0 if depth == 0 else recurse(depth - 1) + 1


@pytest.mark.skipif(sys.version_info < (3, 11), reason="data stack chunks (and our arena cache) are 3.11+")
def test_data_stack_chunks_are_recorded_exactly_and_the_arena_allocator_is_restored(tmp_path, python_allocators):
    before = arena_allocator()
    out = tmp_path / "chunks.bin"
    with Tracker(out, trace_python_allocators=python_allocators):
        assert arena_allocator() != before
        # Each call to a depth past the first 16 KiB chunk maps a new chunk and releases it on
        # return: the cache hands the same block back, and each use is still an mmap/munmap pair.
        for _ in range(200):
            recurse(400)
    assert arena_allocator() == before, "our arena allocator stayed installed after stop"
    capture = Capture.open(out)
    mmaps = [s for s in capture.total_stacks(merge_allocators=False) if s.allocator == "mmap"]
    chunk_maps = sum(s.count for s in mmaps if s.location and s.location.function == "recurse")
    assert chunk_maps >= 200
    # Every chunk was released: none of recurse's mappings is live at the end, but for the one
    # that 3.14+ keeps for the thread's next deep call (PyThreadState.datastack_cached_chunk).
    live = [s for s in capture.leak_stacks(merge_allocators=False)
            if s.allocator == "mmap" and s.location and s.location.function == "recurse"]
    assert sum(s.count for s in live) <= (1 if sys.version_info >= (3, 14) else 0)


def test_numpy_buffer_is_seen(tmp_path, python_allocators):
    np = pytest.importorskip("numpy")
    out = tmp_path / "numpy.bin"
    with Tracker(out, trace_python_allocators=python_allocators):
        array = np.ones(10_000_000); line = here()  # noqa: E702
        del array
    capture = Capture.open(out)
    top = capture.peak_stacks()[0]
    assert top.bytes >= 80_000_000  # 76.3 MiB of float64
    assert top.location.function == "ones"  # numpy's own Python code calls into C
    assert ("test_numpy_buffer_is_seen", line) in [(f.function, f.line) for f in top.frames]


def test_eight_python_threads_counts_are_exact(tmp_path, python_allocators, testlib):
    out = tmp_path / "threads.bin"
    per_thread = 500
    barrier = threading.Barrier(8)

    def work(index: int) -> None:
        size = 10_007 + index  # a size only this thread uses
        barrier.wait()
        kept = []
        for i in range(per_thread):
            pointer = testlib.alloc_malloc(size)  # ctypes releases the GIL: real concurrency
            if i % 2:
                testlib.release(pointer)
            else:
                kept.append(pointer)
        work.kept[index] = kept

    work.kept = {}
    with Tracker(out, trace_python_allocators=python_allocators):
        threads = [threading.Thread(target=work, args=(i,), name=f"worker-{i}") for i in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    capture = Capture.open(out)
    names = {t.name: t.thread_id for t in capture.threads()}
    totals = capture.total_stacks(merge_threads=False, merge_allocators=False)
    leaks = capture.leak_stacks(merge_threads=False, merge_allocators=False)
    for index in range(8):
        tid = names[f"worker-{index}"]
        size = 10_007 + index
        made = [s for s in totals if s.thread_id == tid and s.allocator == "malloc" and s.bytes % size == 0
                and s.location and s.location.function.endswith("work")]
        live = [s for s in leaks if s.thread_id == tid and s.allocator == "malloc" and s.bytes % size == 0
                and s.location and s.location.function.endswith("work")]
        assert sum(s.count for s in made) == per_thread
        assert sum(s.count for s in live) == per_thread // 2
    for kept in work.kept.values():
        for pointer in kept:
            testlib.release(pointer)


def leak_into_global():
    _GLOBAL_CACHE.append(bytearray(3_000_000))


def make_collectable_cycle():
    node = [bytearray(2_000_000)]
    node.append(node)


def test_global_list_leaks_and_collected_cycle_does_not(tmp_path, python_allocators):
    out = tmp_path / "leaks.bin"
    gc.collect()
    with Tracker(out, trace_python_allocators=python_allocators):
        leak_into_global()
        make_collectable_cycle()
        gc.collect()
    capture = Capture.open(out)
    leaks = capture.leak_stacks()
    assert [s for s in leaks if s.bytes >= 3_000_000 and s.location.function == "leak_into_global"]
    assert not [s for s in leaks if s.location and s.location.function == "make_collectable_cycle"
                and s.bytes >= 2_000_000]
    _GLOBAL_CACHE.clear()


def test_second_tracker_while_one_runs_is_refused(tmp_path):
    with Tracker(tmp_path / "first.bin"):
        with pytest.raises(TrackerError, match="already active"):
            Tracker(tmp_path / "second.bin").start()
    assert not Tracker.is_active()


def test_existing_file_is_not_overwritten_without_permission(tmp_path):
    out = tmp_path / "exists.bin"
    out.write_bytes(b"precious")
    with pytest.raises(TrackerError, match="already exists"):
        Tracker(out).start()
    assert out.read_bytes() == b"precious"
    with Tracker(out, overwrite=True):
        pass
    assert Capture.open(out).metadata.pid > 0


def test_unwritable_folder_is_a_clear_error(tmp_path):
    with pytest.raises(TrackerError, match="does not exist"):
        Tracker(tmp_path / "missing" / "out.bin").start()
    assert not Tracker.is_active()


def test_memory_destination_windows_count_only_their_own_allocations(tmp_path):
    from pytest_memprof._reader import CaptureReader

    reader = CaptureReader()
    tracker = Tracker(None)
    with tracker:
        first = allocate_fifty_mib()
        tracker.pause()
        reader.feed(tracker.drain())
        unrecorded = bytearray(20 * MiB)  # paused: not recorded anywhere
        reader.reset_window()  # a new window: what came before does not count
        tracker.resume()
        second = bytearray(5 * MiB)
        del second, first  # freeing the first window's block is not this window's business
        tracker.pause()
        reader.feed(tracker.drain())
        capture = Capture.from_reader(reader)
        assert 5 * MiB <= capture.peak_bytes < 6 * MiB
        assert capture.leaked_bytes < MiB
        top = capture.peak_stacks()[0]
        assert top.location.function == "test_memory_destination_windows_count_only_their_own_allocations"
        assert reader.unmatched_frees >= 1
    reader.feed(tracker.drain())
    del unrecorded


def test_a_paused_tracker_records_nothing_from_any_allocator_and_resumes_whole(tmp_path):
    # Paused, every hook passes straight through before taking the tracker's lock (between tests
    # pytest's own work is most of the events): none may slip into the stream, and what is
    # allocated then and freed after the resume is a free of a block the reader never saw.
    import mmap

    from pytest_memprof._reader import CaptureReader

    libc = ctypes.CDLL(None)
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    reader = CaptureReader()
    tracker = Tracker(None)
    with tracker:
        tracker.pause()
        reader.feed(tracker.drain())
        reader.reset_window()
        objects = [str(i) * 3 for i in range(5_000)]  # pymalloc
        raw = libc.malloc(3 * MiB)  # C malloc
        mapped = mmap.mmap(-1, 4 * MiB)  # mmap
        worker = threading.Thread(target=lambda: bytearray(2 * MiB))
        worker.start()
        worker.join()
        reader.feed(tracker.drain())
        assert Capture.from_reader(reader).total_allocations == 0
        tracker.resume()
        del objects
        libc.free(raw)
        mapped.close()
        kept = bytearray(5 * MiB)
        tracker.pause()
        reader.feed(tracker.drain())
        capture = Capture.from_reader(reader)
        assert 5 * MiB <= capture.peak_bytes < 6 * MiB
        assert reader.unmatched_frees >= 5_000
        del kept
        tracker.resume()


def _window_figures(reader) -> tuple:
    capture = Capture.from_reader(reader)
    stacks = [(stat.frames, stat.bytes, stat.count) for stat in capture.peak_stacks()]
    return (capture.peak_bytes, capture.leaked_bytes, capture.total_allocations, capture.total_bytes,
            reader.unmatched_frees, stacks)


def test_a_followed_reader_replays_what_a_drain_would_give_it(tmp_path):
    # The pytest plugin's reader is fed each buffer of records by the tracker's own thread while
    # the test runs (Tracker.follow); what the drain then returns starts with the bytes it had.
    # Fed the rest, it must read exactly as a reader fed the whole drain: every count, every stack,
    # frees of blocks made by another thread and addresses that thread reused included.
    import threading
    import time

    from pytest_memprof._reader import CaptureReader

    followed, whole = CaptureReader(), CaptureReader()
    tracker = Tracker(None)
    with tracker:
        tracker.pause()
        start = tracker.drain()
        followed.feed(start)
        whole.feed(start)
        tracker.follow(followed)
        handed_over = 0
        for _window in range(2):
            followed.reset_window()
            whole.reset_window()
            tracker.resume()
            kept = [bytearray(100 + i % 50) for i in range(60_000)]  # several MiB of records
            handed: list = []
            # The generator runs, and so allocates, on the worker.
            worker = threading.Thread(target=handed.extend, args=((bytearray(64) for _ in range(20_000)),))
            worker.start()
            worker.join()
            del kept[::2]
            del handed[::3]  # made by the worker, freed here; their addresses are reused below
            again = [bytearray(64) for _ in range(10_000)]
            time.sleep(0.2)  # the follower's turn, on a loaded machine too
            tracker.pause()
            data, had = tracker.drain_followed()
            assert had <= len(data)
            handed_over += had
            followed.feed(memoryview(data)[had:])
            whole.feed(data)
            followed.close_window()
            whole.close_window()
            assert _window_figures(followed) == _window_figures(whole)
            assert not followed.follow_failed
            del kept, handed, again
        assert handed_over > 0  # the follower did replay records
        # Stopped mid-window, the follower keeps what it had; what came after it goes to the drain.
        followed.reset_window()
        whole.reset_window()
        tracker.resume()
        kept = [bytearray(100) for _ in range(150_000)]  # buffers made for the follower, handed or not yet
        tracker.follow(None)
        kept += [bytearray(200) for _ in range(40_000)]
        tracker.pause()
        data, had = tracker.drain_followed()
        assert had < len(data)
        followed.feed(memoryview(data)[had:])
        whole.feed(data)
        assert _window_figures(followed) == _window_figures(whole)
        del kept
        tracker.resume()
    # Not following, a drain is all for its caller again.
    with tracker:
        tracker.pause()
        assert tracker.drain_followed()[1] == 0


def test_header_and_timeline(tmp_path):
    import os
    import time

    out = tmp_path / "meta.bin"
    with Tracker(out):
        keep = bytearray(8 * MiB)
        time.sleep(0.1)
    capture = Capture.open(out)
    assert capture.metadata.pid == os.getpid()
    assert capture.metadata.python_version.count(".") == 2
    assert capture.metadata.trace_python_allocators is True
    assert capture.duration >= 0.1
    timeline = capture.timeline()
    assert len(timeline) >= 5
    assert max(point.rss_bytes for point in timeline) > 8 * MiB
    assert max(point.heap_bytes for point in timeline) >= 8 * MiB
    del keep


def test_header_is_what_json_and_platform_would_write(tmp_path):
    # The header is written without importing json or platform (start-up): the bytes are json.dumps's
    # and the values platform's, for a command line with quotes, non-ASCII and undecodable bytes in it.
    import json
    import platform

    out = tmp_path / "header.bin"
    command_line = 'memprof run -c "print(\'é\')" \U0001f600 \\ \udcff\t' + os.fsdecode(b"\xff")
    tracker = Tracker(out, command_line=command_line, launcher_files=("/pytest_memprof/", "<frozen runpy>"))
    with tracker:
        pass
    raw = out.read_bytes()
    text = raw[16:16 + int.from_bytes(raw[12:16], "little")].decode("ascii")
    assert text == f'{{"pid": {os.getpid()}, ' + json.dumps(tracker._header)[1:]
    header = json.loads(text)
    assert header["command_line"] == command_line
    assert header["python_version"] == platform.python_version()
    assert header["platform"] == platform.platform()
    assert header["runner_files"] == ["/pytest_memprof/", "<frozen runpy>"]


def test_capture_stream_is_a_standard_lz4_frame(tmp_path):
    lz4_frame = pytest.importorskip("lz4.frame")
    out = tmp_path / "lz4.bin"
    with Tracker(out):
        [bytearray(100) for _ in range(1000)]
    raw = out.read_bytes()
    assert raw[:8] == b"MEMPROF\x00"
    header_length = int.from_bytes(raw[12:16], "little")
    body = lz4_frame.decompress(raw[16 + header_length:])
    assert len(body) > 1000


def test_without_python_allocators_pymalloc_is_not_hooked(tmp_path):
    out = tmp_path / "nopy.bin"
    with Tracker(out, trace_python_allocators=False):
        data = allocate_fifty_mib()
        del data
    capture = Capture.open(out)
    assert not any(name.startswith("Py") for name in capture.allocator_totals())
    assert capture.peak_stacks()[0].location.function == "allocate_fifty_mib"


def test_temporal_stacks_tell_when_memory_was_allocated_and_freed(tmp_path):
    import time

    out = tmp_path / "temporal.bin"
    with Tracker(out):
        early = bytearray(4 * MiB)
        time.sleep(0.05)
        late = bytearray(6 * MiB)
        time.sleep(0.05)
        del early
        time.sleep(0.05)
    capture = Capture.open(out)
    intervals = [i for i in capture.temporal_stacks() if i.bytes >= 4 * MiB]
    by_size = {round(i.bytes / MiB): i for i in intervals}
    # Ordering only: sample times are 10 ms ticks of a thread a busy machine may delay.
    assert by_size[4].freed_s is not None and by_size[4].freed_s > by_size[4].allocated_s
    assert by_size[6].freed_s is None  # still live at the end
    assert by_size[6].allocated_s >= by_size[4].allocated_s
    del late


EMBEDDED_SCRIPT = """
from pytest_memprof import Capture, Tracker

def allocate_in_the_embedded_program():
    return bytearray(3_000_001)

with Tracker(__file__ + ".bin"):
    kept = allocate_in_the_embedded_program()
top = Capture.open(__file__ + ".bin").peak_stacks()[0]
print(top.bytes, top.location.function)
"""


def test_a_non_pie_program_that_takes_mallocs_address_is_tracked(tmp_path):
    # Debian's python3 is such a program: dlsym(RTLD_DEFAULT, "malloc") names the program's own
    # PLT entry, which jumps through the slot we patch. Taken for the original, it made every
    # allocation call our hook again, forever.
    config = Path(sysconfig.get_config_var("BINDIR")) / f"python{sysconfig.get_python_version()}-config"
    if not config.exists():
        pytest.skip(f"{config.name} is not installed (the Python headers' package has it)")
    program = build_embedding_program(tmp_path)
    script = tmp_path / "embedded.py"
    script.write_text(EMBEDDED_SCRIPT)
    site_packages = [p for p in sys.path if p.endswith("site-packages")]
    env = subprocess_env(PYTHONPATH=os.pathsep.join([str(PACKAGE_PARENT), *site_packages]))
    done = subprocess.run([str(program), str(script)], env=env, cwd=tmp_path, capture_output=True, text=True,
                          timeout=60)  # before the fix it never ended
    assert done.returncode == 0, done.stderr
    size, function = done.stdout.split()
    assert int(size) >= 3_000_001
    assert function == "allocate_in_the_embedded_program"
