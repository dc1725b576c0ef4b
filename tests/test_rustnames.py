"""Rust symbol names: the legacy and v0 manglings read back, checked against binutils on a real build."""

from __future__ import annotations

import ctypes
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from pytest_memprof import Capture, Tracker
from pytest_memprof.rustnames import demangle_rust
from pytest_memprof.symbols import demangle
from tests.conftest import subprocess_env
from tests.native_lib import RUST_CRATE, build_rust, marked_lines

RUST_SOURCE = RUST_CRATE / "src" / "lib.rs"
LINES = marked_lines(RUST_SOURCE)
CHUNK = 3 << 20
HASH = re.compile(r"::h[0-9a-f]{16}\b")
TIMES = 3


@pytest.mark.parametrize(
    ("mangled", "readable"),
    [
        ("_ZN5alloc3vec12Vec$LT$T$GT$13with_capacity17hdb1678649963e308E", "alloc::vec::Vec<T>::with_capacity"),
        ("_ZN9rustalloc5arena7Builder11grow_buffer17he6a5d26e256b7f99E", "rustalloc::arena::Builder::grow_buffer"),
        (
            "_ZN4core3ptr85drop_in_place$LT$std..rt..lang_start$LT$$LP$$RP$$GT$..$u7b$$u7b$closure$u7d$$u7d$$GT$"
            "17h0123456789abcdefE",
            "core::ptr::drop_in_place<std::rt::lang_start<()>::{{closure}}>",
        ),
        ("_ZN3foo3bar17h0123456789abcdefE.llvm.1234", "foo::bar"),
        ("_RNvCs1234_7mycrate3foo", "mycrate::foo"),
        ("_RNvMNtCs5rxryM5wnfr_9rustalloc5arenaNtB2_7Builder11grow_buffer", "rustalloc::arena::Builder::grow_buffer"),
        (
            "_RNvMs3_NtCslNYArtu3iFV_5alloc7raw_vecINtB5_6RawVecINtNtB7_3vec3VechEE8grow_oneCsjrHSEGnQ3l9_3std",
            "alloc::raw_vec::RawVec<alloc::vec::Vec<u8>>::grow_one",
        ),
        (
            "_RINvNtCsgEmfK2I1SDS_4core6escape14escape_unicodeKja_ECsgY6Mt91CT9J_14rustc_demangle",
            "core::escape::escape_unicode::<10>",
        ),
        (
            "_RNCNCNvNtNtCsjrHSEGnQ3l9_3std3sys9backtrace10__print_fmts_00B9_",
            "std::sys::backtrace::_print_fmt::{closure#1}::{closure#0}",
        ),
    ],
)
def test_rust_names_read_as_in_the_source_without_hashes(mangled, readable):
    assert demangle_rust(mangled) == readable
    assert demangle(mangled) == readable


def test_hashes_are_kept_on_request():
    assert demangle_rust("_ZN3foo3bar17h0123456789abcdefE", hashes=True) == "foo::bar::h0123456789abcdef"
    assert demangle_rust("_RNvCs1234_7mycrate3foo", hashes=True) == "mycrate[3c1c0]::foo"


@pytest.mark.parametrize(
    "name",
    [
        "_ZN4core3ptr13drop_in_placeE",  # no hash: a C++ nested name, for the C++ demangler
        "_ZNK3Foo3barEv",
        "_Z3foov",
        "malloc",
        "_R",
        "_RNvC",
        "_RNvCs1234_7mycrate3fo",
        "_RB_",
        "_RNvB0_3foo",
        "_RNvCs1234_3foo",
        "_RIC3fooKhzz_E",
        "_R" + "I" * 5000 + "C3foo" + "E" * 5000,
        "_ZN3foo$XX$3bar17h0123456789abcdefE",
        "_ZN99foo17h0123456789abcdefE",
    ],
)
def test_what_is_not_a_rust_name_is_none(name):
    assert demangle_rust(name) is None


def test_cpp_names_still_go_to_the_cpp_demangler():
    assert demangle("_ZNK3Foo3barEv") == "Foo::bar() const"
    assert demangle("_ZN4core3ptr13drop_in_placeE") == "core::ptr::drop_in_place"


needs_cargo = pytest.mark.skipif(shutil.which("cargo") is None, reason="cargo (Rust) is not installed here")


@pytest.fixture(scope="module", params=["legacy", "v0"])
def rustlib(request, tmp_path_factory):
    path = build_rust(tmp_path_factory.mktemp(f"rust-{request.param}"), request.param)
    return request.param, path


@needs_cargo
def test_every_rust_symbol_of_a_real_build_reads_as_binutils_reads_it(rustlib):
    if shutil.which("nm") is None or shutil.which("c++filt") is None:
        pytest.skip("binutils (nm, c++filt) are not installed here")
    _, path = rustlib
    symbols = sorted(
        {
            line.split()[-1]
            for line in subprocess.run(
                ["nm", str(path)], capture_output=True, text=True, check=True
            ).stdout.splitlines()
            if line.split()[-1].startswith(("_R", "_ZN"))
        }
    )
    assert len(symbols) > 100
    expected = subprocess.run(
        ["c++filt"], input="\n".join(symbols), capture_output=True, text=True, check=True
    ).stdout.splitlines()
    ours = [demangle_rust(symbol, hashes=True) for symbol in symbols]
    wrong = [
        (symbol, mine, theirs)
        for symbol, mine, theirs in zip(symbols, ours, expected)
        if theirs != symbol and mine != theirs
    ]
    assert not wrong, wrong[:5]
    assert sum(mine is not None for mine in ours) > 100


@needs_cargo
def test_a_rust_cdylib_shows_readable_names_and_its_lines_in_tree_and_flamegraph(tmp_path, rustlib):
    mangling, path = rustlib
    lib = ctypes.CDLL(str(path))
    lib.rustalloc_grow.restype = ctypes.c_size_t
    lib.rustalloc_grow.argtypes = [ctypes.c_size_t, ctypes.c_size_t]
    out = tmp_path / "rust.bin"
    with Tracker(out, native=True):
        assert lib.rustalloc_grow(CHUNK, TIMES) == CHUNK * TIMES
    stacks = [stat for stat in Capture.open(out).leak_stacks() if stat.bytes == CHUNK * TIMES]
    assert len(stacks) == 1, [stat.bytes for stat in Capture.open(out).leak_stacks()][:10]
    frames = stacks[0].frames
    names = [frame.function for frame in frames]
    grow = names.index("rustalloc::arena::Builder::grow_buffer")
    assert (frames[grow].file, frames[grow].line) == (str(RUST_SOURCE), LINES["with_capacity"]), frames[grow]
    entry = names.index("rustalloc_grow")
    assert entry < grow and (frames[entry].file, frames[entry].line) == (str(RUST_SOURCE), LINES["grow_buffer"])
    with_capacity = [name for name in names[grow + 1 :] if name.endswith("::with_capacity")]
    assert with_capacity and with_capacity[0].startswith("alloc::vec::Vec<"), names
    assert not any("$LT$" in name or HASH.search(name) for name in names), names

    env = subprocess_env(COLUMNS="400")
    tree = subprocess.run(
        [sys.executable, "-m", "pytest_memprof", "tree", "--leaks", str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert tree.returncode == 0, tree.stderr
    assert f"rustalloc::arena::Builder::grow_buffer  {RUST_SOURCE}:{LINES['with_capacity']}" in tree.stdout
    assert "alloc::vec::Vec<" in tree.stdout and "$LT$" not in tree.stdout
    html = tmp_path / "flame.html"
    flame = subprocess.run(
        [sys.executable, "-m", "pytest_memprof", "flamegraph", "--leaks", "-o", str(html), str(out)],
        capture_output=True,
        text=True,
        env=env,
        cwd=tmp_path,
    )
    assert flame.returncode == 0, flame.stderr
    page = html.read_text()
    assert "rustalloc::arena::Builder::grow_buffer" in page and str(Path(RUST_SOURCE)) in page
    assert "$LT$" not in page and not HASH.search(page), mangling
