"""The UI-free stream decoder: a capture's bytes in any chunking, refused when incompatible, bounded when hostile."""

from __future__ import annotations

import struct
import subprocess
import threading
import time

import pytest
from pytest_memprof._reader import FORMAT_VERSION, MAGIC

from pytest_memprof import Capture, CaptureError, CaptureVersionError
from pytest_memprof.live import EXIT_MARK_ID, exit_mark_label, parse_exit_mark
from pytest_memprof.live.sources import FileFollower
from pytest_memprof.live.stream import LiveSession, StreamDecoder, downsample
from tests.records import FIXED_HEADER

from .conftest import TIMEOUT_S, env, memprof_command

PROGRAM = """
import sys

def keep_a_buffer():
    return bytearray(3_000_000)

kept = keep_a_buffer()
sys.exit(5)
"""


@pytest.fixture(scope="module")
def capture_bytes(tmp_path_factory) -> bytes:
    """A whole capture written by a real ``memprof run`` of a program that exits with 5."""
    folder = tmp_path_factory.mktemp("stream")
    (folder / "keeps.py").write_text(PROGRAM)
    result = subprocess.run([*memprof_command(), "run", "-q", "-o", "keeps.bin", "keeps.py"], cwd=folder, env=env(),
                            capture_output=True, text=True, timeout=TIMEOUT_S)
    assert result.returncode == 5, result.stderr
    return (folder / "keeps.bin").read_bytes()


class ChunkSource:
    """A source handing out fixed chunks, then the end."""

    name = "test chunks"

    def __init__(self, data: bytes, size: int) -> None:
        self.chunks = [data[i : i + size] for i in range(0, len(data), size)]

    def read(self, timeout: float) -> bytes | None:
        return self.chunks.pop(0) if self.chunks else None

    def close(self) -> None:
        self.chunks = []


def session_over(data: bytes, size: int) -> LiveSession:
    session = LiveSession(ChunkSource(data, size))
    while session.pump(0.5):
        pass
    return session


@pytest.mark.parametrize("size", [1, 7, 4093, 1 << 20])
def test_any_chunking_decodes_to_what_the_file_reader_sees(capture_bytes, size, tmp_path):
    session = session_over(capture_bytes, size)
    path = tmp_path / "same.bin"
    path.write_bytes(capture_bytes)
    expected = Capture.open(path)
    assert session.decoder.frame_done and session.decoder.problem is None
    assert session.decoder.reader.current_bytes == expected.leaked_bytes
    assert session.decoder.reader.peak_bytes == expected.peak_bytes
    snapshot = session.snapshot()
    assert snapshot.ended and not snapshot.truncated
    assert snapshot.exit_code == 5
    assert snapshot.state == "ended with exit code 5"
    top = snapshot.rows[0]
    assert (top.function, top.file.endswith("keeps.py"), top.line) == ("keep_a_buffer", True, 5)
    assert top.bytes >= 3_000_000 and top.thread_name == "MainThread"


def test_decompression_in_bounded_steps_loses_nothing(capture_bytes, monkeypatch):
    monkeypatch.setattr("pytest_memprof.live.stream.MAX_DECOMPRESSED", 100)
    session = session_over(capture_bytes, 1 << 20)
    assert session.decoder.frame_done and session.decoder.problem is None
    assert session.snapshot().exit_code == 5
    assert session.snapshot().rows[0].function == "keep_a_buffer"


def test_a_capture_cut_short_is_shown_as_such(capture_bytes):
    snapshot = session_over(capture_bytes[: len(capture_bytes) // 2], 4096).snapshot()
    assert snapshot.started and snapshot.ended and snapshot.truncated
    assert snapshot.exit_code is None
    assert snapshot.state == "ended (exit code unknown); capture cut short"


def test_a_newer_format_version_is_refused_by_name():
    decoder = StreamDecoder("127.0.0.1:9")
    with pytest.raises(CaptureVersionError) as error:
        decoder.feed(FIXED_HEADER.pack(MAGIC, FORMAT_VERSION + 1, 0, 2) + b"{}")
    assert str(error.value) == (f"127.0.0.1:9 sends capture format version {FORMAT_VERSION + 1}; this memprof reads "
                                f"up to version {FORMAT_VERSION} (upgrade pytest-memprof on this side)")


def test_a_stranger_is_refused_at_its_first_bytes():
    decoder = StreamDecoder("127.0.0.1:80")
    with pytest.raises(CaptureError, match="does not send a memprof capture stream"):
        decoder.feed(b"HTTP/")


@pytest.mark.parametrize(("data", "message"), [
    (FIXED_HEADER.pack(MAGIC, 0, 0, 2) + b"{}", "invalid capture format version 0"),
    (FIXED_HEADER.pack(MAGIC, 1, 0, (1 << 20) + 1), "corrupt capture header"),
    (FIXED_HEADER.pack(MAGIC, 1, 0, 3) + b"[1]", "corrupt capture header (not a JSON object)"),
    (FIXED_HEADER.pack(MAGIC, 1, 0, 2) + b"\xff{", "corrupt capture header"),
    (FIXED_HEADER.pack(MAGIC, 1, 0, 11) + b'{"pid": ""}', "corrupt capture header"),
])
def test_a_bad_header_is_one_clear_error(data, message):
    with pytest.raises(CaptureError, match=message.replace("(", r"\(").replace(")", r"\)")):
        StreamDecoder("peer").feed(data)


def test_corrupt_records_stop_decoding_without_an_exception(capture_bytes):
    header_end = FIXED_HEADER.size + struct.unpack_from("<I", capture_bytes, 12)[0]
    body = bytearray(capture_bytes[header_end:])
    for offset in range(20, len(body) - 20, 97):
        body[offset] ^= 0x5A
    session = session_over(capture_bytes[:header_end] + bytes(body), 4096)
    snapshot = session.snapshot()
    assert snapshot.ended and snapshot.problem
    assert "decoding stopped" in snapshot.problem or "corrupt" in snapshot.problem or "damaged" in snapshot.problem
    assert snapshot.state == "not followed past corrupt data (see below)"


def test_the_file_follower_tails_until_the_writer_is_done(capture_bytes, tmp_path):
    path = tmp_path / "growing.bin"
    done = threading.Event()

    def write_slowly() -> None:
        with open(path, "wb") as out:
            for start in range(0, len(capture_bytes), 5000):
                out.write(capture_bytes[start : start + 5000])
                out.flush()
                time.sleep(0.01)
        done.set()

    session = LiveSession(FileFollower(path, done.is_set))
    writer = threading.Thread(target=write_slowly)
    writer.start()
    deadline = time.monotonic() + TIMEOUT_S
    while session.pump(0.1):
        assert time.monotonic() < deadline
    writer.join()
    assert session.decoder.frame_done
    assert session.decoder.bytes_received == len(capture_bytes)
    assert session.snapshot().exit_code == 5


def test_exit_marks_and_other_marks():
    assert parse_exit_mark(EXIT_MARK_ID, exit_mark_label(130)) == 130
    assert parse_exit_mark(EXIT_MARK_ID, exit_mark_label(-2)) == -2
    assert parse_exit_mark(7, "exit 3") is None
    assert parse_exit_mark(EXIT_MARK_ID, "gc-start") is None
    assert parse_exit_mark(EXIT_MARK_ID, "exit 3 and more") is None


def test_downsampling_keeps_the_peak():
    values = [1] * 10_000
    values[4321] = 99
    points = downsample(values, 100)
    assert len(points) == 100 and max(points) == 99
    assert downsample([1, 2, 3], 100) == (1, 2, 3)
