"""The former pure-Python ELF and DWARF reader (pyelftools), kept as the tests' reference.

pytest_memprof.symbols read objects this way until the reader moved to C++ (native/elf_dwarf.h);
tests/test_elf_dwarf.py checks that the C++ reader gives exactly these answers. ``oracle_frames``
is what ``Symbolizer.locate`` built from them: (name, file, line) per frame, outermost first.
"""

from __future__ import annotations

import bisect
import os
import stat
import struct
from typing import Any

from pytest_memprof.model import Frame
from pytest_memprof.symbols import demangle

_STT_FUNC = 2
_STT_GNU_IFUNC = 10


# ---- one ELF object -----------------------------------------------------------------------------


class _ElfObject:
    """The symbol table and, lazily, the DWARF of one shared object or executable."""

    def __init__(self, path: str) -> None:
        from elftools.elf.elffile import ELFFile

        self.path = path
        # A capture is untrusted: a path naming a FIFO or a device must not hang or flood the report.
        if not stat.S_ISREG(os.stat(path).st_mode):
            raise ValueError("not a regular file")
        self._file = open(path, "rb")
        try:
            self._elf = ELFFile(self._file)
            if self._elf.elfclass != 64 or not self._elf.little_endian:
                raise ValueError("only 64-bit little-endian objects are read")
            self.build_id = self._read_build_id()
            self._starts, self._ends, self._names = self._read_functions()
        except Exception:
            self._file.close()
            raise
        self._dwarf: _Dwarf | bool | None = None

    def _read_build_id(self) -> str:
        for section in self._elf.iter_sections():
            if section["sh_type"] == "SHT_NOTE":
                for note in section.iter_notes():
                    if note["n_type"] == "NT_GNU_BUILD_ID":
                        return str(note["n_desc"])
        return ""

    def _read_functions(self) -> tuple[list[int], list[int], list[str]]:
        rows: dict[int, tuple[int, str]] = {}
        for section_name in (".symtab", ".dynsym"):
            section = self._elf.get_section_by_name(section_name)
            if section is None or section["sh_entsize"] != 24:
                continue
            strings = self._elf.get_section(section["sh_link"]).data()
            for name_offset, info, _, shndx, value, size in struct.iter_unpack("<IBBHQQ", section.data()):
                if (info & 0xF) not in (_STT_FUNC, _STT_GNU_IFUNC) or value == 0 or shndx == 0:
                    continue
                end = strings.find(b"\0", name_offset)
                name = strings[name_offset:end].decode(errors="replace")
                known = rows.get(value)
                # Aliases share an address: keep the sized one, then the shorter (public) name.
                if known is None or (known[0] == 0 and size) or (known[0] == size and len(name) < len(known[1])):
                    rows[value] = (size, name)
            if rows:
                break  # .symtab holds everything .dynsym does
        starts = sorted(rows)
        ends = [start + (rows[start][0] or 1) for start in starts]
        for index, start in enumerate(starts):
            if rows[start][0] == 0 and index + 1 < len(starts):
                ends[index] = starts[index + 1]  # unsized: runs to the next symbol
        return starts, ends, [rows[start][1] for start in starts]

    def function_at(self, vaddr: int) -> str:
        """The (mangled) symbol containing ``vaddr``, or ""."""
        index = bisect.bisect_right(self._starts, vaddr) - 1
        if index >= 0 and vaddr < self._ends[index]:
            return self._names[index]
        return ""

    def dwarf(self) -> _Dwarf | None:
        """The object's DWARF reader, or None if it has no debug information."""
        if self._dwarf is None:
            try:
                self._dwarf = _Dwarf(self._elf) if self._elf.has_dwarf_info() and \
                    self._elf.get_section_by_name(".debug_info") is not None else False
            except Exception:  # malformed debug info: names from the symbol table only
                self._dwarf = False
        return self._dwarf or None


# ---- DWARF ------------------------------------------------------------------------------------


class _Dwarf:
    """Line tables and inlined-call chains of one object, per compile unit, cached."""

    def __init__(self, elf: Any) -> None:
        self.info = elf.get_dwarf_info()
        self._aranges = self.info.get_aranges()
        self._cu_ranges: list[tuple[int, int, int]] | None = None
        self._lines: dict[int, tuple[list[tuple[int, int]], list[tuple[int, int, bool]], Any]] = {}
        self._functions: dict[int, tuple[list[int], list[tuple[int, int, Any]]]] = {}

    # Compile units.
    def cu_at(self, vaddr: int) -> Any:
        offset = None
        if self._aranges is not None:
            try:
                offset = self._aranges.cu_offset_at_addr(vaddr)
            except Exception:
                offset = None
        if offset is None:
            offset = self._cu_from_ranges(vaddr)
        return None if offset is None else self.info.get_CU_at(offset)

    def _cu_from_ranges(self, vaddr: int) -> int | None:
        if self._cu_ranges is None:
            self._cu_ranges = []
            for cu in self.info.iter_CUs():
                for low, high in self.ranges(cu.get_top_DIE(), cu):
                    self._cu_ranges.append((low, high, cu.cu_offset))
        for low, high, offset in self._cu_ranges:
            if low <= vaddr < high:
                return offset
        return None

    def ranges(self, die: Any, cu: Any) -> list[tuple[int, int]]:
        """The [low, high) address ranges of a DIE (low/high pc or a range list)."""
        attributes = die.attributes
        if "DW_AT_low_pc" in attributes and "DW_AT_high_pc" in attributes:
            low = attributes["DW_AT_low_pc"].value
            high = attributes["DW_AT_high_pc"]
            # DWARF 4+: a constant-class high_pc is a length.
            end = high.value if high.form == "DW_FORM_addr" else low + high.value
            return [(low, end)]
        if "DW_AT_ranges" in attributes:
            lists = self.info.range_lists()
            if lists is None:
                return []
            top = cu.get_top_DIE()
            base = top.attributes["DW_AT_low_pc"].value if "DW_AT_low_pc" in top.attributes else 0
            out = []
            for entry in lists.get_range_list_at_offset(attributes["DW_AT_ranges"].value, cu=cu):
                if hasattr(entry, "base_address"):
                    base = entry.base_address
                elif getattr(entry, "is_absolute", False):
                    out.append((entry.begin_offset, entry.end_offset))
                else:
                    out.append((base + entry.begin_offset, base + entry.end_offset))
            return out
        return []

    def _contains(self, die: Any, cu: Any, vaddr: int) -> bool:
        return any(low <= vaddr < high for low, high in self.ranges(die, cu))

    # Line table.
    def _table(self, cu: Any) -> tuple[list[tuple[int, int]], list[tuple[int, int, bool]], Any]:
        cached = self._lines.get(cu.cu_offset)
        if cached is None:
            program = self.info.line_program_for_CU(cu)
            try:
                rows = line_rows(program) if program is not None else []
            except Exception:  # malformed line program: frames keep their names, without lines
                rows = []
            rows.sort()
            keys = [(address, order) for address, order, _, _ in rows]
            values = [(file, line, order == 0) for _, order, file, line in rows]
            cached = (keys, values, program)
            self._lines[cu.cu_offset] = cached
        return cached

    def line_at(self, cu: Any, vaddr: int) -> tuple[str, int] | None:
        keys, values, program = self._table(cu)
        index = bisect.bisect_right(keys, (vaddr, 2)) - 1
        if index < 0 or values[index][2]:
            return None
        file, line, _ = values[index]
        return self.file_name(cu, program, file), line

    def file_name(self, cu: Any, program: Any, index: int) -> str:
        if program is None:
            return "?"
        version = program["version"]
        entries = program["file_entry"]
        position = index if version >= 5 else index - 1
        if not 0 <= position < len(entries):
            return "?"
        entry = entries[position]
        name = _text(entry.name)
        if os.path.isabs(name):
            return name
        directories = program["include_directory"]
        directory_index = entry.dir_index
        top = cu.get_top_DIE()
        comp_dir = _text(top.attributes["DW_AT_comp_dir"].value) if "DW_AT_comp_dir" in top.attributes else ""
        if version >= 5:
            directory = _text(directories[directory_index]) if directory_index < len(directories) else ""
        else:
            directory = comp_dir if directory_index == 0 else _text(directories[directory_index - 1]) \
                if directory_index - 1 < len(directories) else ""
        if directory and not os.path.isabs(directory) and comp_dir:
            directory = os.path.join(comp_dir, directory)
        return os.path.normpath(os.path.join(directory, name)) if directory else name

    # Inlined calls.
    def inline_chain(self, cu: Any, vaddr: int) -> list[Any]:
        """The subprogram containing ``vaddr`` and the inlined subroutines inside it, outermost first."""
        function = self._function_at(cu, vaddr)
        if function is None:
            return []
        chain = [function]
        scope = function
        while True:
            for child in scope.iter_children():
                tag = child.tag
                if tag in ("DW_TAG_subprogram", "DW_TAG_inlined_subroutine", "DW_TAG_lexical_block"):
                    if self._contains(child, cu, vaddr):
                        if tag != "DW_TAG_lexical_block":
                            chain.append(child)
                        scope = child
                        break
            else:
                return chain

    def _function_at(self, cu: Any, vaddr: int) -> Any:
        # A report asks for many call sites in the same few units: each unit's functions are
        # indexed once, not looked for by walking its DIEs at every call site.
        index = self._functions.get(cu.cu_offset)
        if index is None:
            spans: list[tuple[int, int, Any]] = []
            self._collect_functions(cu.get_top_DIE(), cu, spans, 0)
            spans.sort(key=lambda span: span[0])
            index = ([low for low, _, _ in spans], spans)
            self._functions[cu.cu_offset] = index
        lows, spans = index
        position = bisect.bisect_right(lows, vaddr) - 1
        if position >= 0 and vaddr < spans[position][1]:
            return spans[position][2]
        # Overlapping spans (unusual, but DWARF does not forbid them): look at every one.
        return next((die for low, high, die in spans if low <= vaddr < high), None)

    def _collect_functions(self, scope: Any, cu: Any, spans: list[tuple[int, int, Any]], depth: int) -> None:
        for child in scope.iter_children():
            if child.tag == "DW_TAG_subprogram":
                spans.extend((low, high, child) for low, high in self.ranges(child, cu) if low < high)
            elif child.tag in ("DW_TAG_namespace", "DW_TAG_class_type", "DW_TAG_structure_type") and depth < 64:
                # C++ nests some out-of-line definitions (anonymous namespaces, members) here.
                self._collect_functions(child, cu, spans, depth + 1)

    def die_name(self, die: Any) -> str:
        """A DIE's linkage name (demangled) or plain name, following abstract origins and specifications."""
        for _ in range(8):
            attributes = die.attributes
            for key in ("DW_AT_linkage_name", "DW_AT_MIPS_linkage_name"):
                if key in attributes:
                    return demangle(_text(attributes[key].value))
            if "DW_AT_name" in attributes:
                return _text(attributes["DW_AT_name"].value)
            for key in ("DW_AT_abstract_origin", "DW_AT_specification"):
                if key in attributes:
                    die = die.get_DIE_from_attribute(key)
                    break
            else:
                return ""
        return ""


def line_rows(program: Any) -> list[tuple[int, int, int, int]]:
    """The rows of a line program as (address, 0 for an end of sequence else 1, file, line).

    Decoded here rather than by pyelftools' ``get_entries``, which builds an object and a copy of
    the state per opcode: that was most of a native report's time on libpython (ceval.c alone has
    tens of thousands of rows). pyelftools still reads the header (file and directory tables).
    """
    try:
        return _decode_line_rows(program)
    except _UseElftools:
        pass
    rows = []
    for entry in program.get_entries():
        state = entry.state
        if state is not None:
            rows.append((state.address, 0 if state.end_sequence else 1, state.file, state.line))
    return rows


class _UseElftools(Exception):
    """A line program this decoder leaves to pyelftools (DW_LNE_define_file, pre-DWARF-5 only)."""


def _decode_line_rows(program: Any) -> list[tuple[int, int, int, int]]:
    header = program.header
    stream = program.stream
    stream.seek(program.program_start_offset)
    data = stream.read(program.program_end_offset - program.program_start_offset)
    end = len(data)
    opcode_base = header["opcode_base"]
    line_base = header["line_base"]
    line_range = header["line_range"]
    if line_range == 0 or opcode_base == 0:
        raise ValueError("line program header with a zero line_range or opcode_base")
    min_length = header["minimum_instruction_length"]
    max_ops = header.get("maximum_operations_per_instruction", 1) or 1
    argument_counts = list(header["standard_opcode_lengths"])
    # Special opcodes precomputed: (operation advance, line advance) per opcode.
    special = [((op - opcode_base) // line_range, line_base + (op - opcode_base) % line_range)
               if op >= opcode_base else (0, 0) for op in range(256)]
    const_add_ops = (255 - opcode_base) // line_range

    rows: list[tuple[int, int, int, int]] = []
    append = rows.append
    address = op_index = 0
    file = line = 1
    offset = 0
    while offset < end:
        opcode = data[offset]
        offset += 1
        if opcode >= opcode_base:
            advance, line_advance = special[opcode]
            if max_ops == 1:
                address += min_length * advance
            else:
                address, op_index = _advance(address, op_index, advance, min_length, max_ops)
            line += line_advance
            append((address, 1, file, line))
        elif opcode == 0:  # extended: a length, then the sub-opcode and its operands
            length, offset = _uleb(data, offset)
            if length == 0 or offset + length > end:
                raise ValueError("extended line opcode runs past its program")
            extended = data[offset]
            operands = offset + 1
            offset += length
            if extended == 1:  # end_sequence
                append((address, 0, file, line))
                address = op_index = 0
                file = line = 1
            elif extended == 2:  # set_address
                address = int.from_bytes(data[operands:offset], "little")
                op_index = 0
            elif extended == 3:  # define_file: adds to the header's file table
                raise _UseElftools
            # set_discriminator and vendor opcodes change nothing a row holds.
        elif opcode == 1:  # copy
            append((address, 1, file, line))
        elif opcode == 2:  # advance_pc
            advance, offset = _uleb(data, offset)
            address, op_index = _advance(address, op_index, advance, min_length, max_ops)
        elif opcode == 3:  # advance_line
            advance, offset = _sleb(data, offset)
            line += advance
        elif opcode == 4:  # set_file
            file, offset = _uleb(data, offset)
        elif opcode == 8:  # const_add_pc
            address, op_index = _advance(address, op_index, const_add_ops, min_length, max_ops)
        elif opcode == 9:  # fixed_advance_pc: a uhalf, and op_index restarts
            address += int.from_bytes(data[offset:offset + 2], "little")
            offset += 2
            op_index = 0
        else:  # set_column, negate_stmt, basic_block, prologue/epilogue, set_isa, unknown: skip operands
            count = argument_counts[opcode - 1] if opcode - 1 < len(argument_counts) else 0
            for _ in range(count):
                _, offset = _uleb(data, offset)
    if offset > end:
        raise ValueError("line program operand runs past its end")
    return rows


def _advance(address: int, op_index: int, operations: int, min_length: int, max_ops: int) -> tuple[int, int]:
    """Address and op_index after ``operations`` (DWARF 4's VLIW rule; op_index stays 0 elsewhere)."""
    op_index += operations
    return address + min_length * (op_index // max_ops), op_index % max_ops


def _uleb(data: bytes, offset: int) -> tuple[int, int]:
    return _leb128(data, offset, signed=False)


def _sleb(data: bytes, offset: int) -> tuple[int, int]:
    return _leb128(data, offset, signed=True)


def _leb128(data: bytes, offset: int, *, signed: bool) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[offset]  # IndexError at the end of the data: malformed, caught by the caller
        offset += 1
        if shift > 63:
            raise ValueError("LEB128 number longer than 64 bits")
        result |= (byte & 0x7F) << shift
        shift += 7
        if byte < 0x80:
            return (result - (1 << shift) if signed and byte & 0x40 else result), offset


def _text(value: Any) -> str:
    return value.decode(errors="replace") if isinstance(value, bytes) else str(value)


def _dwarf_frames(dwarf: _Dwarf, vaddr: int, function: str, path: str) -> tuple[Frame, ...]:
    cu = dwarf.cu_at(vaddr)
    if cu is None:
        return ()
    line = dwarf.line_at(cu, vaddr)
    chain = dwarf.inline_chain(cu, vaddr)
    _, _, program = dwarf._table(cu)
    frames = []
    for index, die in enumerate(chain):
        name = dwarf.die_name(die)
        if index == 0 and function:
            name = function  # the symbol table names the physical function exactly
        if index + 1 < len(chain):
            callee = chain[index + 1].attributes
            file = dwarf.file_name(cu, program, callee["DW_AT_call_file"].value) if "DW_AT_call_file" in callee \
                else path
            number = callee["DW_AT_call_line"].value if "DW_AT_call_line" in callee else 0
        else:
            file, number = line if line else (path, 0)
        frames.append(Frame(name or function or "??", file, number, native=True))
    if not frames and line:
        frames.append(Frame(function or "??", line[0], line[1], native=True))
    return tuple(frames)




def oracle_frames(path: str, vaddr: int) -> tuple[str, tuple[tuple[str, str, int], ...]] | None:
    """(symbol-table name, frames) as the former reader gave them for ``vaddr`` in ``path``; None if unreadable."""
    try:
        elf = _ElfObject(path)
    except Exception:
        return None
    return _oracle_frames(elf, vaddr, path)


def _oracle_frames(elf: _ElfObject, vaddr: int, path: str) -> tuple[str, tuple[tuple[str, str, int], ...]]:
    function = demangle(elf.function_at(vaddr))
    base = os.path.basename(path)
    frames: tuple[Frame, ...] = (Frame(function or f"{base}+0x{vaddr:x}", path, 0, native=True),)
    dwarf = elf.dwarf()
    if dwarf is not None:
        try:
            frames = _dwarf_frames(dwarf, vaddr, function, path) or frames
        except Exception:
            pass
    return function, tuple((frame.function, frame.file, frame.line) for frame in frames)
