"""Capture files are untrusted input: any corruption gives a CaptureError or a truncated capture, never a crash.

Hypothesis mutates a real capture (its header, its compressed bytes, and its decoded record
stream re-compressed so the LZ4 checksums pass and the damage reaches the record decoder) and
writes random record streams. The reader runs in this process: a crash fails the whole run.
"""

from __future__ import annotations

import struct
import threading

import lz4.frame
import pytest

hypothesis = pytest.importorskip("hypothesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402
from hypothesis import strategies as st  # noqa: E402

from pytest_memprof import Capture, Tracker  # noqa: E402
from pytest_memprof.errors import CaptureError  # noqa: E402

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


@pytest.mark.parametrize(
    "records",
    [
        bytes([34, 0x01]),  # a PyMem_RawFree of address -1: the live table's empty-slot key (crashed)
        bytes([1, 0x01, 16, 0]),  # a malloc at address -1
        bytes([9, 0x00, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01, 0]),  # an mmap past the end
        bytes([9, 0x80, 0x40, 0x80, 0x40, 0, 33, 0x7F, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0x01]),
    ],
)
def test_impossible_addresses_are_refused_not_followed(real_capture, tmp_path, records):
    prefix, _, _ = real_capture
    path = tmp_path / "addresses.bin"
    path.write_bytes(prefix + lz4.frame.compress(records))
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
