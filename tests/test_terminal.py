"""Terminal output: names from captures cannot drive the terminal, and lines fit the terminal or the pipe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from pytest_memprof.terminal import printable
from tests.cli.conftest import memprof_command
from tests.conftest import subprocess_env

# A title change, a screen clear, a bell and an 8-bit CSI (C1), as a hostile capture would carry them.
HOSTILE = "\x1b]0;pwned\x07\x1b[2J\u009b31m"

HOSTILE_PROGRAM = '''
import threading

SOURCE = """
def build(n):
    return [bytearray(100_000) for _ in range(n)]
"""
namespace = {}
exec(compile(SOURCE, "/tmp/evil{h}file.py", "exec"), namespace)
build = namespace["build"]
build.__code__ = build.__code__.replace(co_name="evil{h}name")
kept = build(30)
'''.replace("{h}", HOSTILE.encode("unicode_escape").decode())

# Recursion 40 deep in a file with a long path: the tree of its stack is deep and its lines long.
DEEP_PROGRAM = """
def descend(depth, keep):
    if depth == 0:
        keep.append(bytearray(3_000_000))
        return
    descend(depth - 1, keep)


kept = []
descend(40, kept)
"""


def run(*args: str, cwd: Path, **env: str) -> subprocess.CompletedProcess:
    # Output into a pipe (capture_output): stdout is not a terminal, as in a CI log or `| less`.
    environment = subprocess_env(**env)
    if "COLUMNS" not in env:
        environment.pop("COLUMNS", None)
    environment.pop("LINES", None)
    return subprocess.run(
        [*memprof_command(), *args], capture_output=True, text=True, cwd=cwd, env=environment, timeout=300
    )


@pytest.fixture(scope="module")
def hostile_capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("hostile")
    (folder / "program.py").write_text(HOSTILE_PROGRAM)
    result = run("run", "-q", "-o", "hostile.bin", "program.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "hostile.bin"


@pytest.fixture(scope="module")
def deep_capture(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("deep")
    nested = folder.joinpath(*[f"a_rather_long_folder_name_{index}" for index in range(6)])
    nested.mkdir(parents=True)
    (nested / "a_program_with_a_long_name.py").write_text(DEEP_PROGRAM)
    result = run("run", "-q", "-o", str(folder / "deep.bin"), str(nested / "a_program_with_a_long_name.py"), cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "deep.bin"


def test_printable_shows_control_characters_as_escapes():
    assert printable("a\x1b[2Jb\x07\x00\x7f") == "a\\x1b[2Jb\\x07\\x00\\x7f"
    assert printable("\u009b31m") == "\\x9b31m"
    assert printable("abc\u202edef") == "abc\\u202edef"
    assert printable("plain /path/to/file.py: ok, été") == "plain /path/to/file.py: ok, été"


@pytest.mark.parametrize("command", [["tree"], ["stats"], ["summary"], ["parse"]])
def test_reader_commands_escape_control_characters_from_the_capture(hostile_capture, command):
    result = run(*command, hostile_capture.name, cwd=hostile_capture.parent, COLUMNS="400")
    assert result.returncode == 0, result.stderr
    for character in ("\x1b", "\x07", "\u009b"):
        assert character not in result.stdout, (command, result.stdout[:2000])
    # The names are still there, written out.
    assert "evil\\x1b]0;pwned\\x07\\x1b[2J" in result.stdout, result.stdout[:2000]


def test_stats_json_keeps_names_as_json_escapes(hostile_capture):
    result = run("stats", "--json", hostile_capture.name, cwd=hostile_capture.parent)
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\\u001b" in result.stdout


@pytest.mark.parametrize("command", ["tree", "summary", "stats"])
def test_into_a_pipe_lines_are_not_wrapped(deep_capture, command):
    result = run(command, str(deep_capture), cwd=deep_capture.parent)
    assert result.returncode == 0, result.stderr
    # The allocating frame's whole location is on one line, however long it is.
    line = next((line for line in result.stdout.splitlines() if "a_program_with_a_long_name.py" in line), None)
    assert line is not None, result.stdout
    assert "a_rather_long_folder_name_0/" in line and len(line) > 200, result.stdout
    if command == "stats":  # the command line and its pid stay on one line
        assert any("Command:" in line and "(pid " in line for line in result.stdout.splitlines()), result.stdout


def test_columns_set_the_width_into_a_pipe(deep_capture):
    result = run("summary", str(deep_capture), cwd=deep_capture.parent, COLUMNS="100")
    assert result.returncode == 0, result.stderr
    assert max(len(line) for line in result.stdout.splitlines()) <= 100, result.stdout


def test_tree_at_80_columns_keeps_deep_frames_readable(deep_capture):
    result = run("tree", str(deep_capture), cwd=deep_capture.parent, COLUMNS="80")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    # All 40 levels of recursion show their function's name whole, however deep they are, and the
    # long path is cut from its start (the file name and line stay).
    assert sum("descend" in line for line in lines) >= 41, result.stdout
    assert any("\u2026" in line and "a_program_with_a_long_name.py:" in line for line in lines), result.stdout
    assert not any(len(line.strip()) == 1 for line in lines), result.stdout


def test_the_live_view_and_the_sys_view_escape_names_the_same_way():
    from pytest_memprof.live.view import thread_label
    from pytest_memprof.sysstats.printers import visible

    assert thread_label(7, "worker\x1b[2J") == "worker\\x1b[2J (7)"
    assert visible("evil\x1b]0;x\x07") == printable("evil\x1b]0;x\x07") == "evil\\x1b]0;x\\x07"


def test_tree_at_80_columns_on_a_deep_native_stack_fits(tmp_path):
    (tmp_path / "deep.py").write_text(DEEP_PROGRAM)
    result = run("run", "-q", "--native", "-o", "deep.bin", "deep.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    result = run("tree", "--show-interpreter-frames", "deep.bin", cwd=tmp_path, COLUMNS="80")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert max(len(line) for line in lines) <= 80, result.stdout
    # Interpreter frames between each level make the stack hundreds deep: names stay readable.
    assert sum("descend" in line for line in lines) >= 41, result.stdout
    assert not any(len(line.strip()) <= 2 for line in lines), result.stdout
