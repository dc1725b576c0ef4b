"""A capture file is read through one bounded buffer: a block and a read at most, whatever the
file's size, with each block parsed where it lies; the result is the same at any read step."""

from __future__ import annotations

import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
from pytest_memprof._reader import CaptureReader

from pytest_memprof import Capture
from tests.conftest import subprocess_env
from tests.reports.test_scale import output_on_a_terminal
from tests.test_capture_integrity import blocks

DATA = Path(__file__).parent / "data"
DEFAULT_STEP = 256 << 10  # native/reader.h kFileStep


@pytest.fixture(scope="module")
def big_capture(tmp_path_factory) -> Path:
    """A capture of several MiB (many blocks): bigger than the reader's buffer many times over."""
    folder = tmp_path_factory.mktemp("read-buffer")
    out = folder / "big.bin"
    script = folder / "big.py"
    script.write_text(textwrap.dedent(f"""
        import sys
        from pytest_memprof import Tracker

        def leaf(i):
            return bytearray(i % 300 + 1)

        def middle(i):
            return leaf(i) if i % 3 else [leaf(i)]

        with Tracker({str(out)!r}):
            kept = []
            for i in range(int(sys.argv[1])):
                block = middle(i)
                if i % 97 == 0:
                    kept.append(block)
    """))
    # 3.14's free lists keep many of these allocations from the allocator, and so from the capture:
    # the count grows until the file is big enough.
    for count in (1_800_000, 5_400_000):
        out.unlink(missing_ok=True)  # a Tracker does not overwrite a capture
        subprocess.run([sys.executable, str(script), str(count)], check=True, env=subprocess_env(), timeout=300,
                       cwd=folder)
        if out.stat().st_size > 4 * DEFAULT_STEP:
            break
    assert out.stat().st_size > 4 * DEFAULT_STEP
    return out


def replay(path: Path, step: int = 0) -> tuple[CaptureReader, dict]:
    """Read ``path`` whole at read step ``step`` (0: the default); the reader and what it found."""
    reader = CaptureReader(read_step=step)
    reader.open(str(path))
    while reader.read_some(1 << 20):
        pass
    found = {
        "records": reader.records,
        "truncated": reader.truncated,
        "error": reader.error,
        "totals": (reader.total_allocations, reader.total_bytes, reader.peak_bytes),
        "rows": [reader.rows(view) for view in range(4)],
        "timeline": reader.timeline(),
        "frames": reader.frames(),
        "nodes": reader.nodes(),
    }
    return reader, found


def test_a_capture_many_times_the_buffer_reads_whole_and_equal_at_any_step(big_capture):
    reader, whole = replay(big_capture)
    assert whole["records"] > 1_000_000 and not whole["truncated"] and not whole["error"]
    for step in (7, 4096, 1 << 20):
        assert replay(big_capture, step)[1] == whole, step
    # What the buffer held: one block and one read, not the file.
    largest = max(size for _, size in blocks(big_capture.read_bytes())) + 8
    assert reader.input_buffer_bytes <= largest + DEFAULT_STEP + 64
    assert reader.input_buffer_bytes < big_capture.stat().st_size / 2
    assert replay(big_capture, 4096)[0].input_buffer_bytes <= largest + 4096 + 64


def test_a_stream_fed_in_pieces_reads_as_the_file_does(big_capture):
    _, whole = replay(big_capture)
    data = big_capture.read_bytes()
    for piece in (1, 1000, 1 << 20):
        reader = CaptureReader()
        chunk = 1 << 16 if piece == 1 else piece  # one byte at a time only through the header
        header = 4096 if piece == 1 else 0
        for offset in range(0, header):
            reader.feed_capture(data[offset:offset + 1], 1 << 20)
        for offset in range(header, len(data), chunk):
            reader.feed_capture(data[offset:offset + chunk], 1 << 20)
        assert reader.records == whole["records"] and not reader.truncated, piece
        assert [reader.rows(view) for view in range(4)] == whole["rows"], piece
        assert reader.timeline() == whole["timeline"], piece


def test_a_version_4_capture_reads_equal_at_any_step():
    # Version 4 goes through LZ4's streaming decompressor, a read at a time.
    _, whole = replay(DATA / "format-v4.bin")
    assert whole["records"] and not whole["truncated"]
    for step in (1, 100, 4096):
        assert replay(DATA / "format-v4.bin", step)[1] == whole, step


def test_a_cut_capture_still_reads_as_far_as_it_goes(big_capture, tmp_path):
    cut = tmp_path / "cut.bin"
    cut.write_bytes(big_capture.read_bytes()[: big_capture.stat().st_size * 2 // 3])
    _, found = replay(cut)
    _, whole = replay(big_capture)
    assert found["truncated"] and 0 < found["records"] < whole["records"]
    assert replay(cut, 4096)[1] == found


def test_a_long_read_reports_its_progress_as_it_goes(big_capture):
    seen: list[tuple[int, int]] = []
    Capture.open(big_capture, progress=lambda done, total: seen.append((done, total)))
    size = big_capture.stat().st_size
    assert all(total == size for _, total in seen)
    done = [value for value, _ in seen]
    assert done == sorted(done) and done[-1] == size
    # A step of about 256 KiB: a file of a few MiB is not one step, as it was at 8 MiB.
    assert len([value for value in done if value < size]) >= size // (1 << 20)


def test_the_bar_on_a_terminal_shows_the_read_part_way_and_a_pipe_gets_none(big_capture, tmp_path):
    command = [sys.executable, "-m", "pytest_memprof", "flamegraph", "-f", "-o", str(tmp_path / "fg.html"),
               str(big_capture)]
    code, output = output_on_a_terminal(command, tmp_path, MEMPROF_PROGRESS_DELAY="0")
    assert code == 0, output[-2000:]
    # rich's DownloadColumn: "done/total unit"; the first draw comes after the first step.
    drawn = [(float(done), float(total)) for done, total in re.findall(rb"(\d+\.\d+)/(\d+\.\d+) [kM]B", output)]
    assert drawn and drawn[0][0] < drawn[0][1], output[-2000:]
    piped = subprocess.run(command, capture_output=True, text=True, cwd=tmp_path,
                           env=subprocess_env(MEMPROF_PROGRESS_DELAY="0"), timeout=300)
    assert piped.returncode == 0 and piped.stderr == "", piped.stderr
