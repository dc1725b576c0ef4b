"""A report whose output cannot be written (a full disk): one error line and exit 1, never a traceback."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.conftest import subprocess_env
from tests.fulldisk import fill_disk, small_tmpfs  # noqa: F401 (a fixture)

from .conftest import assert_one_line_error, memprof_command

# Linux's always-full device: every write to it fails with ENOSPC.
FULL = "/dev/full"

needs_dev_full = pytest.mark.skipif(not os.path.exists(FULL), reason=f"{FULL} (a device always full) is Linux's")

REPORTS = {
    "stats": ["stats", "app.bin"],
    "stats --json": ["stats", "--json", "app.bin"],
    "tree": ["tree", "app.bin"],
    "summary": ["summary", "app.bin"],
    "diff": ["diff", "app.bin", "app.bin"],
    "parse": ["parse", "app.bin"],
}


@pytest.fixture(scope="module")
def capture_folder(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("full-disk-report")
    (folder / "app.py").write_text("blocks = [bytearray(1000) for _ in range(1000)]\n")
    run = subprocess.run([*memprof_command(), "run", "-q", "-o", "app.bin", "app.py"], cwd=folder,
                         capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    return folder


# Buffered (as a user runs it), the output often fits the buffer and fails only at the last flush,
# past the command; unbuffered (PYTHONUNBUFFERED=1), it fails at the first write, inside it.
@needs_dev_full
@pytest.mark.parametrize("unbuffered", [False, True], ids=["buffered", "unbuffered"])
@pytest.mark.parametrize("words", REPORTS.values(), ids=REPORTS.keys())
def test_a_report_to_a_full_disk_fails_with_one_line(capture_folder, words, unbuffered):
    env = subprocess_env()
    env.pop("PYTHONUNBUFFERED", None)
    if unbuffered:
        env["PYTHONUNBUFFERED"] = "1"
    with open(FULL, "w") as full:
        result = subprocess.run([*memprof_command(), *words], cwd=capture_folder, stdout=full,
                                stderr=subprocess.PIPE, text=True, env=env, timeout=120)
    # Before: a traceback and exit 1 unbuffered; buffered, the interpreter's "Exception ignored"
    # dump (and a traceback when the output outgrew the buffer) and exit 120.
    assert result.returncode == 1, result.stderr  # not 0, not 120, not killed by a signal
    assert "Exception ignored" not in result.stderr, result.stderr
    assert_one_line_error(result, "cannot write the output", "No space left on device")


def test_parse_onto_a_disk_that_fills_up_fails_with_one_line(capture_folder, small_tmpfs):  # noqa: F811
    # parse writes its records from C++ (a FILE*), past Python's file objects and their errors.
    fill_disk(small_tmpfs, leave=16 * 1024)
    output = small_tmpfs / "records.txt"
    with open(output, "w") as out:
        result = subprocess.run([*memprof_command(), "parse", "app.bin"], cwd=capture_folder, stdout=out,
                                stderr=subprocess.PIPE, text=True, env=subprocess_env(), timeout=120)
    # Before: exit 0, the output cut off where the disk filled.
    assert result.returncode == 1, result.stderr
    assert_one_line_error(result, "cannot write the output", "No space left on device")
    assert output.read_text().startswith("HEADER ")
