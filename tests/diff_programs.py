"""Two versions of one program for the diff tests, each run under the real ``memprof run``.

The second version allocates 150,000 bytes more in ``grows`` and 250,000 bytes less in
``shrinks``; ``steady`` does not change. Variants move the functions (a blank line above them)
or a line inside ``grows``, and one adds a function.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.cli.conftest import memprof_command
from tests.conftest import subprocess_env

GREW = 150_000
SHRANK = 250_000

# Loops and comprehensions avoided: each allocation is one line of one function.
BASE = """\
def grows():
    return bytearray(100_000)


def shrinks():
    return bytearray(400_000)


def steady():
    return bytearray(50_000)


kept = [grows(), shrinks(), steady()]
"""
NEW = BASE.replace("100_000", f"{100_000 + GREW:_}").replace("400_000", f"{400_000 - SHRANK:_}")
VERSIONS = {
    "base": BASE,
    "new": NEW,
    # An unrelated edit above the functions: every line moves down one.
    "blank_line": "\n" + NEW,
    # A line added inside grows, above its allocation: grows starts where it did, its allocation moves.
    "inner_line": NEW.replace("def grows():\n", "def grows():\n    padding = None\n"),
    # A function the base does not have.
    "added": NEW.replace("kept = [", "def fresh():\n    return bytearray(30_000)\n\n\nkept = [fresh(), "),
}


@pytest.fixture(scope="session")
def diff_captures(tmp_path_factory) -> dict[str, Path]:
    """{version name: capture of that version}, every version run as the same file, app.py."""
    folder = tmp_path_factory.mktemp("diff")
    script = folder / "app.py"
    captures = {}
    for name, source in VERSIONS.items():
        script.write_text(source)
        capture = folder / f"{name}.bin"
        result = subprocess.run([*memprof_command(), "run", "-q", "-o", str(capture), str(script)], cwd=folder,
                                env=subprocess_env(), capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        captures[name] = capture
    return captures


def line_of(name: str, text: str) -> int:
    """The 1-based line of version ``name`` holding ``text``."""
    return next(number for number, line in enumerate(VERSIONS[name].splitlines(), 1) if text in line)
