"""The ``memprof`` dispatcher: a command imports its own module, not every command's."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from tests.conftest import subprocess_env


@pytest.mark.parametrize("command", ["sys", "detach", "stats", "run"])
def test_a_command_imports_only_its_own_module(command):
    # `memprof sys -w` is a server: every command's module (the capture reader, the tracker)
    # was in its resident memory, 3 MiB more than Glances's half allowed on 3.9.
    probe = (
        "import sys\n"
        "from pytest_memprof.cli import main\n"
        "try:\n"
        f"    main([{command!r}, '--help'])\n"
        "except SystemExit:\n"
        "    pass\n"
        "print(sorted(name for name in sys.modules if name.startswith('pytest_memprof.')))\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, env=subprocess_env(),
                            timeout=120)
    assert result.returncode == 0, result.stderr
    loaded = result.stdout.strip().splitlines()[-1]
    module = {"sys": "system", "detach": "attach"}.get(command, command)
    others = [name for name in ("run", "stats", "system", "attach", "flamegraph", "live") if name != module]
    assert f"'pytest_memprof.cli.{module}'" in loaded, loaded
    assert not any(f"'pytest_memprof.cli.{name}'" in loaded for name in others), loaded
    if command == "sys":
        assert "'pytest_memprof.capture'" not in loaded and "'pytest_memprof.tracker'" not in loaded, loaded


PROBE = """
import atexit, sys
from pytest_memprof.cli import console_main

class Teardown:
    def __del__(self):
        print("teardown ran", file=sys.stderr)

keep = Teardown()  # a module global: deleted when the interpreter clears the modules
atexit.register(print, "exit handler ran", file=sys.stderr)
sys.argv = ["memprof", *sys.argv[1:]]
console_main()
"""


def test_a_report_ends_without_teardown_after_its_exit_handlers_and_whole_output(tmp_path):
    (tmp_path / "app.py").write_text("blocks = [bytearray(1000) for _ in range(100)]\n")
    run = subprocess.run([sys.executable, "-m", "pytest_memprof", "run", "-q", "-o", "app.bin", "app.py"],
                         cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    report = subprocess.run([sys.executable, "-c", PROBE, "stats", "--json", "app.bin"], cwd=tmp_path,
                            capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert report.returncode == 0, report.stderr
    assert json.loads(report.stdout)["total_allocations"] >= 100  # flushed whole
    assert "exit handler ran" in report.stderr  # the symbol cache is saved by one
    assert "teardown ran" not in report.stderr
    # An error still gives its message and exit code.
    missing = subprocess.run([sys.executable, "-c", PROBE, "stats", "missing.bin"], cwd=tmp_path,
                             capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert missing.returncode == 1 and "memprof: error:" in missing.stderr, missing.stderr
    assert "teardown ran" not in missing.stderr and "Traceback" not in missing.stderr


def test_a_program_run_under_memprof_gets_its_teardown(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    result = subprocess.run([sys.executable, "-c", PROBE, "run", "-q", "-o", "app.bin", "app.py"], cwd=tmp_path,
                            capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert result.returncode == 0, result.stderr
    assert "exit handler ran" in result.stderr and "teardown ran" in result.stderr


def test_a_report_under_a_profiler_lives_to_write_the_profile(tmp_path):
    # python -m cProfile writes its file after the code returns, past where a report's process ends.
    (tmp_path / "app.py").write_text("x = [bytearray(10) for _ in range(10)]\n")
    run = subprocess.run([sys.executable, "-m", "pytest_memprof", "run", "-q", "-o", "app.bin", "app.py"],
                         cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    profiled = subprocess.run([sys.executable, "-m", "cProfile", "-o", "stats.prof", "-m", "pytest_memprof", "stats",
                               "--json", "app.bin"], cwd=tmp_path, capture_output=True, text=True,
                              env=subprocess_env(), timeout=120)
    assert profiled.returncode == 0, profiled.stderr
    assert json.loads(profiled.stdout)["total_allocations"] > 0
    assert (tmp_path / "stats.prof").stat().st_size > 0


@pytest.mark.parametrize("command", ["stats", "tree", "summary", "parse", "diff"])
def test_a_reader_that_leaves_early_is_not_an_error(command, tmp_path):
    # `memprof stats x.bin | head`: rich's console exited with status 1 when the pipe closed.
    (tmp_path / "app.py").write_text("blocks = [bytearray(1000) for _ in range(1000)]\n")
    run = subprocess.run([sys.executable, "-m", "pytest_memprof", "run", "-q", "-o", "app.bin", "app.py"],
                         cwd=tmp_path, capture_output=True, text=True, env=subprocess_env(), timeout=120)
    assert run.returncode == 0, run.stderr
    files = "app.bin app.bin" if command == "diff" else "app.bin"
    # The reader (`true`) is gone long before the report has read its capture and starts writing.
    pipeline = subprocess.run(["bash", "-c", f"{sys.executable} -m pytest_memprof {command} {files} | true; "
                               "echo status=${PIPESTATUS[0]}"], cwd=tmp_path, capture_output=True, text=True,
                              env=subprocess_env(), timeout=120)
    assert pipeline.stdout.strip().endswith("status=0"), (pipeline.stdout, pipeline.stderr)
    assert "Traceback" not in pipeline.stderr and "Error" not in pipeline.stderr, pipeline.stderr
