"""Outputs that cannot be written (a full or read-only disk) never change a test's outcome (issue 17.1)."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytest_plugins = ["pytester"]

OUTCOMES = """
import pytest

@pytest.mark.limit_memory("1MB")
def test_over_limit():
    data = bytearray(4 * 2**20)

def test_assertion():
    assert 1 + 1 == 3

def test_passes():
    data = bytearray(100_000)

def test_skipped():
    pytest.skip("not today")
"""


def _mount_tmpfs(target: Path, size: str) -> None:
    if os.geteuid() != 0:
        pytest.skip("mounting a small tmpfs needs root")
    if shutil.which("mount") is None:
        pytest.skip("no mount command")
    target.mkdir(parents=True, exist_ok=True)
    done = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(target)], capture_output=True, text=True
    )
    if done.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {done.stderr.strip()}")


def _fill(folder: Path) -> None:
    """Take every free byte of folder's file system."""
    with open(folder / "filler", "wb", buffering=0) as handle:
        try:
            while True:
                handle.write(b"x" * 4096)
        except OSError:
            pass


@pytest.fixture(params=["full", "read-only"])
def broken_disk(request, tmp_path):
    """A small tmpfs whose output folders exist but take no more bytes: full, or remounted read-only."""
    disk = tmp_path / "disk"
    _mount_tmpfs(disk, "1m")
    try:
        for name in ("bins", "html", "html/flamegraphs", "html/assets"):
            (disk / name).mkdir()
        if request.param == "full":
            _fill(disk)
        else:
            subprocess.run(["mount", "-o", "remount,ro", str(disk)], check=True)
        yield disk
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def _run(pytester, disk: Path, *extra: str):
    return pytester.runpytest_subprocess(
        "-p",
        "no:cacheprovider",
        "--memprof",
        "--memprof-bin-dir",
        str(disk / "bins"),
        "--memprof-html",
        str(disk / "html"),
        "--memprof-csv-file",
        str(disk / "m.csv"),
        "--memprof-junit",
        str(disk / "j.xml"),
        "--memprof-save-baseline",
        str(disk / "b.json"),
        *extra,
    )


def test_unwritable_outputs_keep_every_tests_outcome_and_are_named_once(pytester, broken_disk):
    pytester.makepyfile(OUTCOMES)
    result = _run(pytester, broken_disk)
    result.assert_outcomes(passed=1, failed=2, skipped=1)
    output = result.stdout.str()
    assert "OSError" not in output and "Errno" not in output
    result.stdout.fnmatch_lines(["*Test used 4.0 MiB at its peak, more than the 1.0 MiB allowed*"])
    result.stdout.fnmatch_lines(["*assert (1 + 1) == 3*"])
    problems = [line for line in result.stdout.lines if line.startswith("memprof: cannot write")]
    # One line per output, each with the reason, whatever the number of tests.
    for name in ("bins", "html", "m.csv", "j.xml", "b.json"):
        mine = [line for line in problems if str(broken_disk / name) in line]
        assert len(mine) == 1, (name, problems)
        assert mine[0].endswith(("No space left on device", "Read-only file system")), mine[0]
    assert "4 of 4 captures" in " ".join(problems)  # the skipped test has none
    assert not list(broken_disk.rglob("*.partial"))


def test_an_output_that_failed_fails_a_session_whose_tests_passed(pytester, broken_disk):
    pytester.makepyfile("def test_passes():\n    data = bytearray(100_000)\n")
    result = _run(pytester, broken_disk)
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    assert not list(broken_disk.rglob("*.partial"))


def test_each_file_output_says_when_it_cannot_be_written(pytester, tmp_path):
    # A file output whose folder is a file: the CSV and JUnit files were silently not written.
    pytester.makepyfile("def test_passes():\n    data = bytearray(100_000)\n")
    (pytester.path / "blocker").write_text("a file, not a folder")
    result = pytester.runpytest_subprocess(
        "-p", "no:cacheprovider", "--memprof", "--memprof-csv-file", "blocker/m.csv", "--memprof-junit", "blocker/j.xml"
    )
    result.assert_outcomes(passed=1)
    assert result.ret == pytest.ExitCode.TESTS_FAILED
    result.stdout.fnmatch_lines(["memprof: cannot write blocker/j.xml: *", "memprof: cannot write blocker/m.csv: *"])
