"""``memprof run``'s own reading of its command line (parse_fast) agrees with argparse's, or leaves it to argparse."""

from __future__ import annotations

import pytest

from pytest_memprof.cli import build_parser
from pytest_memprof.cli import run as run_command

# Command lines a user types: every one is read without argparse.
EVERYDAY = [
    ["-q", "-f", "-o", "e.bin", "empty.py"],
    ["script.py"],
    ["-o", "out.bin", "prog.py", "3", "--flag", "-o", "x"],
    ["--native", "--follow-fork", "--aggregate", "--output", "a.bin", "--force", "--quiet", "p.py", "-"],
    ["--no-python-allocators", "--trace-python-allocators", "--no-compress", "--compress-on-exit", "p.py"],
    ["-q", "-m", "json.tool", "--sort-keys", "in.json"],
    ["-m", "prog", "0", "-o", "--force"],
    ["-c", "import sys; print(sys.argv)", "a", "-q"],
    ["-o", "first.bin", "-o", "second.bin", "p.py"],
    ["--live", "p.py"],
    ["--live-remote", "--live-port", "8765", "--live-host", "0.0.0.0", "p.py"],
    ["--live-remote", "--live-port", " 0 ", "p.py"],
    ["-f", ""],
]
# Everything else goes to argparse: abbreviations, joined flags, =VALUE, help, errors.
UNUSUAL = [
    [],
    ["-q"],
    ["-qf", "p.py"],
    ["--out", "x.bin", "p.py"],
    ["--output=x.bin", "p.py"],
    ["-ox.bin", "p.py"],
    ["--nat", "p.py"],
    ["-h"],
    ["--help"],
    ["--", "p.py"],
    ["-o"],
    ["-o", "-x.bin", "p.py"],
    ["--live-port", "many", "p.py"],
    ["-m"],
    ["-c"],
    ["--no-such-flag", "p.py"],
    ["-", "p.py"],
]


def argparse_reading(argv: list[str]) -> dict:
    namespace = build_parser("run").parse_args(["run", *argv])
    return vars(namespace)


@pytest.mark.parametrize("argv", EVERYDAY, ids=" ".join)
def test_an_everyday_command_line_is_read_without_argparse_as_argparse_reads_it(argv):
    fast = run_command.parse_fast(argv)
    assert fast is not None
    assert vars(fast) == argparse_reading(argv)


@pytest.mark.parametrize("argv", UNUSUAL, ids=" ".join)
def test_any_other_command_line_is_left_to_argparse(argv):
    assert run_command.parse_fast(argv) is None


def test_every_option_of_run_is_read_fast_as_argparse_reads_it():
    # The argparse parser is built from the same table: no flag of it can be missing from the fast reading.
    parser = build_parser("run")
    run_parser = next(action for action in parser._actions if action.dest == "command").choices["run"]
    flags = {flag: action.nargs != 0 for action in run_parser._actions for flag in action.option_strings}
    assert {"-o", "--output", "--native", "--live-port"} <= set(flags)
    for flag, takes_value in flags.items():
        if flag in ("-h", "--help", "-m", "-c"):
            continue
        argv = [flag, "8080", "p.py"] if takes_value else [flag, "p.py"]
        fast = run_command.parse_fast(argv)
        assert fast is not None, flag
        assert vars(fast) == argparse_reading(argv), flag
