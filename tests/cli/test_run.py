"""``memprof run``: runs a program as ``python`` would and leaves a capture of it."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

from pytest_memprof import Capture
from tests.conftest import subprocess_env

from .conftest import assert_one_line_error

PROGRAM = """
import sys

def make_buffer():
    return bytearray(20_000_003)

kept = make_buffer()
print("argv=" + ",".join(sys.argv[1:]))
print("name=" + __name__)
sys.exit(int(sys.argv[1]) if len(sys.argv) > 1 else 0)
"""


@pytest.fixture
def program(tmp_path):
    path = tmp_path / "prog.py"
    path.write_text(textwrap.dedent(PROGRAM))
    return path


def test_script_gets_its_argv_and_exit_code_and_its_allocation_is_captured(memprof, program, tmp_path):
    result = memprof("run", "-o", "out.bin", str(program), "3", "--flag")
    assert result.returncode == 3, result.stderr
    assert "argv=3,--flag" in result.stdout
    assert "name=__main__" in result.stdout
    assert "wrote out.bin" in result.stderr
    capture = Capture.open(tmp_path / "out.bin")
    assert not capture.truncated
    assert capture.peak_bytes >= 20_000_003
    top = capture.peak_stacks()[0]
    # As python would show it: the program's module, then the function; memprof's own runner frames
    # (the console script, cli/run.py, runpy) are not part of the program's stacks.
    assert [frame.function for frame in top.frames] == ["<module>", "make_buffer"]
    assert all(frame.file.endswith("prog.py") for frame in top.frames)
    assert capture.metadata.command_line.startswith("memprof run")


def test_module_and_code_string(memprof, program, tmp_path):
    # As `python -m`: the module is found from the current folder, and every word after it
    # (flags that `memprof run` also has included) is the module's.
    result = memprof("run", "-q", "-o", "mod.bin", "-m", "prog", "0", "-o", "--force")
    assert result.returncode == 0, result.stderr
    assert "argv=0,-o,--force" in result.stdout
    assert "name=__main__" in result.stdout
    assert result.stderr == ""  # -q: nothing about the capture
    assert Capture.open(tmp_path / "mod.bin").peak_bytes >= 20_000_003

    code = "import sys; x = bytearray(7_000_001); print('ran', sys.argv)"
    result = memprof("run", "-q", "-o", "code.bin", "-c", code, "-q", "arg")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ran ['-c', '-q', 'arg']"
    stacks = Capture.open(tmp_path / "code.bin").peak_stacks()
    assert any(s.location and s.location.file == "<string>" and s.bytes >= 7_000_001 for s in stacks)


def test_default_output_name_is_in_the_current_folder(memprof, program, tmp_path):
    result = memprof("run", str(program))
    assert result.returncode == 0, result.stderr
    written = sorted(tmp_path.glob("memprof-prog.*.bin"))
    assert len(written) == 1
    assert Capture.open(written[0]).peak_bytes >= 20_000_003


def test_uncaught_exception_exits_1_shows_only_the_program_traceback_and_keeps_the_capture(memprof, tmp_path):
    script = tmp_path / "boom.py"
    script.write_text("data = bytearray(3_000_000)\nraise ValueError('boom from the program')\n")
    result = memprof("run", "-o", "boom.bin", str(script))
    assert result.returncode == 1
    assert "ValueError: boom from the program" in result.stderr
    assert "cli/run.py" not in result.stderr  # our frames are dropped, as python shows none of its own
    assert not Capture.open(tmp_path / "boom.bin").truncated


def test_a_failing_program_prints_the_traceback_python_prints(memprof, tmp_path):
    script = tmp_path / "fails.py"
    script.write_text("def main():\n    raise ValueError('boom')\n\nmain()\n")
    by_python = subprocess.run([sys.executable, "fails.py"], cwd=tmp_path, capture_output=True, text=True)
    result = memprof("run", "-q", "-o", "fails.bin", "fails.py")
    assert result.returncode == by_python.returncode == 1
    assert result.stderr == by_python.stderr  # no <frozen runpy> frames, no cli/run.py line


def test_a_missing_module_is_one_line_as_python_says_and_leaves_no_capture(memprof, tmp_path):
    result = memprof("run", "-o", "missing.bin", "-m", "no_such_module_here")
    assert_one_line_error(result, "No module named no_such_module_here")
    assert result.returncode == 1
    assert not (tmp_path / "missing.bin").exists()


def test_existing_capture_is_kept_unless_forced(memprof, program, tmp_path):
    out = tmp_path / "out.bin"
    out.write_bytes(b"precious")
    result = memprof("run", "-o", "out.bin", str(program))
    assert_one_line_error(result, "already exists", "--force")
    assert result.returncode == 2
    assert out.read_bytes() == b"precious"
    assert "argv=" not in result.stdout  # the program did not run
    result = memprof("run", "-f", "-o", "out.bin", str(program))
    assert result.returncode == 0, result.stderr
    assert Capture.open(out).peak_bytes >= 20_000_003


def test_missing_script_and_folder_are_one_line_errors(memprof, tmp_path):
    assert_one_line_error(memprof("run", "-m"), "-m", "module name")
    assert_one_line_error(memprof("run", "nope.py"), "nope.py", "no such file")
    assert_one_line_error(memprof("run", str(tmp_path)), "is a folder")


def test_unwritable_output_folder_is_a_clear_error_and_the_program_does_not_run(memprof, program, tmp_path):
    if os.geteuid() == 0:
        target = "/proc/memprof-cannot-write-here/out.bin"  # root may write anywhere else
    else:
        locked = tmp_path / "locked"
        locked.mkdir(mode=0o500)
        target = str(locked / "out.bin")
    result = memprof("run", "-o", target, str(program))
    assert_one_line_error(result)
    assert "argv=" not in result.stdout


def test_no_python_allocators_still_sees_the_large_buffer(memprof, program, tmp_path):
    result = memprof("run", "-q", "--no-python-allocators", "-o", "raw.bin", str(program))
    assert result.returncode == 0, result.stderr
    capture = Capture.open(tmp_path / "raw.bin")
    assert capture.metadata.trace_python_allocators is False
    assert not any(name.startswith("PyObject_") for name in capture.allocator_totals())
    assert capture.peak_bytes >= 20_000_003


def test_run_imports_no_report_code_before_the_program(memprof, tmp_path):
    # Start-up is part of every run's cost (issue 19, item 5): the capture reader, the symboliser and
    # rich are for reports and for --aggregate, and `memprof run` without it must not load them.
    script = tmp_path / "modules.py"
    script.write_text("import sys\nprint(sorted(m for m in ('rich', 'pytest_memprof.capture', 'pytest_memprof._reader',"
                      " 'pytest_memprof.symbols', 'pytest_memprof.aggregate') if m in sys.modules))\n")
    result = memprof("run", "-q", "-o", "plain.bin", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "[]"
    # --aggregate needs the reader in the tracked process, and loads it.
    result = memprof("run", "-q", "--aggregate", "-o", "aggregated.bin", str(script))
    assert result.returncode == 0, result.stderr
    assert "pytest_memprof._reader" in result.stdout


# Imported by memprof itself only for what few runs need (a report, --live, argparse's errors): a
# module here that `memprof run` of an empty script loads and `python` of it does not is start-up
# time every run pays (issue 19, item 5). What python's own start-up loads (site, a .pth) is not ours.
NOT_ON_THE_RUN_PATH = ("argparse", "dataclasses", "inspect", "typing", "json", "platform", "subprocess", "shutil",
                       "tempfile", "random", "pkgutil", "traceback", "gettext", "locale", "glob", "bz2", "lzma",
                       "pytest_memprof.model", "pytest_memprof.destinations", "pytest_memprof.cli._common",
                       "threading", "pathlib", "runpy", "re", "fnmatch", "urllib.parse", "contextlib",
                       "importlib.util", "functools", "collections", "enum", "types", "weakref", "warnings")

# The console script's code, as pip writes it, run by -c: `python -m` would import runpy itself.
CONSOLE_SCRIPT = "import sys; from pytest_memprof.cli import console_main; sys.argv[0] = 'memprof'; console_main()"


def test_run_of_a_script_imports_none_of_the_heavy_modules_before_it_starts(tmp_path):
    # Both without site (-S), the package found through PYTHONPATH: an editable install's .pth
    # imports pathlib, re and importlib.util into every interpreter, python's own run too, and
    # hid ours (5 ms of start-up that a user's wheel install paid).
    script = tmp_path / "modules.py"
    script.write_text("import sys\nprint(' '.join(sorted(sys.modules)))\n")
    env = subprocess_env()
    by_python = subprocess.run([sys.executable, "-S", str(script)], capture_output=True, text=True, cwd=tmp_path,
                               env=env)
    assert by_python.returncode == 0, by_python.stderr
    result = subprocess.run([sys.executable, "-S", "-c", CONSOLE_SCRIPT, "run", "-q", "-f", "-o", "modules.bin",
                             str(script)], capture_output=True, text=True, cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stderr
    ours = set(result.stdout.split()) - set(by_python.stdout.split())
    assert "pytest_memprof._tracker" in ours  # the probe sees what memprof loaded
    assert sorted(ours & set(NOT_ON_THE_RUN_PATH)) == []


def test_an_empty_script_has_nothing_charged_to_it(memprof, tmp_path):
    # Deciding how to run the script (the path hooks: zipimport reads the file), its absolute
    # path and folder, and our own imports are memprof run's work: done before tracking, or in
    # the launcher's frames. They were charged to the program (96 allocations on 3.11), as frames
    # of <frozen zipimport> and posixpath after ours.
    (tmp_path / "empty.py").write_text("")
    result = memprof("run", "-q", "-o", "empty.bin", "empty.py")
    assert result.returncode == 0, result.stderr
    capture = Capture.open(tmp_path / "empty.bin")
    program = [row for row in capture.total_stacks(merge_allocators=False) if not row.launcher]
    assert program == []


THREADING_IMPORTED_LATE = """
import sys
assert "threading" not in sys.modules, "imported before the program"
import threading

def allocate_in_the_thread():
    global kept
    kept = bytearray(3_333_331)

worker = threading.Thread(target=allocate_in_the_thread, name="late-worker")
worker.start()
worker.join()
print(threading.__loader__.__class__.__name__, [f for f in sys.meta_path if "Threading" in repr(f)])
"""


def test_a_program_importing_threading_after_the_start_has_its_threads_named_and_stacked(memprof, tmp_path):
    # threading is left to the program (a millisecond of start-up): imported late, its threads
    # still get the trampoline (names; the C profiler before 3.11), and the finder that saw to it
    # is gone and left the module its own loader.
    script = tmp_path / "late.py"
    script.write_text(THREADING_IMPORTED_LATE)
    result = memprof("run", "-q", "-o", "late.bin", str(script))
    assert result.returncode == 0, result.stderr
    assert result.stdout.split() == ["SourceFileLoader", "[]"]
    capture = Capture.open(tmp_path / "late.bin")
    named = {thread.name: thread.thread_id for thread in capture.threads()}
    assert "late-worker" in named
    rows = [s for s in capture.total_stacks(merge_threads=False) if s.bytes >= 3_333_331]
    assert [row.thread_id for row in rows] == [named["late-worker"]]
    assert rows[0].frames[-1].function == "allocate_in_the_thread"


def test_a_script_runs_as_runpy_runs_it(memprof, tmp_path):
    # Run without runpy.run_path (pkgutil): the same module attributes, argv, __main__ and warnings.
    script = tmp_path / "attributes.py"
    script.write_text(
        "import sys, warnings\n"
        "def f(x: int): pass\n"
        "print(__name__, __file__, sys.argv, __spec__, __loader__, repr(__package__), __doc__)\n"
        "print(sorted(globals()))\n"  # 3.15's runpy sets no __cached__
        "print(sys.modules['__main__'].__dict__ is globals(), f.__annotations__)\n"
        "warnings.warn('from the program')\n"
    )
    by_runpy = subprocess.run(
        [sys.executable, "-c", f"import runpy, sys; sys.argv[1:] = ['a', '-q']; "
         f"runpy.run_path({str(script)!r}, run_name='__main__')"],
        capture_output=True, text=True, cwd=tmp_path, env=subprocess_env())
    assert by_runpy.returncode == 0, by_runpy.stderr
    result = memprof("run", "-q", "-o", "attributes.bin", str(script), "a", "-q")
    assert result.returncode == 0, result.stderr
    assert result.stdout == by_runpy.stdout.replace("['-c', ", f"[{str(script)!r}, ")
    assert "{'x': <class 'int'>}" in result.stdout  # memprof's own `from __future__ import annotations` is not its
    assert result.stderr == by_runpy.stderr  # the program's warning, as python prints it


def test_a_zip_application_still_runs(memprof, tmp_path):
    import zipapp

    source = tmp_path / "app"
    source.mkdir()
    (source / "__main__.py").write_text("import sys\nkept = bytearray(5_000_011)\nprint('zip app', sys.argv[1:])\n")
    zipapp.create_archive(source, tmp_path / "app.pyz")
    result = memprof("run", "-q", "-o", "app.bin", "app.pyz", "x")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "zip app ['x']"
    assert Capture.open(tmp_path / "app.bin").peak_bytes >= 5_000_011


def test_code_string_sees_no_future_import_of_memprof(memprof, tmp_path):
    result = memprof("run", "-q", "-o", "code.bin", "-c", "def f(x: int): pass\nprint(f.__annotations__)")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "{'x': <class 'int'>}"


def test_sources_are_decoded_as_python_decodes_them(memprof, tmp_path):
    # Scripts and -c code are compiled without compile() (see _tracker.compile_file): a script's
    # coding declaration applies, one inside -c code does not (the text is decoded already).
    script = tmp_path / "latin.py"
    script.write_bytes(b"# -*- coding: latin-1 -*-\nprint(ascii('\xe9'))\n")
    code = "# -*- coding: latin-1 -*-\nprint(ascii('\u00e9\u20ac'))"
    for words in (["latin.py"], ["-c", code]):
        by_python = subprocess.run([sys.executable, *words], capture_output=True, text=True, cwd=tmp_path)
        result = memprof("run", "-q", "-f", "-o", "latin.bin", *words)
        assert result.returncode == by_python.returncode == 0, result.stderr
        # 3.9's python -c still applies the declaration to the text's UTF-8 bytes (mojibake); memprof
        # runs the text as typed, as python does from 3.11 on (not checked on 3.10).
        if words[0] != "-c" or sys.version_info >= (3, 11):
            assert result.stdout == by_python.stdout
    assert result.stdout.strip() == "'\\xe9\\u20ac'"


def test_a_source_with_a_nul_byte_fails_and_is_not_cut_at_it(memprof, tmp_path):
    # The C call compiles up to the NUL: such a file goes to compile(), which refuses it, as python does
    # (in its own words: "source code string cannot ...", python's "source code cannot ...").
    # (3.9's python runs such a file up to the NUL; memprof refuses it there too, as before.)
    (tmp_path / "nul.py").write_bytes(b"print('ran')\0\n")
    by_python = subprocess.run([sys.executable, "nul.py"], capture_output=True, text=True, cwd=tmp_path)
    result = memprof("run", "-q", "-o", "nul.bin", "nul.py")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "null bytes" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr  # no frame of ours (compile_file's) shown as the program's
    if sys.version_info >= (3, 11):
        assert (by_python.returncode, by_python.stdout) == (1, "")


@pytest.mark.parametrize("module", ["__main__", "warnme"])
def test_a_compile_time_warning_is_filtered_by_module_as_python_filters_it(memprof, tmp_path, module):
    # Which module compiling the script is attributed to: on 3.15 "__main__" (python's and runpy's
    # compile(module=...)), before it the path's (what Py_CompileStringObject attributes it to too).
    (tmp_path / "warnme.py").write_text("x = 1\nprint(x is 1)\n")
    env = subprocess_env(PYTHONWARNINGS=f"ignore::SyntaxWarning:{module}")
    by_python = subprocess.run([sys.executable, str(tmp_path / "warnme.py")], capture_output=True, text=True,
                               cwd=tmp_path, env=env)
    result = memprof("run", "-q", "-o", "warnme.bin", str(tmp_path / "warnme.py"), env=env)
    assert result.returncode == by_python.returncode == 0, result.stderr
    assert result.stdout == by_python.stdout == "True\n"
    assert ("SyntaxWarning" in result.stderr) == ("SyntaxWarning" in by_python.stderr)
