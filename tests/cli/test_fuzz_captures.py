"""Bounded fuzzing of the reader commands over mutated captures (hypothesis).

Mutations are made at two levels: the file's bytes (checksums then catch most of them), and the
record stream itself, re-compressed into a valid LZ4 frame so that the decoder meets the damage.
Every input runs `memprof stats --json` or `memprof parse` (the CLI's own ``main``) in a forked
child, with a memory cap and a time-out: it must exit 0, 1 or 2, with no traceback, and with one
line on stderr when it fails.
"""

from __future__ import annotations

import functools
import os
import resource
import signal
import struct
import sys
import tempfile
import time
import traceback
from pathlib import Path

import lz4.frame
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pytest_memprof import Tracker
from tests.records import FIXED_HEADER

DATA = Path(__file__).parent.parent / "data"
TIMEOUT_S = 20.0
MEMORY_CAP = 2 << 30  # address space of the child: a decompression bomb or runaway table dies here
COMMANDS = [("stats", "--json"), ("parse",), ("tree",)]

pytestmark = pytest.mark.skipif(not hasattr(os, "fork"), reason="runs each input in a forked child")


def small_program() -> None:
    import threading

    def worker() -> None:
        kept = [bytes(300 + i) for i in range(200)]
        del kept[::2]

    thread = threading.Thread(target=worker, name="fuzz-worker")
    thread.start()
    thread.join()
    kept = [bytearray(i * 7 % 5000) for i in range(500)]
    del kept[::3]


@functools.cache
def base_captures() -> tuple[bytes, ...]:
    """A fresh capture of this version and the kept version 4 capture."""
    folder = Path(tempfile.mkdtemp(prefix="memprof-fuzz-"))
    path = folder / "base.bin"
    with Tracker(path):
        small_program()
    return path.read_bytes(), (DATA / "format-v4.bin").read_bytes()


def split(data: bytes) -> tuple[bytes, bytes]:
    """(fixed header + JSON header, record stream)."""
    end = FIXED_HEADER.size + struct.unpack_from("<I", data, 12)[0]
    return data[:end], lz4.frame.decompress(data[end:])


@functools.cache
def warm_imports() -> None:
    """Import what the commands import here once, so each forked child starts with it."""
    import rich.console
    import rich.table
    import rich.tree  # noqa: F401

    from pytest_memprof.cli import build_parser
    from pytest_memprof.reports import tree  # noqa: F401

    build_parser()


def run_reader(data: bytes, command: tuple[str, ...]) -> tuple[int, str]:
    """Run the reader command on ``data`` in a forked child; returns (exit code, stderr)."""
    from pytest_memprof.cli import main

    warm_imports()
    folder = Path(tempfile.mkdtemp(prefix="memprof-fuzz-"))
    path, out, err = folder / "input.bin", folder / "out", folder / "err"
    path.write_bytes(data)
    sys.stdout.flush()
    sys.stderr.flush()
    pid = os.fork()
    if pid == 0:  # the child: never returns into pytest
        code = 99
        try:
            resource.setrlimit(resource.RLIMIT_AS, (MEMORY_CAP, MEMORY_CAP))
            os.dup2(os.open(out, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 1)
            os.dup2(os.open(err, os.O_WRONLY | os.O_CREAT | os.O_TRUNC), 2)
            os.environ["MEMPROF_PROGRESS_DELAY"] = "1000"
            sys.stdout = open(1, "w", closefd=False)
            sys.stderr = open(2, "w", closefd=False)
            try:
                code = main([*command, str(path)])
            except SystemExit as exit_:
                code = exit_.code if isinstance(exit_.code, int) else 1
            except BaseException:
                traceback.print_exc()
                code = 98
            sys.stdout.flush()
            sys.stderr.flush()
        finally:
            os._exit(code)
    deadline = time.monotonic() + TIMEOUT_S
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            break
        if time.monotonic() > deadline:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
            pytest.fail(f"memprof {' '.join(command)} hung on an input (kept in {path})")
        time.sleep(0.005)
    if os.WIFSIGNALED(status):
        pytest.fail(f"memprof {' '.join(command)} died of signal {os.WTERMSIG(status)} (input in {path})")
    stderr = err.read_text(errors="replace")
    for file in (path, out, err):
        file.unlink()
    folder.rmdir()
    return os.WEXITSTATUS(status), stderr


def check(data: bytes, command: tuple[str, ...]) -> None:
    code, stderr = run_reader(data, command)
    assert "Traceback" not in stderr, stderr
    assert code in (0, 1, 2), (code, stderr)
    lines = [line for line in stderr.splitlines() if line.strip()]
    if code:
        assert len(lines) == 1, stderr
    else:
        assert len(lines) <= 1, stderr  # at most a warning


FUZZ = settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.too_slow], derandomize=True)

byte_edits = st.lists(st.tuples(st.floats(0, 1, exclude_max=True), st.integers(1, 255)), min_size=1, max_size=8)


@FUZZ
@given(
    which=st.integers(0, 1),
    edits=byte_edits,
    cut=st.one_of(st.none(), st.floats(0, 1)),
    command=st.sampled_from(COMMANDS),
)
def test_byte_level_mutations_are_refused_or_read_in_one_line(which, edits, cut, command):
    data = bytearray(base_captures()[which])
    for where, mask in edits:
        data[int(where * len(data))] ^= mask
    if cut is not None:
        data = data[: int(cut * len(data))]
    check(bytes(data), command)


record_edit = st.one_of(
    st.tuples(st.just("flip"), st.floats(0, 1, exclude_max=True), st.integers(1, 255)),
    st.tuples(st.just("insert"), st.floats(0, 1), st.binary(min_size=1, max_size=12)),
    st.tuples(st.just("delete"), st.floats(0, 1, exclude_max=True), st.integers(1, 40)),
    st.tuples(st.just("varint"), st.floats(0, 1, exclude_max=True), st.sampled_from([0x7F, 0xFF])),
)


@FUZZ
@given(which=st.integers(0, 1), edits=st.lists(record_edit, min_size=1, max_size=4), command=st.sampled_from(COMMANDS))
def test_record_level_mutations_in_valid_frames_are_refused_or_read_in_one_line(which, edits, command):
    head, records = split(base_captures()[which])
    stream = bytearray(records)
    for kind, where, value in edits:
        at = int(where * len(stream))
        if kind == "flip" and at < len(stream):
            stream[at] ^= value
        elif kind == "insert":
            stream[at:at] = value
        elif kind == "delete":
            del stream[at : at + value]
        elif kind == "varint" and at < len(stream):
            stream[at : at + 1] = bytes([value]) * 11  # a varint longer than the format allows
    # The checksums hold: what the reader meets is the damaged records themselves.
    check(head + lz4.frame.compress(bytes(stream), block_checksum=True), command)
