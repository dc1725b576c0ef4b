"""``memprof stats``: the terminal summary and its JSON twin agree with the capture."""

from __future__ import annotations

import json
import struct

import pytest

from pytest_memprof import Capture, Tracker
from tests.records import whole_frame_end

from .conftest import assert_one_line_error


def make_buffers():
    buffers = []
    for i in range(5):
        buffers.append(bytearray(1_000_000 + i))
    return buffers


@pytest.fixture
def capture_path(tmp_path):
    path = tmp_path / "cap.bin"
    with Tracker(path):
        kept = make_buffers()
        del kept
    return path


def test_text_and_json_agree_with_the_capture(memprof, capture_path):
    capture = Capture.open(capture_path)
    text = memprof("stats", str(capture_path))
    assert text.returncode == 0, text.stderr
    assert "Peak" in text.stdout and "make_buffers" in text.stdout
    assert "Allocation sizes" in text.stdout

    as_json = memprof("stats", "--json", str(capture_path))
    assert as_json.returncode == 0, as_json.stderr
    stats = json.loads(as_json.stdout)
    assert stats["schema_version"] == 1
    assert stats["peak_bytes"] == capture.peak_bytes
    assert stats["leaked_bytes"] == capture.leaked_bytes
    assert stats["total_allocations"] == capture.total_allocations
    assert stats["truncated"] is False
    # The histogram covers every allocation once, in increasing buckets.
    assert sum(bucket["count"] for bucket in stats["size_histogram"]) == capture.total_allocations
    bounds = [bucket["upper_bound"] for bucket in stats["size_histogram"]]
    assert bounds == sorted(bounds)
    assert sum(a["count"] for a in stats["allocators"].values()) == capture.total_allocations
    assert stats["top_by_bytes"][0]["function"] == "make_buffers"


def test_not_a_capture_missing_and_newer_version_are_one_line_errors(memprof, tmp_path, capture_path):
    garbage = tmp_path / "garbage.bin"
    garbage.write_bytes(b"this is not a capture file at all, just some words")
    assert_one_line_error(memprof("stats", str(garbage)), "not a memprof capture")

    assert_one_line_error(memprof("stats", str(tmp_path / "missing.bin")), "missing.bin")

    newer = tmp_path / "newer.bin"
    data = bytearray(capture_path.read_bytes())
    struct.pack_into("<H", data, 8, 999)
    newer.write_bytes(bytes(data))
    assert_one_line_error(memprof("stats", str(newer)), "version 999")


def test_json_says_how_much_of_a_cut_capture_could_not_be_decoded(memprof, tmp_path, capture_path):
    whole = json.loads(memprof("stats", "--json", str(capture_path)).stdout)
    assert whole["truncation"] is None and whole["undecoded_bytes"] == 0 and whole["records_lost_at_end"] is False

    data = capture_path.read_bytes()
    cut = tmp_path / "cut.bin"
    cut.write_bytes(data[:-20])
    result = memprof("stats", "--json", str(cut))
    assert result.returncode == 0, result.stderr  # truncated, not damaged: as a report of it in the terminal
    stats = json.loads(result.stdout)
    lost = len(data) - 20 - whole_frame_end(data[:-20])
    assert lost > 0
    assert stats["truncated"] is True and stats["damaged"] is None
    assert stats["undecoded_bytes"] == lost and stats["records_lost_at_end"] is True
    assert f"its last {lost:,} bytes could not be decoded" in stats["truncation"]
