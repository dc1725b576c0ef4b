"""Allocator functions looked up by name while tracking (ctypes, plugin loaders) are seen too."""

from __future__ import annotations

import subprocess
import sys
import textwrap

from pytest_memprof import Capture
from tests.conftest import subprocess_env


def test_malloc_called_through_ctypes_is_seen(tmp_path):
    out = tmp_path / "ctypes.bin"
    script = tmp_path / "leak.py"
    script.write_text(
        textwrap.dedent(f"""
        import ctypes, ctypes.util
        from pytest_memprof import Tracker

        by_program = ctypes.CDLL(None)
        by_name = ctypes.CDLL(ctypes.util.find_library("c"))

        def leak_through_ctypes():
            by_program.malloc.restype = ctypes.c_void_p
            by_name.malloc.restype = ctypes.c_void_p
            return by_program.malloc(5 * 2**20), by_name.malloc(3 * 2**20)

        with Tracker({str(out)!r}):
            kept = leak_through_ctypes()
    """)
    )
    result = subprocess.run(
        [sys.executable, str(script)], capture_output=True, text=True, env=subprocess_env(), timeout=60, cwd=tmp_path
    )
    assert result.returncode == 0, result.stderr
    # Before: dlsym handed ctypes libc's own malloc, past every GOT slot we patch: nothing seen.
    leaked = sum(
        stat.bytes
        for stat in Capture.open(out).leak_stacks()
        if stat.location and stat.location.function == "leak_through_ctypes"
    )
    assert leaked >= 8 * 2**20


def test_rtld_next_lookups_still_resolve_relative_to_the_caller(tmp_path):
    # dlsym(RTLD_NEXT) depends on who calls it: our hook passes it on as a tail call.
    code = textwrap.dedent("""
        import ctypes
        from pytest_memprof import Tracker
        libdl = ctypes.CDLL(None)
        libdl.dlsym.restype = ctypes.c_void_p
        libdl.dlsym.argtypes = [ctypes.c_void_p, ctypes.c_char_p]
        with Tracker(None):
            found = libdl.dlsym(ctypes.c_void_p(-1), b"malloc")
        print("found" if found else "none")
    """)
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=subprocess_env(), timeout=60
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "found"
