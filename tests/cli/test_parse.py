"""``memprof parse``: a readable dump of every record, for debugging a capture."""

from __future__ import annotations

import subprocess

import pytest

from pytest_memprof import Capture, Tracker

from .conftest import memprof_command


@pytest.fixture
def capture_path(tmp_path):
    path = tmp_path / "cap.bin"
    with Tracker(path):
        kept = [bytearray(1000) for _ in range(100)]
        del kept
    return path


def test_parse_prints_every_record_and_survives_a_closed_pipe(memprof, capture_path, tmp_path):
    result = memprof("parse", str(capture_path))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].startswith("HEADER {")
    kinds = {line.split(" ", 1)[0] for line in lines}
    assert {"FRAME", "NODE", "ALLOC", "FREE", "THREAD", "TRAILER"} <= kinds
    assert sum(line.startswith("ALLOC") for line in lines) == Capture.open(capture_path).total_allocations

    # `memprof parse big.bin | head -1`: the reader leaves early; that is not an error.
    pipeline = subprocess.run(f"{' '.join(memprof_command())} parse {capture_path} | head -1", shell=True,
                              capture_output=True, text=True, cwd=tmp_path, timeout=60)
    assert pipeline.stdout.startswith("HEADER")
    assert "Traceback" not in pipeline.stderr and "Error" not in pipeline.stderr
