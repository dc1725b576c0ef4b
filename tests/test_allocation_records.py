"""Capture.allocation_records and allocations_at: the capture record by record, as memray's FileReader gives it."""

from __future__ import annotations

import time

import pytest

from pytest_memprof import Capture, Tracker
from pytest_memprof.errors import CaptureError

MiB = 2**20


def make_first():
    return bytearray(3 * MiB)


def make_second():
    return bytearray(5 * MiB)


def wait_a_tick():
    # Longer than the tracker's 10 ms clock, so the two phases fall on different times.
    time.sleep(0.15)


@pytest.fixture
def two_phases(tmp_path):
    path = tmp_path / "two.bin"
    with Tracker(path):
        first = make_first()
        wait_a_tick()
        del first
        second = make_second()
        wait_a_tick()
    del second
    return Capture.open(path)


def record_of(records, function):
    # A bytearray is its object, then its buffer: the buffer is the one of MiBs.
    found = [
        record
        for record in records
        if not record.deallocation
        and record.size >= MiB
        and record.stack_trace()
        and record.stack_trace()[0][0] == function
    ]
    assert len(found) == 1, found
    return found[0]


def test_every_allocation_and_its_free_come_in_order_with_their_stacks(two_phases):
    records = list(two_phases.allocation_records())
    first, second = record_of(records, "make_first"), record_of(records, "make_second")
    assert 3 * MiB <= first.size < 3 * MiB + 64 and 5 * MiB <= second.size < 5 * MiB + 64
    assert first.allocator and first.tid == first.thread_id and first.n_allocations == 1
    assert first.stack()[-1].function == "make_first"  # ours: outermost first
    assert first.stack_trace(max_stacks=1) == [("make_first", __file__, first.stack()[-1].line)]
    freed = [
        index
        for index, record in enumerate(records)
        if record.deallocation and record.address == first.address and records.index(first) < index
    ]
    assert freed and freed[0] < records.index(second)
    assert records[freed[0]].stack() == () and records[freed[0]].size == 0
    assert [record.time_s for record in records] == sorted(record.time_s for record in records)
    allocations = [record for record in records if not record.deallocation]
    assert len(allocations) == two_phases.total_allocations
    assert sum(record.size for record in allocations) == two_phases.total_bytes


def test_a_snapshot_holds_what_was_live_at_that_time(two_phases):
    records = list(two_phases.allocation_records())
    first, second = record_of(records, "make_first"), record_of(records, "make_second")
    assert first.time_s < second.time_s
    during_first = two_phases.allocations_at((first.time_s + second.time_s) / 2)
    assert first in during_first and second not in during_first
    at_end = two_phases.allocations_at(two_phases.duration)
    assert second in at_end and first not in at_end
    # At the end, what is live is what the capture calls leaked.
    assert sum(record.size for record in at_end) == two_phases.leaked_bytes


def test_an_aggregated_capture_has_no_records(tmp_path):
    path = tmp_path / "aggregated.bin"
    with Tracker(path, aggregate=True):
        kept = make_first()
    del kept
    with pytest.raises(CaptureError, match="aggregated"):
        next(Capture.open(path).allocation_records())
