"""Builds tests/native_lib/testalloc.c into a shared library for the tests (gcc is on every machine)."""

from __future__ import annotations

import ctypes
import os
import subprocess
import sysconfig
from pathlib import Path

SOURCE = Path(__file__).with_name("testalloc.c")
CALLBACK = ctypes.CFUNCTYPE(None)


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
        "native_threads_allocate": (ctypes.c_int, [ctypes.c_int, size, ctypes.c_int]),
        "call_in_native_thread": (ctypes.c_int, [CALLBACK]),
        "getattr_in_new_thread": (ctypes.c_int, []),
        "register_allocating_atfork": (ctypes.c_int, []),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes
    return lib


CPP_SOURCE = Path(__file__).with_name("nativestacks.cc")


def build_cpp(target_dir: Path, name: str = "libnativestacks.so", optimize: str = "-O0") -> Path:
    """Compile the C++ native-stacks library (debug info, no inlining by default) into ``target_dir``."""
    output = target_dir / name
    subprocess.run(
        ["g++", "-shared", "-fPIC", optimize, "-g", "-Wall", "-Wextra", "-o", str(output), str(CPP_SOURCE),
         "-lpthread"],
        check=True,
    )
    return output


def load_cpp(path: Path) -> ctypes.CDLL:
    """dlopen the C++ library and declare its functions' types."""
    lib = ctypes.CDLL(str(path))
    vp, size, out = ctypes.c_void_p, ctypes.c_size_t, ctypes.POINTER(ctypes.c_void_p)
    lib.memprof_test_entry.restype = vp
    lib.memprof_test_entry.argtypes = [size, out]
    lib.memprof_test_release.restype = None
    lib.memprof_test_release.argtypes = [vp, vp]
    lib.memprof_test_thread.restype = ctypes.c_int
    lib.memprof_test_thread.argtypes = [size, ctypes.c_char_p, out, out]
    lib.memprof_test_inlined.restype = vp
    lib.memprof_test_inlined.argtypes = [size]
    lib.memprof_test_call.restype = None
    lib.memprof_test_call.argtypes = [CALLBACK]
    return lib



def marked_lines(path: Path = CPP_SOURCE) -> dict:
    """{label: line number} of the ``// LINE: label`` comments of a source file."""
    lines = {}
    for number, text in enumerate(path.read_text().splitlines(), 1):
        if "// LINE: " in text:
            lines[text.split("// LINE: ")[1].strip()] = number
    return lines


ODD_SOURCE = Path(__file__).with_name("oddalloc.c")
FOREIGN_EVAL_SOURCE = Path(__file__).with_name("foreign_eval.c")


def _build_against_python(source: Path, output: Path) -> Path:
    """Compile ``source`` (C against this Python's headers) into the shared library ``output``."""
    subprocess.run(
        ["gcc", "-shared", "-fPIC", "-O0", "-Wall", "-Wextra", f"-I{sysconfig.get_paths()['include']}", "-o",
         str(output), str(source)],
        check=True,
    )
    return output


def build_odd_allocator(target_dir: Path) -> Path:
    """Compile the 8-bytes-off RAW-domain allocator (against this Python's headers) into ``target_dir``."""
    return _build_against_python(ODD_SOURCE, target_dir / "liboddalloc.so")


def build_foreign_evaluator(target_dir: Path) -> Path:
    """Compile another tool's PEP 523 evaluation function (against this Python's headers) into ``target_dir``."""
    return _build_against_python(FOREIGN_EVAL_SOURCE, target_dir / "libforeigneval.so")


EMBED_SOURCE = Path(__file__).with_name("embed.c")


def build_embedding_program(target_dir: Path) -> Path:
    """Compile a non-PIE program that embeds this Python and takes malloc's address (see embed.c)."""
    output = target_dir / "embedpy"
    config = Path(sysconfig.get_config_var("BINDIR")) / f"python{sysconfig.get_python_version()}-config"
    flags = subprocess.run([str(config), "--cflags", "--embed", "--ldflags"], check=True, capture_output=True,
                           text=True).stdout.split()
    libdir = sysconfig.get_config_var("LIBDIR")
    subprocess.run(["gcc", "-no-pie", "-fno-pie", "-O0", "-o", str(output), str(EMBED_SOURCE), *flags,
                    f"-Wl,-rpath,{libdir}"], check=True)
    return output


RUST_CRATE = Path(__file__).with_name("rustalloc")


def build_rust(target_dir: Path, mangling: str = "legacy") -> Path:
    """Build the Rust test cdylib (release, with debug info) with ``mangling`` (legacy or v0) symbols."""
    env = {**os.environ, "CARGO_TERM_COLOR": "never"}
    if mangling != "legacy":  # legacy is stable Rust's default, and naming it needs -Z unstable-options
        env["RUSTFLAGS"] = f"-C symbol-mangling-version={mangling}"
    subprocess.run(["cargo", "build", "--release", "--offline", "--quiet", "--manifest-path",
                    str(RUST_CRATE / "Cargo.toml"), "--target-dir", str(target_dir)], check=True, env=env)
    return target_dir / "release" / "librustalloc.so"
