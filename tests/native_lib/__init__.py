"""Builds tests/native_lib/testalloc.c into a shared library for the tests (gcc is on every machine)."""

from __future__ import annotations

import ctypes
import subprocess
from pathlib import Path

SOURCE = Path(__file__).with_name("testalloc.c")


def build(target_dir: Path, name: str = "libtestalloc.so") -> Path:
    """Compile the test library into ``target_dir`` and return its path."""
    output = target_dir / name
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O0", "-Wall", "-Wextra", "-o", str(output), str(SOURCE), "-lpthread"],
        check=True,
    )
    return output


def load(path: Path) -> ctypes.CDLL:
    """dlopen the library and declare its functions' types."""
    lib = ctypes.CDLL(str(path))
    vp, size = ctypes.c_void_p, ctypes.c_size_t
    signatures = {
        "alloc_malloc": (vp, [size]),
        "alloc_calloc": (vp, [size, size]),
        "alloc_realloc": (vp, [vp, size]),
        "alloc_posix_memalign": (vp, [size]),
        "alloc_aligned_alloc": (vp, [size]),
        "alloc_memalign": (vp, [size]),
        "alloc_valloc": (vp, [size]),
        "alloc_pvalloc": (vp, [size]),
        "release": (None, [vp]),
        "alloc_mmap": (vp, [size]),
        "release_mmap": (ctypes.c_int, [vp, size]),
        "malloc_slot": (vp, []),
        "native_thread_allocate": (vp, [size, ctypes.c_int, ctypes.c_char_p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib
