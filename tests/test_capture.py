"""Capture files are untrusted input: any corruption gives a CaptureError or a truncated capture, never a crash.

Hypothesis mutates a real capture (its header, its compressed bytes, and its decoded record
stream re-compressed so the LZ4 checksums pass and the damage reaches the record decoder) and
writes random record streams. The reader runs in this process: a crash fails the whole run.
"""

from __future__ import annotations

import struct
import sys
import threading

import lz4.frame
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pytest_memprof import Capture, Tracker  # noqa: E402
from pytest_memprof.errors import CaptureError  # noqa: E402
from tests.records import string, varint, zigzag  # noqa: E402

FUZZ = settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])


def allocate_some():
    kept = [bytearray(100 + i) for i in range(50)]
    worker = threading.Thread(target=lambda: [bytes(2000) for _ in range(20)], name="fuzz-worker")
    worker.start()
    worker.join()
    return kept


@pytest.fixture(scope="module")
def real_capture(tmp_path_factory) -> tuple[bytes, bytes, bytes]:
    """(fixed header + JSON header, compressed stream, decoded records) of a small real capture."""
    path = tmp_path_factory.mktemp("fuzz") / "real.bin"
    with Tracker(path):
        kept = allocate_some()
        del kept
    data = path.read_bytes()
    (header_length,) = struct.unpack_from("<I", data, 12)
    prefix, stream = data[: 16 + header_length], data[16 + header_length :]
    return prefix, stream, lz4.frame.decompress(stream)


def read_everything(path) -> None:
    """Open a capture and ask for every aggregate: each must come back or raise CaptureError."""
    try:
        capture = Capture.open(path)
    except CaptureError as error:
        assert str(error)  # one message for the user, naming the problem
        return
    assert capture.truncated or capture.problem is None
    capture.peak_stacks(merge_threads=False, merge_allocators=False)
    capture.leak_stacks()
    capture.temporary_stacks()
    capture.total_stacks()
    capture.timeline()
    capture.threads()
    capture.size_histogram()
    capture.allocator_totals()
    try:
        capture.temporal_stacks()
    except CaptureError:
        pass


def test_the_unmutated_capture_reads_whole(real_capture, tmp_path):
    prefix, stream, _ = real_capture
    path = tmp_path / "whole.bin"
    path.write_bytes(prefix + stream)
    capture = Capture.open(path)
    assert not capture.truncated
    assert capture.total_allocations >= 70


@FUZZ
@given(data=st.data())
def test_mutated_records_are_rejected_or_read(real_capture, tmp_path, data):
    prefix, _, records = real_capture
    damaged = bytearray(records)
    for _ in range(data.draw(st.integers(1, 8), label="edits")):
        position = data.draw(st.integers(0, len(damaged) - 1), label="position")
        action = data.draw(st.sampled_from(["flip", "set", "insert", "delete", "truncate"]), label="action")
        if action == "flip":
            damaged[position] ^= 1 << data.draw(st.integers(0, 7))
        elif action == "set":
            damaged[position] = data.draw(st.sampled_from([0x00, 0x7F, 0x80, 0xFF, 64, 65, 66, 67, 68, 69, 70]))
        elif action == "insert":
            damaged[position:position] = data.draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del damaged[position : position + data.draw(st.integers(1, 16))]
        else:
            del damaged[position:]
        if not damaged:
            break
    path = tmp_path / "records.bin"
    path.write_bytes(prefix + lz4.frame.compress(bytes(damaged)))
    read_everything(path)


@FUZZ
@given(data=st.data())
def test_mutated_file_bytes_are_rejected_or_read(real_capture, tmp_path, data):
    prefix, stream, _ = real_capture
    damaged = bytearray(prefix + stream)
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(damaged))), label="cut")
    if cut is not None:
        del damaged[cut:]
    for _ in range(data.draw(st.integers(0, 4), label="flips")):
        if not damaged:
            break
        position = data.draw(st.integers(0, len(damaged) - 1), label="position")
        damaged[position] = data.draw(st.integers(0, 255), label="byte")
    path = tmp_path / "file.bin"
    path.write_bytes(bytes(damaged))
    read_everything(path)


@FUZZ
@given(records=st.binary(max_size=512))
def test_random_record_streams_are_rejected_or_read(real_capture, tmp_path, records):
    prefix, _, _ = real_capture
    path = tmp_path / "random.bin"
    path.write_bytes(prefix + lz4.frame.compress(records))
    read_everything(path)


ADDRESS_LOW, MALLOC, MMAP, MUNMAP, PY_RAW_FREE = 75, 1, 9, 33, 34
HUGE = 2**64 - 1


@pytest.mark.parametrize(
    ("version", "records"),
    [
        # Versions 1 and 2: kind, zigzag(address - previous address), [size, stack]
        (1, bytes([PY_RAW_FREE, 0x01])),  # a PyMem_RawFree of address -1: the live table's empty-slot key (crashed)
        (1, bytes([MALLOC, 0x01, 16, 0])),  # a malloc at address -1
        (1, bytes([MMAP, 0x00, *varint(HUGE), 0])),  # an mmap past the end
        (1, bytes([MMAP, 0x80, 0x40, 0x80, 0x40, 0, MUNMAP, 0x7F, *varint(HUGE)])),  # an munmap range that wraps
        # Version 3: kind, size, address (2 * zigzag(delta in 16-byte units) + 1, or 2 * events back), stack
        (3, bytes([ADDRESS_LOW, 15, PY_RAW_FREE, *varint(2 * zigzag(-1) + 1)])),
        (3, bytes([ADDRESS_LOW, 15, MALLOC, 16, *varint(2 * zigzag(-1) + 1), 0])),
        (3, bytes([MMAP, *varint(HUGE), *varint(2 * zigzag(1) + 1), 0])),
        (3, bytes([MMAP, *varint(0x1000), *varint(2 * zigzag(0x100) + 1), 0, MUNMAP, 2, *varint(HUGE)])),
        (3, bytes([ADDRESS_LOW, 16, MALLOC, 16, 5, 0])),  # low bits that are not low
        (3, bytes([ADDRESS_LOW, 0, MALLOC, 16, 5, 0])),
        (3, bytes([MALLOC, 16, 5, 0, 32, 4])),  # two events back, in a stream of one
        (3, bytes([MALLOC, 16, 5, 0, 32, 0])),  # zero events back
        (3, bytes([MALLOC, 16, 5, 0, ADDRESS_LOW, 8, 32, 2])),  # low bits for a recent address
        (3, bytes([MALLOC, 16, 5, 0, 32, *varint(2 << 16)])),  # further back than a reader keeps
    ],
)
def test_impossible_addresses_are_refused_not_followed(real_capture, tmp_path, version, records):
    prefix, _, _ = real_capture
    path = tmp_path / "addresses.bin"
    path.write_bytes(prefix[:8] + struct.pack("<H", version) + prefix[10:] + lz4.frame.compress(records))
    read_everything(path)


@pytest.mark.parametrize(
    "header",
    [b"[]", b"{not json", b'{"pid": "many", "start_time": "yesterday", "native": "perhaps"}', b"\xff\xfe"],
)
def test_bad_json_headers_are_one_clear_error_or_tolerated(real_capture, tmp_path, header):
    _, stream, _ = real_capture
    path = tmp_path / "header.bin"
    path.write_bytes(b"MEMPROF\0" + struct.pack("<HHI", 1, 0, len(header)) + header + stream)
    read_everything(path)


def test_a_header_length_past_the_end_is_a_clear_error(tmp_path):
    path = tmp_path / "long.bin"
    path.write_bytes(b"MEMPROF\0" + struct.pack("<HHI", 1, 0, 1 << 30) + b"{}")
    with pytest.raises(CaptureError):
        Capture.open(path)


ODD_ALLOCATIONS = """
import ctypes, json, sys
ctypes.CDLL(sys.argv[1]).install_odd_raw_allocator()
from pytest_memprof import Tracker
raw_malloc, raw_free = ctypes.pythonapi.PyMem_RawMalloc, ctypes.pythonapi.PyMem_RawFree
raw_malloc.restype, raw_malloc.argtypes = ctypes.c_void_p, [ctypes.c_size_t]
raw_free.restype, raw_free.argtypes = None, [ctypes.c_void_p]
blocks = [raw_malloc(size) for size in (24, 40, 24, 600, 24, 70000, 40, 24)]
with Tracker(sys.argv[2]):
    blocks += [raw_malloc(size) for size in (24, 40, 24, 600, 24, 70000, 40, 24)]
    for block in blocks[::2]:
        raw_free(block)
print(json.dumps(blocks))
"""


def test_addresses_off_the_16_byte_grid_keep_every_bit(tmp_path):
    """Addresses travel in 16-byte units; one that is not (an allocator 8 bytes off) must come back exact."""
    import json
    import subprocess

    from tests.conftest import subprocess_env
    from tests.native_lib import build_odd_allocator

    library = build_odd_allocator(tmp_path)
    script = tmp_path / "odd.py"
    script.write_text(ODD_ALLOCATIONS)
    capture = tmp_path / "odd.bin"
    result = subprocess.run([sys.executable, str(script), str(library), str(capture)], capture_output=True, text=True,
                            env=subprocess_env(), cwd=tmp_path, timeout=120)
    assert result.returncode == 0, result.stderr
    blocks = json.loads(result.stdout)
    assert all(block % 16 == 8 for block in blocks)
    parsed = subprocess.run([sys.executable, "-m", "pytest_memprof", "parse", str(capture)], capture_output=True,
                            text=True, env=subprocess_env(), cwd=tmp_path, timeout=120)
    assert parsed.returncode == 0, parsed.stderr
    allocated = [int(line.split("address=")[1].split()[0], 16) for line in parsed.stdout.splitlines()
                 if line.startswith("ALLOC PyMem_RawMalloc")]
    freed = [int(line.split("address=")[1].split()[0], 16) for line in parsed.stdout.splitlines()
             if line.startswith("FREE PyMem_RawFree")]
    assert [a for a in allocated if a in blocks] == blocks[8:]
    assert [f for f in freed if f in blocks] == blocks[::2]
    leaked = Capture.open(capture).leak_stacks(merge_allocators=False)
    assert sum(s.bytes for s in leaked if s.allocator == "PyMem_RawMalloc") >= 40 + 600 + 70000 + 24


TABLES = bytes([66]) + string(b"build") + string(b"app.py") + varint(1) + bytes([67, 0, 0, 3, 64, 7])
SAME_EVENTS = {
    # malloc(100) at 0x1000, malloc(50) at 0x2008, free(0x1000): each version's coding of it
    1: bytes([MALLOC, *varint(zigzag(0x1000)), 100, 2, MALLOC, *varint(zigzag(0x1008)), 50, 0,
              32, *varint(zigzag(-0x1008))]),
    # (an address field is 2 * zigzag(delta in 16-byte units) + 1, or 2 * how many events back it was)
    3: bytes([MALLOC, 100, *varint(2 * zigzag(0x100) + 1), 2, ADDRESS_LOW, 8, MALLOC, 50,
              *varint(2 * zigzag(0x200) + 1), 0, 32, 2 * 2]),
}


@pytest.mark.parametrize("version", [1, 2, 3])
def test_every_format_version_this_reader_knows_gives_the_same_answers(tmp_path, version):
    path = tmp_path / f"v{version}.bin"
    header = b'{"pid": 7}'
    path.write_bytes(b"MEMPROF\0" + struct.pack("<HHI", version, 0, len(header)) + header
                     + lz4.frame.compress(TABLES + SAME_EVENTS[1 if version < 3 else 3]))
    capture = Capture.open(path)
    assert capture.metadata.format_version == version
    assert (capture.peak_bytes, capture.leaked_bytes, capture.total_allocations) == (150, 50, 2)
    (leak,) = capture.leak_stacks()
    assert (leak.bytes, leak.frames[0].function, leak.frames[0].line) == (50, "build", 3)



@pytest.mark.parametrize("collecting", [True, False])
def test_building_stacks_runs_no_cycle_collection_and_leaves_the_collector_as_it_was(tmp_path, collecting):
    import gc

    path = tmp_path / "gc.bin"
    with Tracker(path):
        kept = [bytearray(100 + i) for i in range(50)]
    del kept
    capture = Capture.open(path)
    collections = []

    def count(phase, info):
        # A collection that starts while a stack is being built (Capture.stack on the call stack).
        frame = sys._getframe(1)
        while frame is not None and frame.f_code is not Capture.stack.__code__:
            frame = frame.f_back
        if phase == "start" and frame is not None:
            collections.append(info["generation"])

    was, thresholds = gc.isenabled(), gc.get_threshold()
    (gc.enable if collecting else gc.disable)()
    gc.set_threshold(1, 1, 1)  # a collection at every allocation, unless paused
    gc.callbacks.append(count)
    try:
        stats = capture.total_stacks()
        gc.callbacks.remove(count)
        assert gc.isenabled() is collecting
    finally:
        if count in gc.callbacks:
            gc.callbacks.remove(count)
        gc.set_threshold(*thresholds)
        (gc.enable if was else gc.disable)()
    assert stats
    assert collections == []


def test_the_largest_stacks_alone_and_the_view_totals_agree_with_all_stacks(tmp_path):
    path = tmp_path / "most.bin"
    with Tracker(path):
        # A stack per line, whatever the version does with comprehensions (3.12+ inlines them).
        kept = [bytearray(1_000)]
        kept.append(bytearray(2_000))
        kept.append(bytearray(3_000))
        kept.append(bytearray(4_000))
        kept.append(bytearray(5_000))
    del kept
    capture = Capture.open(path)
    every = Capture.open(path).stacks("total")
    assert len(every) >= 5
    assert capture.stacks("total", most=3) == every[:3]
    assert capture.view_totals("total") == (len(every), sum(stat.bytes for stat in every))


def test_the_fast_makers_build_what_the_dataclasses_build():
    # Capture builds StackStats and Frames through model.make_*: every field, in order, so a field
    # added to either dataclass must be added there too.
    import dataclasses
    import inspect

    from pytest_memprof.model import Frame, StackStat, make_frame, make_stack_stat

    for cls, make, values in ((StackStat, make_stack_stat, ((Frame("f", "a.py", 3),), 10, 2, 7, "malloc", True)),
                              (Frame, make_frame, ("f", "a.py", 3, True, 1))):
        assert list(inspect.signature(make).parameters) == [field.name for field in dataclasses.fields(cls)]
        made, built = make(*values), cls(*values)
        assert type(made) is cls
        assert made == built and hash(made) == hash(built) and repr(made) == repr(built)
        assert dataclasses.asdict(made) == dataclasses.asdict(built)
        with pytest.raises(dataclasses.FrozenInstanceError):
            made.line = 4  # type: ignore[misc]
