"""The ``memprof`` dispatcher: a command imports its own module, not every command's."""

from __future__ import annotations

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
