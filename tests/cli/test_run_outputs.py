"""Where ``memprof run`` puts what it writes, and what it says about it (issue 18.9)."""

from __future__ import annotations

import re
import select
import socket
import subprocess
import textwrap
import time

from tests.conftest import subprocess_env

from .conftest import memprof_command

FORKS_AFTER_CHDIR = textwrap.dedent("""
    import os
    os.makedirs("elsewhere", exist_ok=True)
    os.chdir("elsewhere")
    pid = os.fork()
    if pid == 0:
        data = bytearray(1_000_000)
        os._exit(0)
    os.waitpid(pid, 0)
""")


def test_follow_fork_children_go_beside_a_relative_output_and_are_named(memprof, tmp_path):
    (tmp_path / "prog.py").write_text(FORKS_AFTER_CHDIR)
    result = memprof("run", "--follow-fork", "-o", "out.bin", "prog.py")
    assert result.returncode == 0, result.stderr
    children = sorted(path.name for path in tmp_path.glob("out.bin.*"))
    assert len(children) == 1, (children, sorted(p.name for p in (tmp_path / "elsewhere").iterdir()))
    assert not list((tmp_path / "elsewhere").glob("out.bin*"))
    assert f"memprof: 1 forked child capture(s), one per process: {children[0]}" in result.stderr


def test_follow_fork_says_when_no_child_wrote_a_capture(memprof, tmp_path):
    (tmp_path / "prog.py").write_text("print('no fork')\n")
    result = memprof("run", "--follow-fork", "-o", "out.bin", "prog.py")
    assert result.returncode == 0, result.stderr
    assert "memprof: no forked child wrote a capture (each would write out.bin.<pid>)" in result.stderr


def test_a_wildcard_live_host_suggests_an_address_to_connect_to(tmp_path):
    (tmp_path / "prog.py").write_text("import time\ntime.sleep(30)\n")
    process = subprocess.Popen(
        [*memprof_command(), "run", "--live-remote", "--live-host", "0.0.0.0", "prog.py"],
        cwd=tmp_path,
        env=subprocess_env(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline, seen = time.monotonic() + 60, ""
        while time.monotonic() < deadline and "waiting for a viewer" not in seen:
            if select.select([process.stderr], [], [], 0.5)[0]:
                line = process.stderr.readline()
                if not line:
                    break
                seen += line
        match = re.search(r"waiting for a viewer on 0\.0\.0\.0:(\d+): run (.*)", seen)
        assert match, seen
        port = match.group(1)
        assert match.group(2) == (
            f"`memprof live {port} --host {socket.gethostname()}` (or `memprof live {port}` on this machine)"
        )
        assert "--host 0.0.0.0" not in seen
    finally:
        process.kill()
        process.wait(timeout=30)
