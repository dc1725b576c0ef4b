"""A damaged capture is called damaged: each LZ4 block carries a checksum, a block that fails it is
skipped with its events counted as lost, and decoding resumes at the next block (format version 5)."""

from __future__ import annotations

import json
import struct
import subprocess
import sys
import textwrap
from pathlib import Path

import lz4.frame
import pytest
from pytest_memprof._reader import FORMAT_VERSION

from pytest_memprof import Capture
from tests.conftest import subprocess_env
from tests.records import FIXED_HEADER

DATA = Path(__file__).parent / "data"


def blocks(data: bytes) -> list[tuple[int, int]]:
    """(offset, size) of each data block of the capture's LZ4 frame, read here per the LZ4 frame format."""
    _, _, _, header_length = FIXED_HEADER.unpack_from(data)
    pos = FIXED_HEADER.size + header_length
    assert struct.unpack_from("<I", data, pos)[0] == 0x184D2204
    flags = data[pos + 4]
    assert flags & 0x20, "version 5 blocks are independent"
    assert flags & 0x10, "and carry checksums"
    pos += 7 + (8 if flags & 0x08 else 0)
    found = []
    while True:
        (word,) = struct.unpack_from("<I", data, pos)
        if word == 0:
            return found
        size = word & 0x7FFFFFFF
        found.append((pos + 4, size))
        pos += 4 + size + 4


def events(path: Path) -> int:
    """ALLOC and FREE records in ``memprof parse``'s dump."""
    dump = subprocess.run(
        [sys.executable, "-m", "pytest_memprof", "parse", str(path)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        cwd=path.parent,
    )
    kinds = [line.split(" ", 1)[0] for line in dump.stdout.splitlines()]
    return sum(
        kind
        not in {
            "HEADER",
            "FRAME",
            "NODE",
            "THREAD",
            "THREAD_NAME",
            "SAMPLE",
            "MARK",
            "TRAILER",
            "SYNC",
            "MAPS",
            "MAP",
            "NATIVE_NODE",
            "ENTRY_NODE",
            "EVAL_NATIVE_NODE",
        }
        for kind in kinds
    )


@pytest.fixture(scope="module")
def many_blocks(tmp_path_factory) -> Path:
    """A capture of a program that allocates for long enough to flush many blocks."""
    folder = tmp_path_factory.mktemp("integrity")
    out = folder / "many.bin"
    script = folder / "many.py"
    script.write_text(
        textwrap.dedent(f"""
        import time
        from pytest_memprof import Tracker

        def churn():
            kept = []
            for i in range(5_000):
                kept.append(bytearray(64 + i % 200))
                if len(kept) > 1000:
                    del kept[:500]

        with Tracker({str(out)!r}):
            start = time.monotonic()
            while time.monotonic() - start < 1.0:
                churn()
                time.sleep(0.01)
    """)
    )
    subprocess.run([sys.executable, str(script)], check=True, env=subprocess_env(), timeout=120, cwd=folder)
    assert len(blocks(out.read_bytes())) >= 6
    return out


def a_middle_block_with_events(capture: Path) -> int:
    """The biggest block that is neither the first nor the last: under load the tracker may flush a
    block in which the program made no allocation (its 10 ms first flushes), and damaging that one
    loses no event."""
    found = blocks(capture.read_bytes())
    return max(range(1, len(found) - 1), key=lambda index: found[index][1])


def damage(source: Path, target: Path, block_index: int) -> None:
    data = bytearray(source.read_bytes())
    offset, size = blocks(bytes(data))[block_index]
    data[offset + size // 2] ^= 0x10  # one flipped bit inside the block's compressed data
    target.write_bytes(bytes(data))


def test_one_flipped_bit_loses_one_block_and_says_how_many_events(many_blocks, tmp_path):
    damaged = tmp_path / "damaged.bin"
    damage(many_blocks, damaged, a_middle_block_with_events(many_blocks))
    whole, hurt = Capture.open(many_blocks), Capture.open(damaged)
    assert not whole.damaged and whole.lost_events == 0
    assert hurt.damaged
    # Before: decoding stopped at the damage (half the events gone) and the file read as "truncated".
    assert not hurt.truncated, "the blocks after the damaged one decode, trailer included"
    assert hurt.lost_events == events(many_blocks) - events(damaged) > 0
    assert hurt.total_allocations > whole.total_allocations * 0.6
    assert "1 damaged block" in hurt.problem and f"{hurt.lost_events} events lost" in hurt.problem


def test_memprof_stats_calls_a_damaged_capture_damaged_and_exits_1(many_blocks, tmp_path):
    damaged = tmp_path / "damaged.bin"
    damage(many_blocks, damaged, a_middle_block_with_events(many_blocks))
    result = subprocess.run(
        [sys.executable, "-m", "pytest_memprof", "stats", "--json", str(damaged)],
        capture_output=True,
        text=True,
        env=subprocess_env(),
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "damaged block" in lines[0], result.stderr
    data = json.loads(result.stdout)
    assert data["damaged"]["lost_events"] == Capture.open(damaged).lost_events > 0


def test_a_damaged_first_block_leaves_stand_ins_for_the_stacks_it_defined(many_blocks, tmp_path):
    damaged = tmp_path / "first.bin"
    damage(many_blocks, damaged, 0)  # the block with the first frames and stack nodes
    capture = Capture.open(damaged)
    assert capture.damaged and capture.lost_events > 0
    functions = {frame.function for stat in capture.peak_stacks() for frame in stat.frames}
    assert functions, "the blocks after the first still decode, with their stacks"
    assert capture.total_allocations > 0


def test_a_damaged_last_block_says_the_events_after_it_are_lost(many_blocks, tmp_path):
    damaged = tmp_path / "last.bin"
    damage(many_blocks, damaged, -1)
    capture = Capture.open(damaged)
    assert capture.damaged and capture.truncated
    assert "every event" in capture.problem


def test_a_file_cut_inside_a_block_says_how_many_bytes_it_could_not_decode(many_blocks, tmp_path):
    data = many_blocks.read_bytes()
    whole = Capture.open(many_blocks)
    assert whole.undecoded_bytes == 0 and whole.truncation is None and not whole.records_lost_at_end
    offset, size = blocks(data)[a_middle_block_with_events(many_blocks)]
    inside = tmp_path / "inside.bin"
    inside.write_bytes(data[: offset + size // 2])
    capture = Capture.open(inside)
    # The cut block is lost whole (its checksum cannot be checked), and with it everything after.
    assert capture.truncated and not capture.damaged and capture.problem is None
    assert capture.undecoded_bytes == 4 + size // 2  # its size field and the half of it that is there
    assert capture.records_lost_at_end
    assert f"its last {4 + size // 2:,} bytes could not be decoded" in capture.truncation
    assert f"a block of {4 + size + 4:,} bytes that is cut short" in capture.truncation
    assert 0 < capture.total_allocations < whole.total_allocations


def test_a_file_cut_between_blocks_or_in_its_end_mark_lost_no_written_byte(many_blocks, tmp_path):
    data = many_blocks.read_bytes()
    whole = Capture.open(many_blocks)
    offset, _ = blocks(data)[a_middle_block_with_events(many_blocks)]
    between = tmp_path / "between.bin"
    between.write_bytes(data[: offset - 4])  # right before the block's size field
    capture = Capture.open(between)
    assert capture.truncated and capture.undecoded_bytes == 0 and not capture.records_lost_at_end
    assert capture.truncation == "it ends after its last whole block, without the tracker's trailer"

    end_mark = tmp_path / "end_mark.bin"
    end_mark.write_bytes(data[:-1])
    capture = Capture.open(end_mark)
    assert capture.truncated and capture.undecoded_bytes == 3 and not capture.records_lost_at_end
    assert "every record is there" in capture.truncation
    assert capture.total_allocations == whole.total_allocations


def test_a_cut_version_4_capture_says_it_cannot_count_what_it_lost(tmp_path):
    cut = tmp_path / "cut-v4.bin"
    cut.write_bytes((DATA / "format-v4.bin").read_bytes()[:-100])
    capture = Capture.open(cut)
    assert capture.truncated and capture.undecoded_bytes is None and capture.records_lost_at_end
    assert "capture format version 4 file does not tell how many bytes" in capture.truncation


def test_a_version_5_capture_is_a_standard_lz4_frame(many_blocks):
    data = many_blocks.read_bytes()
    magic, version, _, header_length = FIXED_HEADER.unpack_from(data)
    assert (magic, version) == (b"MEMPROF\0", FORMAT_VERSION) and FORMAT_VERSION >= 5
    records = lz4.frame.decompress(data[FIXED_HEADER.size + header_length :])
    assert records[0] == 77, "the stream opens with a SYNC record"


def test_a_version_4_capture_still_reads():
    # Written by this project at format version 4, before blocks carried SYNC records.
    capture = Capture.open(DATA / "format-v4.bin")
    assert capture.metadata.format_version == 4
    assert not capture.truncated and not capture.damaged
    assert capture.peak_stacks()[0].location.function == "make_old_capture_block"
