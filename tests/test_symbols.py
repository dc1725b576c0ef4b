"""The reference line-program decoder (tests/dwarf_oracle.py) against pyelftools' own, on real objects and
malformed input."""

from __future__ import annotations

import io
import subprocess
import sys
from pathlib import Path

import pytest
from elftools.elf.elffile import ELFFile

from tests.dwarf_oracle import line_rows
from tests.native_lib import CPP_SOURCE


def elftools_rows(program) -> list[tuple[int, int, int, int]]:
    """The rows as pyelftools decodes them (the reference)."""
    return [(e.state.address, 0 if e.state.end_sequence else 1, e.state.file, e.state.line)
            for e in program.get_entries() if e.state is not None]


def programs(path: Path, only=None):
    """Each compile unit's line program in the object at ``path`` (a fresh DWARF reader per call)."""
    with open(path, "rb") as file:
        info = ELFFile(file).get_dwarf_info()
        for cu in info.iter_CUs():
            name = cu.get_top_DIE().attributes["DW_AT_name"].value.decode()
            if only is None or only(name):
                program = info.line_program_for_CU(cu)
                if program is not None:
                    yield name, program


@pytest.mark.parametrize("flags", [["-O0", "-g"], ["-O2", "-g"], ["-O2", "-gdwarf-4"], ["-O3", "-g", "-gcolumn-info"]])
def test_our_decoder_gives_pyelftools_rows_for_a_compiled_library(tmp_path, flags):
    library = tmp_path / "libstacks.so"
    subprocess.run(["g++", "-shared", "-fPIC", *flags, "-o", str(library), str(CPP_SOURCE), "-lpthread"], check=True)
    seen = 0
    for _, program in programs(library):
        ours = line_rows(program)
        assert ours == elftools_rows(program)
        seen += len(ours)
    assert seen > 50  # the library has real line tables, not empty ones


def interpreter_object() -> Path:
    """The object holding the interpreter's code: libpython where it is shared, else the executable."""
    for line in Path("/proc/self/maps").read_text().splitlines():
        path = line.split(maxsplit=5)[-1]
        if "/libpython" in path and path.startswith("/"):
            return Path(path)
    return Path(sys.executable)


def test_our_decoder_gives_pyelftools_rows_for_the_interpreter():
    path = interpreter_object()
    with open(path, "rb") as file:
        if not ELFFile(file).has_dwarf_info():
            pytest.skip(f"{path} has no debug information")
    # ceval and a few small units: the big one is where decoding time went, the others vary the header.
    wanted = ("ceval.c", "listobject.c", "obmalloc.c")
    found = []
    for name, program in programs(path, lambda n: n.endswith(wanted)):
        assert line_rows(program) == elftools_rows(program), name
        found.append(name)
    if not found:
        pytest.skip(f"the debug information of {path} has none of " + ", ".join(wanted))


class _Program:
    """A line program built by hand: the header fields the decoder reads, and its bytes."""

    def __init__(self, body: bytes, **header) -> None:
        self.header = {"opcode_base": 13, "line_base": -5, "line_range": 14, "minimum_instruction_length": 1,
                       "maximum_operations_per_instruction": 1,
                       "standard_opcode_lengths": [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1], **header}
        self.stream = io.BytesIO(b"junk" + body)
        self.program_start_offset = 4
        self.program_end_offset = 4 + len(body)


SET_ADDRESS_0x1000 = bytes([0, 9, 2]) + (0x1000).to_bytes(8, "little")
END_SEQUENCE = bytes([0, 1, 1])


def test_a_hand_written_program_decodes_to_its_rows():
    # set_address 0x1000; advance_line +9; copy; special (+2 address, +1 line); set_file 2;
    # const_add_pc (+17); fixed_advance_pc 0x10; copy; an unknown standard opcode 13 with
    # opcode_base 14 (one operand) skipped; end_sequence.
    body = (SET_ADDRESS_0x1000 + bytes([3, 9, 1]) + bytes([13 + 2 * 14 + 6]) + bytes([4, 2, 8, 9, 0x10, 0, 1])
            + END_SEQUENCE)
    assert line_rows(_Program(body)) == [
        (0x1000, 1, 1, 10), (0x1002, 1, 1, 11), (0x1002 + 17 + 0x10, 1, 2, 11), (0x1002 + 17 + 0x10, 0, 2, 11)]
    with_unknown = SET_ADDRESS_0x1000 + bytes([13, 0x85, 0x01, 1]) + END_SEQUENCE
    lengths = [0, 1, 1, 1, 1, 0, 0, 0, 1, 0, 0, 1, 1]
    assert line_rows(_Program(with_unknown, opcode_base=14, standard_opcode_lengths=lengths)) == [
        (0x1000, 1, 1, 1), (0x1000, 0, 1, 1)]


@pytest.mark.parametrize("body", [
    SET_ADDRESS_0x1000[:-3],  # an extended opcode cut short
    bytes([0, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x80, 0x7F]),  # a length beyond 64 bits
    bytes([2]),  # advance_pc without its operand
    bytes([9, 1]),  # fixed_advance_pc with half its operand
])
def test_a_malformed_program_is_an_error_not_a_crash(body):
    with pytest.raises((ValueError, IndexError)):
        line_rows(_Program(body))


def test_a_hostile_run_of_leb128_bytes_is_cut_at_64_bits():
    # Uncapped, the number would grow over the whole run (quadratic) and end in an IndexError.
    with pytest.raises(ValueError, match="longer than 64 bits"):
        line_rows(_Program(bytes([3]) + b"\xff" * 1000))
