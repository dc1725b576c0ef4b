"""``memprof run`` on a disk that is full or fills up: the program runs and keeps its exit code."""

from __future__ import annotations

import pytest

from pytest_memprof import Capture
from tests.fulldisk import fill_disk, small_tmpfs  # noqa: F401 (a fixture)

from .conftest import memprof_command  # noqa: F401


@pytest.mark.parametrize("code", [0, 3])
def test_a_full_disk_still_runs_the_program_with_one_warning(memprof, small_tmpfs, tmp_path, code):  # noqa: F811
    fill_disk(small_tmpfs)
    marker = tmp_path / "ran"
    result = memprof(
        "run",
        "-o",
        str(small_tmpfs / "app.bin"),
        "-c",
        f"import pathlib, sys; pathlib.Path({str(marker)!r}).write_text('yes'); sys.exit({code})",
    )
    # Before: the program never ran and memprof exited 1.
    assert marker.read_text() == "yes"
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("memprof: warning:") and "No space left on device" in lines[0]
    assert "without recording" in lines[0]
    assert not (small_tmpfs / "app.bin").exists()


@pytest.mark.parametrize("code", [0, 3])
def test_a_disk_filling_up_keeps_the_programs_exit_code(memprof, small_tmpfs, code):  # noqa: F811
    fill_disk(small_tmpfs, leave=64 * 1024)
    capture = small_tmpfs / "app.bin"
    program = f"import sys\nkept = [bytearray(100 + i % 50) for i in range(300_000)]\nsys.exit({code})\n"
    result = memprof("run", "-o", str(capture), "-c", program)
    # Before: 0 and 3 both became 1.
    assert result.returncode == code, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
    assert lines[0].startswith("memprof: warning:") and "No space left on device" in lines[0]
    assert "truncated" in lines[0]
    # What was written reads, and says it is not whole.
    assert Capture.open(capture).truncated
