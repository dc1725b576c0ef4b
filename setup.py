"""Build of the native core: C++ sources in native/, bound by Cython modules in pytest_memprof/."""

import shlex
import subprocess
import sysconfig
import tempfile
from pathlib import Path

from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

NATIVE = Path("native")
LZ4 = [str(NATIVE / "third_party" / "lz4" / name) for name in ("lz4.c", "lz4frame.c", "lz4hc.c", "xxhash.c")]
COMMON_ARGS = ["-O2", "-fvisibility=hidden", "-Wall", "-Wextra", "-Wno-missing-field-initializers"]
CXX_ARGS = ["-std=c++17", *COMMON_ARGS]


def has_zlib() -> bool:
    """Whether the C compiler finds zlib's header (zlib1g-dev, which Debian's libpython3-dev pulls in)."""
    compiler = shlex.split(sysconfig.get_config_var("CC") or "cc") or ["cc"]
    try:
        probe = subprocess.run([*compiler, "-E", "-x", "c", "-", "-o", "/dev/null"], input=b"#include <zlib.h>\n",
                               capture_output=True, timeout=60)
    except (OSError, subprocess.SubprocessError):
        return False
    return probe.returncode == 0


def extension(name: str, pyx: str, sources: list, libraries: tuple = (), macros: tuple = (),
              link_args: tuple = ()) -> Extension:
    """One extension module: a small .pyx plus the C++ it binds."""
    return Extension(
        name,
        sources=[pyx, *[str(NATIVE / s) for s in sources]],
        include_dirs=[str(NATIVE), str(NATIVE / "third_party" / "lz4")],
        language="c++",
        extra_compile_args=CXX_ARGS,
        libraries=["memprof_lz4", "dl", "pthread", *libraries],
        define_macros=list(macros),
        extra_link_args=list(link_args),
    )


# zlib inflates compressed debug sections (gcc -gz); without its header they read as no DWARF
# (symbol names still come), rather than the build failing on a machine that lacks it.
ZLIB = has_zlib()


def links_cxx_runtime_statically(flags: tuple) -> bool:
    """Whether the C++ compiler links a shared object with ``flags``: Debian's g++ ships libstdc++.a,
    Fedora's only with libstdc++-static."""
    compiler = shlex.split(sysconfig.get_config_var("CXX") or "c++") or ["c++"]
    with tempfile.TemporaryDirectory() as folder:
        source = Path(folder) / "probe.cc"
        source.write_text("#include <string>\nstd::string probe() { return std::string(40, 'x'); }\n")
        try:
            probe = subprocess.run([*compiler, "-shared", "-fPIC", *flags, str(source), "-o",
                                    str(Path(folder) / "probe.so")], capture_output=True, timeout=120)
        except (OSError, subprocess.SubprocessError):
            return False
    return probe.returncode == 0


# The tracker's share of the C++ runtime linked in, and kept to itself: loading libstdc++.so and
# binding its symbols was a millisecond of every `memprof run`'s start-up, for the few parts the
# tracker uses (strings, vectors, threads). The reader, for reports, keeps the shared one; so does
# the tracker where the compiler has no static runtime to link.
STATIC_CXX_RUNTIME = ("-static-libstdc++", "-static-libgcc", "-Wl,--exclude-libs,ALL")
TRACKER_LINK_ARGS = STATIC_CXX_RUNTIME if links_cxx_runtime_statically(STATIC_CXX_RUNTIME) else ()


class BuildExtWithLz4(build_ext):
    """build_ext that first builds the lz4 static library (plain build_ext and editable installs skip it)."""

    def run(self) -> None:
        self.run_command("build_clib")
        super().run()


setup(
    cmdclass={"build_ext": BuildExtWithLz4},
    # lz4 is C: built once as a static library with C flags, linked into both modules.
    libraries=[("memprof_lz4", {"sources": LZ4, "cflags": ["-O2", "-fPIC", "-fvisibility=hidden"]})],
    ext_modules=cythonize(
        [
            extension(
                "pytest_memprof._tracker",
                "pytest_memprof/_tracker.pyx",
                ["hooks.cc", "elf_patch.cc", "recorder.cc", "tracker_sink.cc", "pystack.cc", "pyframes.cc",
                 "nativestack.cc", "fast_unwind.cc", "tracker.cc", "arena_cache.cc", "objects.cc"],
                link_args=TRACKER_LINK_ARGS,
            ),
            extension("pytest_memprof._reader", "pytest_memprof/_reader.pyx",
                      ["reader.cc", "decoder.cc", "dumper.cc", "recorder.cc", "capture_writer.cc", "hybrid_locate.cc",
                       "elf_dwarf.cc"],
                      libraries=("z",) if ZLIB else (), macros=() if ZLIB else (("MEMPROF_NO_ZLIB", "1"),)),
        ],
        include_path=[str(NATIVE)],
        compiler_directives={"language_level": "3", "embedsignature": True},
    ),
)
