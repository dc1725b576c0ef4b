# The seam between native/elf_dwarf.h and Python: declarations only.
from libc.stdint cimport int64_t, uint64_t
from libcpp cimport bool
from libcpp.string cimport string
from libcpp.vector cimport vector

cdef extern from "elf_dwarf.h" namespace "memprof":
    cdef struct LineRow:
        uint64_t address
        uint64_t order
        uint64_t file
        int64_t line

    cdef struct DwarfFrame:
        string name
        bool linkage
        bool has_file
        string file
        int64_t line

    cdef cppclass ElfObject:
        ElfObject(const string& path) except +
        bool ok()
        const string& problem()
        int open_errno()
        const string& build_id()
        const string* function_at(uint64_t vaddr)
        bool has_dwarf() except +
        bool frames(uint64_t vaddr, vector[DwarfFrame]* out) except +
        bool all_line_rows(vector[vector[LineRow]]* out) except +

    size_t replaced_utf8_length(const string& value)
