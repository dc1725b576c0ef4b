// Report-time symbolisation of one ELF object: its function symbols, its GNU build ID, and its
// DWARF line tables and inlined-call chains (DWARF 2 to 5).
//
// The object is untrusted input (a capture names it, and it may have been replaced, truncated or
// crafted since): every offset and length is checked against what was read, sizes are capped by
// the file's own size (and zlib's maximum ratio for compressed sections), and a malformed object
// gives "no symbols" or "no DWARF", never a crash, a hang or a huge allocation.
//
// The answers are the ones pytest_memprof's former pyelftools reader gave (tests/dwarf_oracle.py
// keeps it as the tests' reference), down to its tie rules: strings stay bytes here and Python
// decodes them, so that non-UTF-8 names come out exactly as before.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace memprof {

// One row of a line program: (address, 0 for an end of sequence else 1, file index, line).
struct LineRow {
    uint64_t address;
    uint64_t order;
    uint64_t file;
    int64_t line;
};

// One frame of an address (frames come outermost first: the physical function, then the calls
// inlined into it). ``name`` is empty when the DIE has none; ``linkage`` says it is a mangled
// linkage name; ``has_file`` false means "the object's own path".
struct DwarfFrame {
    std::string name;
    bool linkage;
    bool has_file;
    std::string file;
    int64_t line;
};

class Dwarf;

class ElfObject {
  public:
    // Reads the section table, the build ID and the symbol tables; ok() says whether ``path``
    // was a readable 64-bit little-endian ELF file (problem() says why not).
    explicit ElfObject(const std::string& path);
    ~ElfObject();
    ElfObject(const ElfObject&) = delete;
    ElfObject& operator=(const ElfObject&) = delete;

    bool ok() const { return ok_; }
    const std::string& problem() const { return problem_; }
    int open_errno() const { return open_errno_; }  // errno when the file could not be opened, else 0
    const std::string& build_id() const { return build_id_; }  // lowercase hex, "" if none

    // The (mangled) name of the function symbol holding ``vaddr``, nullptr if none.
    const std::string* function_at(uint64_t vaddr) const;

    // Whether the object has DWARF this reader can use (loaded on first call).
    bool has_dwarf();

    // The frames of the call site at ``vaddr``, outermost first; false when the DWARF is
    // malformed on the way (the caller keeps the symbol-table frame), true with no frames when
    // no unit holds the address.
    bool frames(uint64_t vaddr, std::vector<DwarfFrame>* out);

    // Every compile unit's line rows, as decoded (unsorted) and in unit order; units without a
    // line program are left out. For tests.
    bool all_line_rows(std::vector<std::vector<LineRow>>* out);

    struct Section {
        std::string name;
        uint32_t type;
        uint64_t flags;
        uint64_t offset;
        uint64_t size;
        uint32_t link;
        uint64_t entsize;
    };

    // The section's contents, decompressed if SHF_COMPRESSED; false if it cannot be read.
    bool read_section(const Section& section, std::vector<uint8_t>* out) const;
    // The last section of that name (the former reader's rule for duplicates), or nullptr.
    const Section* section_named(const char* name) const;

  private:
    bool read_at(uint64_t offset, uint64_t size, void* out) const;
    void read_sections();
    void read_build_id();
    void read_functions();

    int fd_ = -1;
    int open_errno_ = 0;
    uint64_t file_size_ = 0;
    bool ok_ = false;
    std::string problem_;
    std::string build_id_;
    std::vector<Section> sections_;
    std::vector<uint64_t> starts_;
    std::vector<uint64_t> ends_;
    std::vector<std::string> names_;
    int dwarf_state_ = 0;  // 0 not loaded, 1 loaded, -1 none
    std::unique_ptr<Dwarf> dwarf_;
};

// Decompresses a zlib stream into exactly ``size`` bytes (false otherwise): SHF_COMPRESSED sections.
bool inflate_exact(const uint8_t* data, uint64_t length, uint64_t size, std::vector<uint8_t>* out);

// How many code points Python's ``bytes.decode("utf-8", errors="replace")`` gives for these bytes
// (each maximal invalid subpart becomes one U+FFFD): the symbol alias rule compares decoded names.
size_t replaced_utf8_length(const std::string& bytes);

}  // namespace memprof
