"""The C++ ELF/DWARF reader (native/elf_dwarf.h) against the former pyelftools reader (tests/dwarf_oracle.py):
the same symbols, build IDs, line rows and frames on objects compiled several ways and on the interpreter's
own, and no crash, hang or exception beyond "no DWARF" on malformed objects."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile
from hypothesis import given
from hypothesis import strategies as st
from pytest_memprof._reader import ElfObject, decoded_length

from pytest_memprof.symbols import Symbolizer
from tests import dwarf_oracle
from tests.native_lib import CPP_SOURCE

BUILDS = {
    "O0-g": ["-O0", "-g"],
    "O2-g-inlined": ["-O2", "-g"],
    "O3-dwarf4": ["-O3", "-gdwarf-4"],
    "O2-dwarf5": ["-O2", "-gdwarf-5"],
    "O2-dwarf2": ["-O2", "-gdwarf-2"],
    "O2-gz-compressed": ["-O2", "-g", "-gz"],
    # A skeleton unit: range lists by address index (.debug_rnglists, .debug_addr); the DIEs in a .dwo.
    "O2-split-dwarf": ["-O2", "-g", "-gsplit-dwarf"],
}


def build(directory: Path, flags: list[str], source: Path = CPP_SOURCE) -> Path:
    library = directory / "libstacks.so"
    subprocess.run(["g++", "-shared", "-fPIC", *flags, "-o", str(library), str(source), "-lpthread"], check=True,
                   cwd=directory)
    return library


def oracle_rows(path: Path) -> list[list[tuple[int, int, int, int]]]:
    """Each unit's line rows as the former reader decoded them (units without a line program left out)."""
    out = []
    with open(path, "rb") as file:
        info = ELFFile(file).get_dwarf_info()
        for cu in info.iter_CUs():
            program = info.line_program_for_CU(cu)
            if program is not None:
                out.append(dwarf_oracle.line_rows(program))
    return out


def sample_addresses(path: Path, count: int, seed: int = 0) -> list[int]:
    """Line-table addresses (and the bytes after them) and addresses inside function symbols."""
    elf = dwarf_oracle._ElfObject(str(path))
    rows = [row[0] for unit in oracle_rows(path) for row in unit]
    rng = random.Random(seed)
    addresses = set(rng.sample(rows, min(count, len(rows))))
    addresses |= {address + 1 for address in list(addresses)[: count // 4]}
    for index in rng.sample(range(len(elf._starts)), min(count, len(elf._starts))):
        start, end = elf._starts[index], elf._ends[index]
        addresses.add(start + rng.randrange(max(end - start, 1)))
    return sorted(addresses)


def assert_same_as_oracle(path: Path, addresses: list[int], rows: bool = True) -> int:
    ours = ElfObject(str(path))
    theirs = dwarf_oracle._ElfObject(str(path))
    assert ours.build_id == theirs.build_id
    near_starts = [vaddr for start in theirs._starts[:: max(1, len(theirs._starts) // 2000)]
                   for vaddr in (start, start + 1, start - 1)]
    assert ours.functions_at(near_starts) == [theirs.function_at(vaddr) for vaddr in near_starts]
    symbolizer = Symbolizer()
    with_lines = 0
    for vaddr in addresses:
        expected = dwarf_oracle._oracle_frames(theirs, vaddr, str(path))
        location = symbolizer.locate(str(path), vaddr)
        got = (location.function, tuple((frame.function, frame.file, frame.line) for frame in location.frames))
        assert got == expected, hex(vaddr)
        with_lines += any(line for _, _, line in got[1])
    if rows:
        assert ours.line_rows() == oracle_rows(path)
    return with_lines


@pytest.mark.parametrize("flags", BUILDS.values(), ids=BUILDS.keys())
def test_the_test_library_gives_the_oracles_symbols_lines_and_inline_chains(tmp_path, flags):
    library = build(tmp_path, flags)
    if "-gz" in flags:
        with open(library, "rb") as file:
            assert ELFFile(file).get_section_by_name(".debug_info").compressed  # the case this build is for
    assert ElfObject(str(library)).has_dwarf
    addresses = sample_addresses(library, 400)
    assert assert_same_as_oracle(library, addresses) > len(addresses) // 4  # real lines, not all "no line"


def test_inlined_frames_are_read_where_the_optimiser_inlined(tmp_path):
    library = build(tmp_path, ["-O2", "-g"])
    ours = ElfObject(str(library))
    chains = [ours.frames(vaddr) for vaddr in sample_addresses(library, 400)]
    assert any(chain and len(chain) > 1 for chain in chains)  # the -O2 build has inline chains


def test_a_non_utf8_source_path_comes_out_as_the_oracle_decodes_it(tmp_path):
    directory = tmp_path / os.fsdecode(b"caf\xe9-\xff")
    directory.mkdir()
    source = directory / "stacks.cc"
    source.write_bytes(CPP_SOURCE.read_bytes())
    library = build(directory, ["-O2", "-g"], source)
    ours = ElfObject(str(library))
    files = {frame[2] for vaddr in sample_addresses(library, 200) for frame in ours.frames(vaddr) or [] if frame[2]}
    assert any("\ufffd" in name for name in files)
    assert_same_as_oracle(library, sample_addresses(library, 200))


def interpreter_objects() -> list[Path]:
    """libpython (or the executable) and two stdlib extension modules, those with debug information."""
    import _ctypes
    import _datetime

    objects = []
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1]
        if "/libpython" in path and path.startswith("/"):
            objects.append(Path(path))
            break
    else:
        objects.append(Path(os.path.realpath(sys.executable)))
    objects += [Path(module.__file__) for module in (_ctypes, _datetime) if getattr(module, "__file__", None)]
    return objects


@pytest.mark.parametrize("path", interpreter_objects(), ids=lambda path: path.name)
def test_the_interpreters_objects_give_the_oracles_frames(path):
    if not ElfObject(str(path)).has_dwarf:
        with open(path, "rb") as file:
            assert not ELFFile(file).has_dwarf_info(strict=True), f"{path} has DWARF we did not read"
        pytest.skip(f"{path} has no debug information")
    big = path.stat().st_size > 5 * 2**20
    # All line rows of every unit on the small objects; on libpython, a sample of addresses only
    # (the oracle's row decoding of all its units is minutes), rows checked by test_symbols' units.
    assert_same_as_oracle(path, sample_addresses(path, 150 if big else 300, seed=1), rows=not big)


# ---- malformed input -----------------------------------------------------------------------------

# Run in a child: a crash or a hang there fails the test instead of taking pytest with it.
_PROBE = r"""
import json, sys
from pytest_memprof._reader import ElfObject
addresses = json.loads(sys.argv[1])
outcomes = []
for path in sys.argv[2:]:
    try:
        elf = ElfObject(path)
    except ValueError as error:
        outcomes.append("refused")
        continue
    names = elf.functions_at(addresses)
    frames = [elf.frames(a) for a in addresses] if elf.has_dwarf else []
    rows = elf.line_rows()
    assert all(f is None or isinstance(f, list) for f in frames)
    outcomes.append("read" if elf.has_dwarf and rows else "no dwarf")
print(json.dumps(outcomes))
"""


def probe(paths: list[Path], addresses: list[int]) -> list[str]:
    result = subprocess.run([sys.executable, "-c", _PROBE, json.dumps(addresses), *map(str, paths)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    return json.loads(result.stdout)


def debug_sections(data: bytes) -> list[tuple[str, int, int]]:
    import io

    elf = ELFFile(io.BytesIO(data))
    return [(s.name, s["sh_offset"], s["sh_size"]) for s in elf.iter_sections()
            if s.name.startswith((".debug", ".symtab", ".strtab", ".dynsym", ".note"))]


@pytest.mark.parametrize("flags", [["-O2", "-g"], ["-O2", "-gdwarf-4"], ["-O2", "-g", "-gz"]],
                         ids=["default", "dwarf4", "gz"])
def test_truncated_and_scrambled_objects_read_as_no_dwarf_never_a_crash(tmp_path, flags):
    library = build(tmp_path, flags)
    data = library.read_bytes()
    addresses = sample_addresses(library, 60)
    rng = random.Random(7)
    cases = []
    # Truncated: at many points, and inside every debug section.
    cuts = {0, 1, 16, 63, 64, len(data) - 1} | {rng.randrange(len(data)) for _ in range(25)}
    cuts |= {offset + size // 2 for _, offset, size in debug_sections(data)}
    for cut in sorted(cuts):
        cases.append(data[:cut])
    # Random bytes over part of each section (and over the section table).
    for _, offset, size in debug_sections(data):
        for _ in range(3):
            scrambled = bytearray(data)
            start = offset + rng.randrange(max(size, 1))
            length = min(rng.choice([1, 4, 16, 256, 4096]), len(data) - start)
            scrambled[start:start + length] = rng.randbytes(length)
            cases.append(bytes(scrambled))
    header = bytearray(data)
    shoff = int.from_bytes(data[0x28:0x30], "little")
    header[shoff:shoff + 512] = rng.randbytes(512)
    cases.append(bytes(header))
    paths = []
    for index, case in enumerate(cases):
        path = tmp_path / f"case{index}.so"
        path.write_bytes(case)
        paths.append(path)
    outcomes = probe(paths, addresses)
    assert len(outcomes) == len(cases)
    assert outcomes[0] == "refused"  # the empty file
    assert "read" in outcomes  # some scrambling leaves the DWARF readable: the probe did read


def test_a_zero_length_file_a_directory_and_a_device_are_refused_cleanly(tmp_path):
    empty = tmp_path / "empty.so"
    empty.write_bytes(b"")
    for path in (empty, tmp_path, Path("/dev/null"), Path(__file__)):
        with pytest.raises(ValueError):
            ElfObject(str(path))
    with pytest.raises(FileNotFoundError):
        ElfObject(str(tmp_path / "missing.so"))


def test_a_compressed_section_claiming_a_huge_size_is_not_allocated(tmp_path):
    library = build(tmp_path, ["-O2", "-g", "-gz"])
    data = bytearray(library.read_bytes())
    import io

    section = ELFFile(io.BytesIO(bytes(data))).get_section_by_name(".debug_info")
    offset = section["sh_offset"]
    # Elf64_Chdr.ch_size: 2 GiB - 1, far beyond what zlib can make of this section.
    data[offset + 8:offset + 16] = (2**31 - 1).to_bytes(8, "little")
    path = tmp_path / "huge.so"
    path.write_bytes(bytes(data))
    ours = ElfObject(str(path))
    assert not ours.has_dwarf
    start = dwarf_oracle._ElfObject(str(library))._starts[-1]
    assert ours.functions_at([start]) == ElfObject(str(library)).functions_at([start]) != [""]  # symbols still read
    result = subprocess.run([sys.executable, "-c", "import resource, sys; from pytest_memprof._reader import "
                             "ElfObject; resource.setrlimit(resource.RLIMIT_AS, (1 << 30, 1 << 30)); "
                             "print(ElfObject(sys.argv[1]).has_dwarf)", str(path)],
                            capture_output=True, text=True, timeout=60)
    assert result.stdout.strip() == "False", result.stderr[-2000:]


@given(st.binary(max_size=40))
def test_the_alias_rule_counts_code_points_as_python_decodes_them(value):
    assert decoded_length(value) == len(value.decode(errors="replace"))


def test_of_two_sections_with_one_name_the_last_is_read(tmp_path):
    # objcopy will not add a second .debug_aranges: add it under another name, then rename it in
    # the section-name table. Its address size of 3 makes the address table unreadable.
    library = build(tmp_path, ["-O2", "-g"])
    bad = tmp_path / "aranges.bin"
    bad.write_bytes((16).to_bytes(4, "little") + (2).to_bytes(2, "little") + bytes(4) + bytes([3, 0]) + bytes(4))
    twice = tmp_path / "twice.so"
    subprocess.run(["objcopy", "--add-section", f".debug_arangez={bad}", str(library), str(twice)], check=True)
    data = twice.read_bytes()
    assert data.count(b".debug_arangez\0") == 1
    twice.write_bytes(data.replace(b".debug_arangez\0", b".debug_aranges\0"))
    assert ElfObject(str(library)).has_dwarf
    assert not ElfObject(str(twice)).has_dwarf  # the last one, unreadable: no DWARF, as the former reader
    assert_same_as_oracle(twice, sample_addresses(library, 100), rows=False)


def test_a_line_program_defining_a_file_decodes_as_the_oracle(tmp_path):
    # gcc never emits DW_LNE_define_file: one set_address (00 09 02 + 8 bytes) of a DWARF 4 program
    # becomes define_file "abcd" (00 09 03 'abcd' 0, three zero ULEB128s), the same 11 bytes.
    library = build(tmp_path, ["-O2", "-gdwarf-4"])
    data = bytearray(library.read_bytes())
    with open(library, "rb") as file:
        line = ELFFile(file).get_section_by_name(".debug_line")
        start, size = line["sh_offset"], line["sh_size"]
    at = data.find(b"\x00\x09\x02", start, start + size)
    assert at > 0
    data[at:at + 11] = b"\x00\x09\x03abcd\x00\x00\x00\x00"
    patched = tmp_path / "defines.so"
    patched.write_bytes(bytes(data))
    assert ElfObject(str(patched)).line_rows() == oracle_rows(patched)
    assert_same_as_oracle(patched, sample_addresses(library, 200))


def test_gnu_zdebug_sections_are_no_dwarf_as_before(tmp_path):
    # -gz=zlib-gnu (the obsolete .zdebug_* naming): the former reader looked for .debug_info by
    # name and so read no DWARF there; the symbols still name the functions.
    library = build(tmp_path, ["-O2", "-g", "-gz=zlib-gnu"])
    with open(library, "rb") as file:
        if ELFFile(file).get_section_by_name(".zdebug_info") is None:
            # Newer binutils (Debian sid's) accept the flag but write SHF_COMPRESSED sections.
            pytest.skip("this toolchain's -gz=zlib-gnu makes no .zdebug_* sections")
    assert not ElfObject(str(library)).has_dwarf
    (tmp_path / "plain").mkdir()
    plain = build(tmp_path / "plain", ["-O2", "-g"])  # the same code: its line rows give addresses to ask
    assert_same_as_oracle(library, sample_addresses(plain, 100), rows=False)
