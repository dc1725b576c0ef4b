#include "elf_dwarf.h"
#include "leb128.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>
#ifndef MEMPROF_NO_ZLIB
#include <zlib.h>
#endif

#include <algorithm>
#include <cstring>
#include <map>
#include <unordered_map>

namespace memprof {

namespace {

// Any bounds or format violation met while decoding: caught at the public entry points, where
// it becomes "no DWARF" or "no frames" (the former reader's `except Exception`).
struct Malformed {};

[[noreturn]] void malformed() { throw Malformed{}; }

constexpr uint32_t kShtSymtab = 2, kShtNote = 7, kShtNobits = 8, kShtDynsym = 11;
constexpr uint64_t kShfCompressed = 0x800;
// zlib cannot expand by more than about 1032:1; a header claiming more is lying.
constexpr uint64_t kMaxInflateRatio = 1032;
constexpr uint64_t kMaxSectionBytes = (1ULL << 31) - 1;  // zlib's counters are 32-bit

uint64_t load(const uint8_t* p, unsigned size) {
    uint64_t value = 0;
    for (unsigned i = 0; i < size; i++) value |= uint64_t(p[i]) << (8 * i);
    return value;
}

// A bounds-checked cursor over one section's bytes.
struct Cursor {
    const uint8_t* data;
    uint64_t size;
    uint64_t pos;

    Cursor(const std::vector<uint8_t>& bytes, uint64_t at) : data(bytes.data()), size(bytes.size()), pos(at) {}
    bool done() const { return pos >= size; }
    void need(uint64_t n) const {
        if (pos > size || n > size - pos) malformed();
    }
    uint64_t u(unsigned n) {
        need(n);
        uint64_t value = load(data + pos, n);
        pos += n;
        return value;
    }
    uint8_t u8() { return uint8_t(u(1)); }
    void skip(uint64_t n) {
        need(n);
        pos += n;
    }
    uint64_t uleb() {
        uint64_t value;
        if (!read_uleb128([this] { return u8(); }, &value)) malformed();
        return value;
    }
    int64_t sleb() {
        int64_t value;
        if (!read_sleb128([this] { return u8(); }, &value)) malformed();
        return value;
    }
    std::string cstring() {
        if (pos >= size) malformed();
        const void* end = memchr(data + pos, 0, size - pos);
        if (end == nullptr) malformed();
        std::string out(reinterpret_cast<const char*>(data + pos), static_cast<const uint8_t*>(end) - (data + pos));
        pos += out.size() + 1;
        return out;
    }
    // An initial length: (unit length, offset size).
    std::pair<uint64_t, unsigned> initial_length() {
        uint64_t length = u(4);
        if (length == 0xFFFFFFFF) return {u(8), 8};
        if (length >= 0xFFFFFFF0) malformed();
        return {length, 4};
    }
};

std::string string_at(const std::vector<uint8_t>& section, uint64_t offset) {
    Cursor cursor(section, offset);
    return cursor.cstring();
}

// DWARF constants used here.
enum : uint64_t {
    TAG_class_type = 0x02, TAG_lexical_block = 0x0b, TAG_structure_type = 0x13, TAG_inlined_subroutine = 0x1d,
    TAG_subprogram = 0x2e, TAG_namespace = 0x39,
};
enum : uint64_t {
    AT_name = 0x03, AT_stmt_list = 0x10, AT_low_pc = 0x11, AT_high_pc = 0x12, AT_comp_dir = 0x1b,
    AT_abstract_origin = 0x31, AT_specification = 0x47, AT_ranges = 0x55, AT_call_file = 0x58, AT_call_line = 0x59,
    AT_linkage_name = 0x6e, AT_str_offsets_base = 0x72, AT_addr_base = 0x73, AT_rnglists_base = 0x74,
    AT_MIPS_linkage_name = 0x2007,
};
enum : uint64_t {
    FORM_addr = 0x01, FORM_block2 = 0x03, FORM_block4 = 0x04, FORM_data2 = 0x05, FORM_data4 = 0x06,
    FORM_data8 = 0x07, FORM_string = 0x08, FORM_block = 0x09, FORM_block1 = 0x0a, FORM_data1 = 0x0b,
    FORM_flag = 0x0c, FORM_sdata = 0x0d, FORM_strp = 0x0e, FORM_udata = 0x0f, FORM_ref_addr = 0x10,
    FORM_ref1 = 0x11, FORM_ref2 = 0x12, FORM_ref4 = 0x13, FORM_ref8 = 0x14, FORM_ref_udata = 0x15,
    FORM_indirect = 0x16, FORM_sec_offset = 0x17, FORM_exprloc = 0x18, FORM_flag_present = 0x19,
    FORM_strx = 0x1a, FORM_addrx = 0x1b, FORM_ref_sup4 = 0x1c, FORM_strp_sup = 0x1d, FORM_data16 = 0x1e,
    FORM_line_strp = 0x1f, FORM_ref_sig8 = 0x20, FORM_implicit_const = 0x21, FORM_loclistx = 0x22,
    FORM_rnglistx = 0x23, FORM_ref_sup8 = 0x24, FORM_strx1 = 0x25, FORM_strx2 = 0x26, FORM_strx3 = 0x27,
    FORM_strx4 = 0x28, FORM_addrx1 = 0x29, FORM_addrx2 = 0x2a, FORM_addrx3 = 0x2b, FORM_addrx4 = 0x2c,
    FORM_GNU_addr_index = 0x1f01, FORM_GNU_str_index = 0x1f02, FORM_GNU_ref_alt = 0x1f20,
    FORM_GNU_strp_alt = 0x1f21,
};
enum : uint64_t { LNCT_path = 1, LNCT_directory_index = 2 };

bool is_strx(uint64_t form) {
    return form == FORM_strx || (form >= FORM_strx1 && form <= FORM_strx4) || form == FORM_GNU_str_index;
}
bool is_addrx(uint64_t form) {
    return form == FORM_addrx || (form >= FORM_addrx1 && form <= FORM_addrx4) || form == FORM_GNU_addr_index;
}

struct AttributeSpec {
    uint64_t name;
    uint64_t form;
    int64_t implicit;
};

struct Abbrev {
    uint64_t tag = 0;
    bool children = false;
    std::vector<AttributeSpec> attributes;
};

using AbbrevTable = std::unordered_map<uint64_t, Abbrev>;

// One attribute as read: its form and raw value (for inline strings and blocks, where it starts).
struct Value {
    uint64_t form = 0;
    uint64_t raw = 0;
    bool present = false;
};

struct Unit {
    uint64_t offset = 0;      // of the unit header in .debug_info
    uint64_t die_offset = 0;  // of its first DIE
    uint64_t end = 0;
    unsigned version = 0;
    unsigned address_size = 8;
    unsigned offset_size = 4;
    const AbbrevTable* abbrevs = nullptr;
    // From the top DIE, read once.
    bool top_read = false;
    Value top_low_pc, top_str_offsets_base, top_addr_base, top_rnglists_base, top_stmt_list, top_comp_dir;
};

struct Die {
    uint64_t offset;
    const Abbrev* abbrev;
    uint32_t sibling;      // index of the next sibling, 0 if none
    uint32_t first_child;  // 0 if none (index 0 is the unit's top DIE, never a child)
};

struct FileEntry {
    std::string name;
    uint64_t dir_index;
    bool has_dir_index;
};

struct LineTable {
    bool have_program = false;
    unsigned version = 0;
    std::vector<std::string> directories;
    std::vector<FileEntry> files;
    std::vector<LineRow> rows;  // sorted
};

struct FunctionSpans {
    std::vector<uint64_t> lows;
    std::vector<std::pair<uint64_t, uint32_t>> spans;  // (high, DIE index), sorted by low, stably
};

struct ParsedUnit {
    Unit unit;
    std::vector<Die> dies;
    bool has_lines = false;
    LineTable lines;
    bool has_functions = false;
    FunctionSpans functions;
};

struct ARange {
    uint64_t begin;
    uint64_t length;
    uint64_t info_offset;
};

}  // namespace

class Dwarf {
  public:
    std::vector<uint8_t> info, abbrev, line, str, line_str, ranges, rnglists, aranges_bytes, addr, str_offsets;
    bool have_ranges = false, have_rnglists = false, have_aranges = false;
    std::vector<ARange> aranges;
    std::map<uint64_t, AbbrevTable> abbrev_tables;
    std::map<uint64_t, std::unique_ptr<ParsedUnit>> units;
    bool cu_ranges_built = false;
    std::vector<std::pair<std::pair<uint64_t, uint64_t>, uint64_t>> cu_ranges;

    void read_aranges();
    ParsedUnit* unit_at(uint64_t offset);
    Unit header_at(uint64_t offset);
    const AbbrevTable* abbrevs_at(uint64_t offset);
    Value read_value(Cursor& cursor, const Unit& unit, uint64_t form, int64_t implicit);
    void read_attributes(const Unit& unit, uint64_t die_offset, const uint64_t* wanted, Value* values, size_t count,
                         uint64_t* tag = nullptr);
    void read_top(Unit& unit);
    std::string text(const Unit& unit, const Value& value);
    uint64_t constant(const Value& value);
    uint64_t address(const Unit& unit, const Value& value);
    std::vector<std::pair<uint64_t, uint64_t>> die_ranges(Unit& unit, uint64_t die_offset);
    void parse_dies(ParsedUnit& parsed);
    ParsedUnit* cu_at(uint64_t vaddr);
    LineTable& table(ParsedUnit& parsed, bool sort = true);
    std::string file_name(ParsedUnit& parsed, uint64_t index);
    int64_t function_at(ParsedUnit& parsed, uint64_t vaddr);
    void collect_functions(ParsedUnit& parsed, uint32_t scope, std::vector<std::pair<uint64_t, std::pair<uint64_t, uint32_t>>>& spans, int depth);
    std::pair<std::string, bool> die_name(ParsedUnit& parsed, uint64_t die_offset);
    bool contains(ParsedUnit& parsed, uint64_t die_offset, uint64_t vaddr);
};

namespace {

std::vector<LineRow> decode_line_rows(const std::vector<uint8_t>& section, uint64_t start, uint64_t end,
                                      unsigned opcode_base, int line_base, unsigned line_range,
                                      unsigned min_length, unsigned max_ops,
                                      const std::vector<uint8_t>& argument_counts, std::vector<FileEntry>* files) {
    std::vector<LineRow> rows;
    if (end > section.size()) end = section.size();
    if (start >= end) return rows;
    if (line_range == 0 || opcode_base == 0) malformed();
    std::vector<uint8_t> slice(section.begin() + start, section.begin() + end);
    Cursor c(slice, 0);
    uint64_t address = 0, op_index = 0, file = 1;
    int64_t line = 1;
    const uint64_t const_add_ops = (255 - opcode_base) / line_range;
    auto advance = [&](uint64_t operations) {
        if (max_ops == 1) {
            address += uint64_t(min_length) * operations;
            return;
        }
        op_index += operations;
        address += uint64_t(min_length) * (op_index / max_ops);
        op_index %= max_ops;
    };
    while (!c.done()) {
        unsigned opcode = c.u8();
        if (opcode >= opcode_base) {
            unsigned adjusted = opcode - opcode_base;
            advance(adjusted / line_range);
            // Wrapping arithmetic: a hostile program must not overflow a signed line (undefined).
            line = int64_t(uint64_t(line) + uint64_t(int64_t(line_base + int(adjusted % line_range))));
            rows.push_back({address, 1, file, line});
        } else if (opcode == 0) {
            uint64_t length = c.uleb();
            if (length == 0 || length > c.size - c.pos) malformed();
            uint64_t operands = c.pos + 1;
            unsigned extended = c.data[c.pos];
            uint64_t next = c.pos + length;
            if (extended == 1) {
                rows.push_back({address, 0, file, line});
                address = op_index = 0;
                file = 1;
                line = 1;
            } else if (extended == 2) {
                uint64_t n = next - operands;
                address = load(c.data + operands, unsigned(std::min<uint64_t>(n, 8)));
                op_index = 0;
            } else if (extended == 3 && files != nullptr) {
                // define_file adds to the header's table (as pyelftools did for the former reader).
                Cursor operand(slice, operands);
                FileEntry entry;
                entry.name = operand.cstring();
                entry.dir_index = operand.uleb();
                entry.has_dir_index = true;
                operand.uleb();
                operand.uleb();
                files->push_back(std::move(entry));
            }
            c.pos = next;
        } else if (opcode == 1) {
            rows.push_back({address, 1, file, line});
        } else if (opcode == 2) {
            uint64_t operations = c.uleb();
            // advance_pc always follows the op_index rule, like the former decoder.
            op_index += operations;
            address += uint64_t(min_length) * (op_index / max_ops);
            op_index %= max_ops;
        } else if (opcode == 3) {
            line = int64_t(uint64_t(line) + uint64_t(c.sleb()));
        } else if (opcode == 4) {
            file = c.uleb();
        } else if (opcode == 8) {
            op_index += const_add_ops;
            address += uint64_t(min_length) * (op_index / max_ops);
            op_index %= max_ops;
        } else if (opcode == 9) {
            address += c.u(2);
            op_index = 0;
        } else {
            unsigned count = opcode - 1 < argument_counts.size() ? argument_counts[opcode - 1] : 0;
            for (unsigned i = 0; i < count; i++) c.uleb();
        }
    }
    return rows;
}

// posixpath.join(a, b) and posixpath.normpath on bytes.
std::string path_join(const std::string& a, const std::string& b) {
    if (!b.empty() && b[0] == '/') return b;
    if (a.empty() || a.back() == '/') return a + b;
    return a + "/" + b;
}

std::string normpath(const std::string& path) {
    if (path.empty()) return ".";
    int initial = 0;
    if (path[0] == '/') initial = (path.size() > 1 && path[1] == '/' && !(path.size() > 2 && path[2] == '/')) ? 2 : 1;
    std::vector<std::string> parts;
    size_t start = 0;
    while (start <= path.size()) {
        size_t slash = path.find('/', start);
        if (slash == std::string::npos) slash = path.size();
        std::string part = path.substr(start, slash - start);
        start = slash + 1;
        if (part.empty() || part == ".") continue;
        if (part != ".." || (initial == 0 && parts.empty()) || (!parts.empty() && parts.back() == "..")) {
            parts.push_back(part);
        } else if (!parts.empty()) {
            parts.pop_back();
        }
    }
    std::string out(initial, '/');
    for (size_t i = 0; i < parts.size(); i++) {
        if (i) out += '/';
        out += parts[i];
    }
    return out.empty() ? "." : out;
}

}  // namespace

// ---- DWARF -------------------------------------------------------------------------------------

const AbbrevTable* Dwarf::abbrevs_at(uint64_t offset) {
    auto found = abbrev_tables.find(offset);
    if (found != abbrev_tables.end()) return &found->second;
    AbbrevTable table;
    Cursor c(abbrev, offset);
    while (true) {
        uint64_t code = c.uleb();
        if (code == 0) break;
        Abbrev entry;
        entry.tag = c.uleb();
        entry.children = c.u8() != 0;
        while (true) {
            AttributeSpec spec{c.uleb(), c.uleb(), 0};
            if (spec.name == 0 && spec.form == 0) break;
            if (spec.form == FORM_implicit_const) spec.implicit = c.sleb();
            entry.attributes.push_back(spec);
        }
        table[code] = std::move(entry);
    }
    return &abbrev_tables.emplace(offset, std::move(table)).first->second;
}

Unit Dwarf::header_at(uint64_t offset) {
    Unit unit;
    Cursor c(info, offset);
    auto [length, offset_size] = c.initial_length();
    unit.offset = offset;
    unit.offset_size = offset_size;
    unit.end = c.pos + length;
    if (unit.end > info.size() || unit.end < c.pos) malformed();
    unit.version = unsigned(c.u(2));
    if (unit.version < 2 || unit.version > 5) malformed();
    uint64_t abbrev_offset;
    if (unit.version >= 5) {
        unsigned type = c.u8();
        unit.address_size = c.u8();
        abbrev_offset = c.u(offset_size);
        if (type == 4 || type == 5) c.skip(8);                      // skeleton, split compile: dwo_id
        else if (type == 2 || type == 6) c.skip(8 + offset_size);  // type units: signature, type offset
    } else {
        abbrev_offset = c.u(offset_size);
        unit.address_size = c.u8();
    }
    if (unit.address_size != 4 && unit.address_size != 8) malformed();
    unit.die_offset = c.pos;
    unit.abbrevs = abbrevs_at(abbrev_offset);
    return unit;
}

ParsedUnit* Dwarf::unit_at(uint64_t offset) {
    auto found = units.find(offset);
    if (found != units.end()) return found->second.get();
    auto parsed = std::make_unique<ParsedUnit>();
    parsed->unit = header_at(offset);
    read_top(parsed->unit);
    return units.emplace(offset, std::move(parsed)).first->second.get();
}

Value Dwarf::read_value(Cursor& c, const Unit& unit, uint64_t form, int64_t implicit) {
    Value value;
    value.form = form;
    value.present = true;
    switch (form) {
        case FORM_addr: value.raw = c.u(unit.address_size); break;
        case FORM_block2: value.raw = c.pos; c.skip(c.u(2)); break;
        case FORM_block4: value.raw = c.pos; c.skip(c.u(4)); break;
        case FORM_data2: case FORM_ref2: case FORM_strx2: case FORM_addrx2: value.raw = c.u(2); break;
        case FORM_data4: case FORM_ref4: case FORM_ref_sup4: case FORM_strx4: case FORM_addrx4: value.raw = c.u(4); break;
        case FORM_data8: case FORM_ref8: case FORM_ref_sig8: case FORM_ref_sup8: value.raw = c.u(8); break;
        case FORM_strx3: case FORM_addrx3: value.raw = c.u(3); break;
        case FORM_string: value.raw = c.pos; c.cstring(); break;
        case FORM_block: case FORM_exprloc: { uint64_t n = c.uleb(); value.raw = c.pos; c.skip(n); break; }
        case FORM_block1: value.raw = c.pos; c.skip(c.u(1)); break;
        case FORM_data1: case FORM_ref1: case FORM_flag: case FORM_strx1: case FORM_addrx1: value.raw = c.u(1); break;
        case FORM_sdata: value.raw = uint64_t(c.sleb()); break;
        case FORM_udata: case FORM_ref_udata: case FORM_strx: case FORM_addrx: case FORM_loclistx:
        case FORM_rnglistx: case FORM_GNU_addr_index: case FORM_GNU_str_index: value.raw = c.uleb(); break;
        case FORM_strp: case FORM_sec_offset: case FORM_strp_sup: case FORM_line_strp: case FORM_GNU_ref_alt:
        case FORM_GNU_strp_alt: value.raw = c.u(unit.offset_size); break;
        case FORM_ref_addr: value.raw = c.u(unit.version <= 2 ? unit.address_size : unit.offset_size); break;
        case FORM_flag_present: value.raw = 1; break;
        case FORM_data16: value.raw = c.pos; c.skip(16); break;
        case FORM_implicit_const: value.raw = uint64_t(implicit); break;
        case FORM_indirect: {
            uint64_t actual = c.uleb();
            if (actual == FORM_indirect) malformed();
            return read_value(c, unit, actual, implicit);
        }
        default: malformed();
    }
    return value;
}

// Reads the DIE at ``die_offset`` and fills ``values[i]`` for each ``wanted[i]`` (the last one wins,
// as in the former reader's attribute dictionary).
void Dwarf::read_attributes(const Unit& unit, uint64_t die_offset, const uint64_t* wanted, Value* values,
                            size_t count, uint64_t* tag) {
    Cursor c(info, die_offset);
    if (die_offset >= unit.end) malformed();
    c.size = unit.end;
    uint64_t code = c.uleb();
    auto found = unit.abbrevs->find(code);
    if (code == 0 || found == unit.abbrevs->end()) malformed();
    if (tag) *tag = found->second.tag;
    for (const AttributeSpec& spec : found->second.attributes) {
        Value value = read_value(c, unit, spec.form, spec.implicit);
        for (size_t i = 0; i < count; i++)
            if (wanted[i] == spec.name) values[i] = value;
    }
}

void Dwarf::read_top(Unit& unit) {
    const uint64_t wanted[] = {AT_low_pc, AT_str_offsets_base, AT_addr_base, AT_rnglists_base, AT_stmt_list, AT_comp_dir};
    Value values[6];
    read_attributes(unit, unit.die_offset, wanted, values, 6);
    unit.top_low_pc = values[0];
    unit.top_str_offsets_base = values[1];
    unit.top_addr_base = values[2];
    unit.top_rnglists_base = values[3];
    unit.top_stmt_list = values[4];
    unit.top_comp_dir = values[5];
    unit.top_read = true;
}

std::string Dwarf::text(const Unit& unit, const Value& value) {
    switch (value.form) {
        case FORM_string: return string_at(info, value.raw);
        case FORM_strp: return string_at(str, value.raw);
        case FORM_line_strp: return string_at(line_str, value.raw);
        default: break;
    }
    if (is_strx(value.form)) {
        if (!unit.top_str_offsets_base.present) malformed();
        Cursor c(str_offsets, constant(unit.top_str_offsets_base) + value.raw * unit.offset_size);
        if (value.raw > str_offsets.size()) malformed();
        return string_at(str, c.u(unit.offset_size));
    }
    // Any other form: its number as text (the former reader's str() of a non-string value).
    if (value.form == FORM_sdata || value.form == FORM_implicit_const) return std::to_string(int64_t(value.raw));
    return std::to_string(value.raw);
}

uint64_t Dwarf::constant(const Value& value) { return value.raw; }

uint64_t Dwarf::address(const Unit& unit, const Value& value) {
    if (!is_addrx(value.form)) return value.raw;
    if (!unit.top_addr_base.present || value.raw > addr.size()) malformed();
    Cursor c(addr, unit.top_addr_base.raw + value.raw * unit.address_size);
    return c.u(unit.address_size);
}

std::vector<std::pair<uint64_t, uint64_t>> Dwarf::die_ranges(Unit& unit, uint64_t die_offset) {
    const uint64_t wanted[] = {AT_low_pc, AT_high_pc, AT_ranges};
    Value values[3];
    read_attributes(unit, die_offset, wanted, values, 3);
    std::vector<std::pair<uint64_t, uint64_t>> out;
    if (values[0].present && values[1].present) {
        uint64_t low = address(unit, values[0]);
        // DWARF 4+: a constant-class high_pc is a length.
        uint64_t high = values[1].form == FORM_addr ? values[1].raw : low + values[1].raw;
        out.emplace_back(low, high);
        return out;
    }
    if (!values[2].present) return out;
    if (!have_ranges && !have_rnglists) return out;
    uint64_t offset = values[2].raw;
    if (values[2].form == FORM_rnglistx) {
        if (!have_rnglists || !unit.top_rnglists_base.present || offset > rnglists.size()) malformed();
        uint64_t base = unit.top_rnglists_base.raw;
        Cursor table(rnglists, base + offset * unit.offset_size);
        offset = base + table.u(unit.offset_size);
    }
    uint64_t base = unit.top_low_pc.present ? address(unit, unit.top_low_pc) : 0;
    // Both sections: the unit's version picks; one: that one, in its own format.
    bool v5 = have_rnglists && (!have_ranges || unit.version >= 5);
    if (!v5) {
        Cursor c(ranges, offset);
        uint64_t max = unit.address_size == 8 ? ~uint64_t(0) : 0xFFFFFFFFULL;
        while (true) {
            uint64_t begin = c.u(unit.address_size), end = c.u(unit.address_size);
            if (begin == 0 && end == 0) break;
            if (begin == max) base = end;
            else out.emplace_back(base + begin, base + end);
        }
        return out;
    }
    Cursor c(rnglists, offset);
    auto indexed = [&](uint64_t index) {
        Value v;
        v.form = FORM_addrx;
        v.raw = index;
        return address(unit, v);
    };
    while (true) {
        unsigned kind = c.u8();
        if (kind == 0) break;
        switch (kind) {
            case 1: base = indexed(c.uleb()); break;
            case 2: { uint64_t s = indexed(c.uleb()); uint64_t e = indexed(c.uleb()); out.emplace_back(s, e); break; }
            case 3: { uint64_t s = indexed(c.uleb()); out.emplace_back(s, s + c.uleb()); break; }
            case 4: { uint64_t s = c.uleb(); uint64_t e = c.uleb(); out.emplace_back(base + s, base + e); break; }
            case 5: base = c.u(unit.address_size); break;
            case 6: { uint64_t s = c.u(unit.address_size); uint64_t e = c.u(unit.address_size); out.emplace_back(s, e); break; }
            case 7: { uint64_t s = c.u(unit.address_size); out.emplace_back(s, s + c.uleb()); break; }
            default: malformed();
        }
    }
    return out;
}

void Dwarf::parse_dies(ParsedUnit& parsed) {
    if (!parsed.dies.empty()) return;
    const Unit& unit = parsed.unit;
    Cursor c(info, unit.die_offset);
    c.size = unit.end;
    // Per open level: its parent DIE and the last DIE seen in it (-1: none yet).
    std::vector<std::pair<int64_t, int64_t>> open;
    open.push_back({-1, -1});
    while (c.pos < c.size) {
        uint64_t offset = c.pos;
        uint64_t code = c.uleb();
        if (code == 0) {
            if (open.size() <= 1) continue;  // padding
            open.pop_back();
            if (open.size() == 1) break;  // the top DIE's children are done
            continue;
        }
        auto found = unit.abbrevs->find(code);
        if (found == unit.abbrevs->end()) malformed();
        for (const AttributeSpec& spec : found->second.attributes) read_value(c, unit, spec.form, spec.implicit);
        if (parsed.dies.size() >= 0xFFFFFFF0u) malformed();
        uint32_t index = uint32_t(parsed.dies.size());
        auto& level = open.back();
        if (level.second >= 0) parsed.dies[size_t(level.second)].sibling = index;
        else if (level.first >= 0) parsed.dies[size_t(level.first)].first_child = index;
        level.second = index;
        parsed.dies.push_back({offset, &found->second, 0, 0});
        if (found->second.children) open.push_back({index, -1});
        else if (open.size() == 1) break;  // a top DIE without children
    }
    if (parsed.dies.empty()) malformed();
}

#define FOR_EACH_CHILD(parsed, index, child) \
    for (uint32_t child = (parsed).dies[index].first_child; child != 0; child = (parsed).dies[child].sibling)

void Dwarf::read_aranges() {
    Cursor c(aranges_bytes, 0);
    while (c.pos < c.size) {
        uint64_t start = c.pos;
        auto [length, offset_size] = c.initial_length();
        c.u(2);  // version
        uint64_t info_offset = c.u(offset_size);
        unsigned address_size = c.u8();
        unsigned segment_size = c.u8();
        if (address_size != 4 && address_size != 8) malformed();
        if (segment_size != 0) malformed();
        uint64_t tuple = 2 * address_size;
        c.pos = (c.pos + tuple - 1) / tuple * tuple;
        while (true) {
            uint64_t begin = c.u(address_size), size = c.u(address_size);
            if (begin == 0 && size == 0) break;
            aranges.push_back({begin, size, info_offset});
        }
        c.pos = start + length + (offset_size == 4 ? 4 : 12);
    }
    std::stable_sort(aranges.begin(), aranges.end(),
                     [](const ARange& a, const ARange& b) { return a.begin < b.begin; });
}

ParsedUnit* Dwarf::cu_at(uint64_t vaddr) {
    bool found = false;
    uint64_t offset = 0;
    if (have_aranges && !aranges.empty()) {
        auto after = std::upper_bound(aranges.begin(), aranges.end(), vaddr,
                                      [](uint64_t v, const ARange& a) { return v < a.begin; });
        // Before the first entry the former reader looked at the last one (a Python index of -1).
        const ARange& entry = after == aranges.begin() ? aranges.back() : *(after - 1);
        if (entry.begin <= vaddr && vaddr - entry.begin < entry.length) {
            found = true;
            offset = entry.info_offset;
        }
    }
    if (!found) {
        if (!cu_ranges_built) {
            cu_ranges_built = true;
            uint64_t at = 0;
            while (at < info.size()) {
                ParsedUnit* parsed = unit_at(at);
                for (auto& range : die_ranges(parsed->unit, parsed->unit.die_offset))
                    cu_ranges.push_back({range, at});
                at = parsed->unit.end;
            }
        }
        for (auto& [range, unit_offset] : cu_ranges) {
            if (range.first <= vaddr && vaddr < range.second) {
                found = true;
                offset = unit_offset;
                break;
            }
        }
    }
    return found ? unit_at(offset) : nullptr;
}

LineTable& Dwarf::table(ParsedUnit& parsed, bool sort) {
    LineTable& t = parsed.lines;
    if (parsed.has_lines) return t;
    const Unit& unit = parsed.unit;
    if (unit.top_stmt_list.present && !line.empty()) {
        // The header: a malformed one fails the whole lookup (Malformed propagates), a malformed
        // program only empties the rows.
        Cursor c(line, unit.top_stmt_list.raw);
        auto [length, offset_size] = c.initial_length();
        uint64_t end = c.pos + length;
        t.version = unsigned(c.u(2));
        if (t.version < 2 || t.version > 5) malformed();
        unsigned address_size = unit.address_size;
        if (t.version >= 5) {
            address_size = c.u8();
            c.u8();
        }
        (void)address_size;
        c.u(offset_size);  // header_length: the program starts where the parsed header ends
        unsigned min_length = c.u8();
        unsigned max_ops = t.version >= 4 ? c.u8() : 1;
        if (max_ops == 0) max_ops = 1;
        c.u8();  // default_is_stmt
        int line_base = int8_t(c.u8());
        unsigned line_range = c.u8();
        unsigned opcode_base = c.u8();
        if (opcode_base == 0) malformed();
        std::vector<uint8_t> counts(opcode_base - 1);
        for (auto& count : counts) count = c.u8();
        if (t.version >= 5) {
            Unit line_unit = unit;
            line_unit.offset_size = offset_size;
            auto entries = [&](bool directories) {
                unsigned format_count = c.u8();
                std::vector<std::pair<uint64_t, uint64_t>> formats;
                for (unsigned i = 0; i < format_count; i++) {
                    uint64_t type = c.uleb();
                    formats.emplace_back(type, c.uleb());
                }
                uint64_t count = c.uleb();
                if (count > c.size) malformed();
                for (uint64_t i = 0; i < count; i++) {
                    FileEntry entry{"", 0, false};
                    for (auto& [type, form] : formats) {
                        if (form == FORM_strx || (form >= FORM_strx1 && form <= FORM_strx4) || form == FORM_strp_sup)
                            malformed();
                        Value value = read_value(c, line_unit, form, 0);
                        if (type == LNCT_path)
                            entry.name = form == FORM_string ? string_at(line, value.raw) : text(line_unit, value);
                        else if (type == LNCT_directory_index) {
                            entry.dir_index = value.raw;
                            entry.has_dir_index = true;
                        }
                    }
                    if (directories) t.directories.push_back(entry.name);
                    else t.files.push_back(std::move(entry));
                }
            };
            entries(true);
            entries(false);
        } else {
            while (true) {
                std::string directory = c.cstring();
                if (directory.empty()) break;
                t.directories.push_back(std::move(directory));
            }
            while (true) {
                FileEntry entry{c.cstring(), 0, true};
                if (entry.name.empty()) break;
                entry.dir_index = c.uleb();
                c.uleb();
                c.uleb();
                t.files.push_back(std::move(entry));
            }
        }
        t.have_program = true;
        try {
            t.rows = decode_line_rows(line, c.pos, end, opcode_base, line_base, line_range, min_length, max_ops, counts,
                                      &t.files);
        } catch (const Malformed&) {
            t.rows.clear();
        }
        if (sort) std::sort(t.rows.begin(), t.rows.end(), [](const LineRow& a, const LineRow& b) {
            if (a.address != b.address) return a.address < b.address;
            if (a.order != b.order) return a.order < b.order;
            if (a.file != b.file) return a.file < b.file;
            return a.line < b.line;
        });
    }
    parsed.has_lines = true;
    return t;
}

std::string Dwarf::file_name(ParsedUnit& parsed, uint64_t index) {
    LineTable& t = table(parsed);
    if (!t.have_program) return "?";
    uint64_t position = t.version >= 5 ? index : index - 1;
    if (position >= t.files.size()) return "?";  // index 0 before DWARF 5 wraps to a huge position
    const FileEntry& entry = t.files[position];
    const std::string& name = entry.name;
    if (!name.empty() && name[0] == '/') return name;
    if (!entry.has_dir_index) malformed();
    uint64_t directory_index = entry.dir_index;
    std::string comp_dir = parsed.unit.top_comp_dir.present ? text(parsed.unit, parsed.unit.top_comp_dir) : "";
    std::string directory;
    if (t.version >= 5) {
        if (directory_index < t.directories.size()) directory = t.directories[directory_index];
    } else if (directory_index == 0) {
        directory = comp_dir;
    } else if (directory_index - 1 < t.directories.size()) {
        directory = t.directories[directory_index - 1];
    }
    if (!directory.empty() && directory[0] != '/' && !comp_dir.empty()) directory = path_join(comp_dir, directory);
    return directory.empty() ? name : normpath(path_join(directory, name));
}

bool Dwarf::contains(ParsedUnit& parsed, uint64_t die_offset, uint64_t vaddr) {
    for (auto& [low, high] : die_ranges(parsed.unit, die_offset))
        if (low <= vaddr && vaddr < high) return true;
    return false;
}

void Dwarf::collect_functions(ParsedUnit& parsed, uint32_t scope,
                              std::vector<std::pair<uint64_t, std::pair<uint64_t, uint32_t>>>& spans, int depth) {
    FOR_EACH_CHILD(parsed, scope, child) {
        uint64_t tag = parsed.dies[child].abbrev->tag;
        if (tag == TAG_subprogram) {
            for (auto& [low, high] : die_ranges(parsed.unit, parsed.dies[child].offset))
                if (low < high) spans.push_back({low, {high, child}});
        } else if ((tag == TAG_namespace || tag == TAG_class_type || tag == TAG_structure_type) && depth < 64) {
            // C++ nests some out-of-line definitions (anonymous namespaces, members) here.
            collect_functions(parsed, child, spans, depth + 1);
        }
    }
}

int64_t Dwarf::function_at(ParsedUnit& parsed, uint64_t vaddr) {
    parse_dies(parsed);
    FunctionSpans& index = parsed.functions;
    if (!parsed.has_functions) {
        std::vector<std::pair<uint64_t, std::pair<uint64_t, uint32_t>>> spans;
        collect_functions(parsed, 0, spans, 0);
        std::stable_sort(spans.begin(), spans.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
        for (auto& span : spans) {
            index.lows.push_back(span.first);
            index.spans.push_back(span.second);
        }
        parsed.has_functions = true;
    }
    auto after = std::upper_bound(index.lows.begin(), index.lows.end(), vaddr);
    size_t position = size_t(after - index.lows.begin());
    if (position > 0 && vaddr < index.spans[position - 1].first) return index.spans[position - 1].second;
    // Overlapping spans (unusual, but DWARF does not forbid them): look at every one.
    for (size_t i = 0; i < index.lows.size(); i++)
        if (index.lows[i] <= vaddr && vaddr < index.spans[i].first) return index.spans[i].second;
    return -1;
}

std::pair<std::string, bool> Dwarf::die_name(ParsedUnit& parsed, uint64_t die_offset) {
    Unit* unit = &parsed.unit;
    for (int hop = 0; hop < 8; hop++) {
        const uint64_t wanted[] = {AT_linkage_name, AT_MIPS_linkage_name, AT_name, AT_abstract_origin, AT_specification};
        Value values[5];
        read_attributes(*unit, die_offset, wanted, values, 5);
        if (values[0].present) return {text(*unit, values[0]), true};
        if (values[1].present) return {text(*unit, values[1]), true};
        if (values[2].present) return {text(*unit, values[2]), false};
        const Value& reference = values[3].present ? values[3] : values[4];
        if (!reference.present) return {"", false};
        switch (reference.form) {
            case FORM_ref1: case FORM_ref2: case FORM_ref4: case FORM_ref8: case FORM_ref_udata:
                die_offset = unit->offset + reference.raw;
                break;
            case FORM_ref_addr: {
                // Another unit may hold it: the one whose span contains the offset.
                die_offset = reference.raw;
                if (die_offset < unit->offset || die_offset >= unit->end) {
                    uint64_t at = 0;
                    ParsedUnit* holder = nullptr;
                    while (at < info.size()) {
                        ParsedUnit* candidate = unit_at(at);
                        if (die_offset >= candidate->unit.die_offset && die_offset < candidate->unit.end) {
                            holder = candidate;
                            break;
                        }
                        at = candidate->unit.end;
                    }
                    if (holder == nullptr) malformed();
                    unit = &holder->unit;
                }
                break;
            }
            default: malformed();
        }
    }
    return {"", false};
}

// ---- ELF ---------------------------------------------------------------------------------------

ElfObject::ElfObject(const std::string& path) {
    fd_ = open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
    if (fd_ < 0) {
        open_errno_ = errno;
        problem_ = strerror(errno);
        return;
    }
    struct stat st;
    // A capture is untrusted: a path naming a FIFO or a device must not hang or flood the report.
    if (fstat(fd_, &st) != 0 || !S_ISREG(st.st_mode)) {
        problem_ = "not a regular file";
        return;
    }
    file_size_ = uint64_t(st.st_size);
    unsigned char ident[16];
    if (!read_at(0, 16, ident) || memcmp(ident, "\x7f" "ELF", 4) != 0) {
        problem_ = "not an ELF file";
        return;
    }
    if (ident[4] != 2 || ident[5] != 1) {
        problem_ = "only 64-bit little-endian objects are read";
        return;
    }
    try {
        read_sections();
    } catch (const Malformed&) {
        problem_ = "malformed section table";
        return;
    }
    ok_ = true;
    try {
        read_build_id();
    } catch (const Malformed&) {
        build_id_.clear();
    }
    try {
        read_functions();
    } catch (const Malformed&) {
        starts_.clear();
        ends_.clear();
        names_.clear();
    }
}

ElfObject::~ElfObject() {
    if (fd_ >= 0) close(fd_);
}

bool ElfObject::read_at(uint64_t offset, uint64_t size, void* out) const {
    if (offset > file_size_ || size > file_size_ - offset) return false;
    auto* bytes = static_cast<char*>(out);
    while (size > 0) {
        ssize_t n = pread(fd_, bytes, size, off_t(offset));
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) return false;  // shrunk under us
        bytes += n;
        size -= uint64_t(n);
        offset += uint64_t(n);
    }
    return true;
}

void ElfObject::read_sections() {
    unsigned char header[64];
    if (!read_at(0, 64, header)) malformed();
    uint64_t shoff = load(header + 0x28, 8);
    unsigned shentsize = unsigned(load(header + 0x3a, 2));
    uint64_t shnum = load(header + 0x3c, 2);
    uint64_t shstrndx = load(header + 0x3e, 2);
    if (shoff == 0) return;
    if (shentsize < 64) malformed();
    unsigned char first[64];
    // Extended numbering: the real counts live in section 0.
    if (!read_at(shoff, 64, first)) malformed();
    if (shnum == 0) shnum = load(first + 0x20, 8);
    if (shstrndx == 0xFFFF) shstrndx = load(first + 0x28, 4);
    if (shnum > file_size_ / shentsize) malformed();
    std::vector<unsigned char> table(shnum * shentsize);
    std::vector<uint64_t> name_offsets;
    if (!read_at(shoff, table.size(), table.data())) malformed();
    for (uint64_t i = 0; i < shnum; i++) {
        const unsigned char* s = table.data() + i * shentsize;
        Section section;
        name_offsets.push_back(load(s, 4));
        section.type = uint32_t(load(s + 4, 4));
        section.flags = load(s + 8, 8);
        section.offset = load(s + 0x18, 8);
        section.size = load(s + 0x20, 8);
        section.link = uint32_t(load(s + 0x28, 4));
        section.entsize = load(s + 0x38, 8);
        sections_.push_back(section);
    }
    std::vector<uint8_t> names;
    if (shstrndx < sections_.size()) read_section(sections_[shstrndx], &names);
    for (size_t i = 0; i < sections_.size(); i++) {
        Section& section = sections_[i];
        uint64_t offset = name_offsets[i];
        if (offset < names.size()) {
            const void* end = memchr(names.data() + offset, 0, names.size() - offset);
            size_t length = end ? static_cast<const uint8_t*>(end) - (names.data() + offset) : names.size() - offset;
            section.name.assign(reinterpret_cast<const char*>(names.data() + offset), length);
        }
    }
}

bool ElfObject::read_section(const Section& section, std::vector<uint8_t>* out) const {
    out->clear();
    if (section.type == kShtNobits) return true;
    if (section.offset > file_size_ || section.size > file_size_ - section.offset) return false;
    std::vector<uint8_t> raw(section.size);
    if (!read_at(section.offset, section.size, raw.data())) return false;
    if (!(section.flags & kShfCompressed)) {
        *out = std::move(raw);
        return true;
    }
    // Elf64_Chdr: type (1 is zlib), reserved, uncompressed size, alignment.
    if (raw.size() < 24 || load(raw.data(), 4) != 1) return false;
    uint64_t size = load(raw.data() + 8, 8);
    uint64_t compressed = raw.size() - 24;
    if (size > kMaxSectionBytes || size / kMaxInflateRatio > compressed + 1) return false;
    return inflate_exact(raw.data() + 24, compressed, size, out);
}

const ElfObject::Section* ElfObject::section_named(const char* name) const {
    const Section* found = nullptr;
    for (const Section& section : sections_)
        if (section.name == name) found = &section;
    return found;
}

void ElfObject::read_build_id() {
    // Notes are small: bounded reads, so that a table of many huge note sections cannot make a
    // report read the file over and over.
    int looked = 0;
    for (const Section& section : sections_) {
        if (section.type != kShtNote || section.size > (1 << 20) || ++looked > 64) continue;
        std::vector<uint8_t> data;
        if (!read_section(section, &data)) continue;
        Cursor c(data, 0);
        while (c.pos < c.size) {
            uint64_t name_size = c.u(4), desc_size = c.u(4), type = c.u(4);
            c.skip((name_size + 3) & ~uint64_t(3));
            uint64_t desc = c.pos;
            c.need(desc_size);
            if (type == 3) {  // NT_GNU_BUILD_ID
                static const char hex[] = "0123456789abcdef";
                for (uint64_t i = 0; i < desc_size; i++) {
                    build_id_ += hex[data[desc + i] >> 4];
                    build_id_ += hex[data[desc + i] & 15];
                }
                return;
            }
            c.skip((desc_size + 3) & ~uint64_t(3));
        }
    }
}

void ElfObject::read_functions() {
    // (size, name) per address; aliases share an address: keep the sized one, then the shorter
    // name (in code points once decoded, as the former reader compared them), else the first seen.
    // Symbols are gathered flat and sorted (libpython has tens of thousands): a tree of copied
    // names per symbol was most of a cold native report's object opening.
    struct Symbol {
        uint64_t start, size;
        size_t name_at, name_size, seen;
    };
    for (const char* table : {".symtab", ".dynsym"}) {
        const Section* section = section_named(table);
        if (section == nullptr || section->entsize != 24) continue;
        if (section->link >= sections_.size()) malformed();
        std::vector<uint8_t> strings, symbols;
        if (!read_section(sections_[section->link], &strings) || !read_section(*section, &symbols)) malformed();
        std::vector<Symbol> found;
        for (size_t at = 0; at + 24 <= symbols.size(); at += 24) {
            const uint8_t* symbol = symbols.data() + at;
            uint64_t name_offset = load(symbol, 4);
            unsigned type = symbol[4] & 0xF;
            uint64_t shndx = load(symbol + 6, 2), value = load(symbol + 8, 8), size = load(symbol + 16, 8);
            if ((type != 2 && type != 10) || value == 0 || shndx == 0) continue;
            size_t name_size = 0;
            if (name_offset < strings.size()) {
                const void* end = memchr(strings.data() + name_offset, 0, strings.size() - name_offset);
                // No terminator: the former reader's slice to find()'s -1 stopped one byte short.
                size_t stop = end ? static_cast<const uint8_t*>(end) - strings.data() : strings.size() - 1;
                if (stop > name_offset) name_size = stop - name_offset;
            }
            found.push_back({value, size, size_t(name_offset), name_size, found.size()});
        }
        if (found.empty()) continue;  // .symtab holds everything .dynsym does
        std::sort(found.begin(), found.end(), [](const Symbol& a, const Symbol& b) {
            return a.start != b.start ? a.start < b.start : a.seen < b.seen;
        });
        auto name_of = [&strings](const Symbol& symbol) {
            return std::string(reinterpret_cast<const char*>(strings.data() + symbol.name_at), symbol.name_size);
        };
        std::vector<uint64_t> sizes;
        for (size_t i = 0; i < found.size();) {
            size_t kept = i, kept_length = SIZE_MAX;
            size_t next = i + 1;
            for (; next < found.size() && found[next].start == found[i].start; next++) {
                const Symbol& alias = found[next];
                if (found[kept].size == 0 && alias.size) {
                    kept = next;
                    kept_length = SIZE_MAX;
                } else if (found[kept].size == alias.size) {
                    if (kept_length == SIZE_MAX) kept_length = replaced_utf8_length(name_of(found[kept]));
                    size_t length = replaced_utf8_length(name_of(alias));
                    if (length < kept_length) {
                        kept = next;
                        kept_length = length;
                    }
                }
            }
            starts_.push_back(found[kept].start);
            ends_.push_back(found[kept].start + (found[kept].size ? found[kept].size : 1));
            sizes.push_back(found[kept].size);
            names_.push_back(name_of(found[kept]));
            i = next;
        }
        for (size_t i = 0; i + 1 < starts_.size(); i++) {
            if (sizes[i] == 0) ends_[i] = starts_[i + 1];  // unsized: runs to the next symbol
        }
        break;
    }
}

const std::string* ElfObject::function_at(uint64_t vaddr) const {
    auto after = std::upper_bound(starts_.begin(), starts_.end(), vaddr);
    if (after == starts_.begin()) return nullptr;
    size_t index = size_t(after - starts_.begin()) - 1;
    return vaddr < ends_[index] ? &names_[index] : nullptr;
}

bool ElfObject::has_dwarf() {
    if (dwarf_state_ != 0) return dwarf_state_ > 0;
    dwarf_state_ = -1;
    if (!ok_ || section_named(".debug_info") == nullptr) return false;
    auto dwarf = std::make_unique<Dwarf>();
    struct Wanted {
        const char* name;
        std::vector<uint8_t>* data;
        bool* present;
    } wanted[] = {
        {".debug_info", &dwarf->info, nullptr},
        {".debug_abbrev", &dwarf->abbrev, nullptr},
        {".debug_line", &dwarf->line, nullptr},
        {".debug_str", &dwarf->str, nullptr},
        {".debug_line_str", &dwarf->line_str, nullptr},
        {".debug_ranges", &dwarf->ranges, &dwarf->have_ranges},
        {".debug_rnglists", &dwarf->rnglists, &dwarf->have_rnglists},
        {".debug_aranges", &dwarf->aranges_bytes, &dwarf->have_aranges},
        {".debug_addr", &dwarf->addr, nullptr},
        {".debug_str_offsets", &dwarf->str_offsets, nullptr},
    };
    for (const Wanted& w : wanted) {
        const Section* section = section_named(w.name);
        if (section == nullptr) continue;
        if (!read_section(*section, w.data)) return false;
        if (w.present) *w.present = true;
    }
    try {
        if (dwarf->have_aranges) dwarf->read_aranges();
    } catch (const Malformed&) {
        return false;  // the former reader built its address table first, and gave up on any error
    }
    dwarf_ = std::move(dwarf);
    dwarf_state_ = 1;
    return true;
}

bool ElfObject::frames(uint64_t vaddr, std::vector<DwarfFrame>* out) {
    out->clear();
    if (!has_dwarf()) return true;
    try {
        ParsedUnit* parsed = dwarf_->cu_at(vaddr);
        if (parsed == nullptr) return true;
        LineTable& lines = dwarf_->table(*parsed);
        bool have_line = false;
        std::string line_file;
        int64_t line_number = 0;
        {
            auto after = std::upper_bound(lines.rows.begin(), lines.rows.end(), vaddr,
                                          [](uint64_t v, const LineRow& row) { return v < row.address; });
            if (after != lines.rows.begin() && (after - 1)->order != 0) {
                have_line = true;
                line_file = dwarf_->file_name(*parsed, (after - 1)->file);
                line_number = (after - 1)->line;
            }
        }
        // The subprogram holding vaddr and the inlined subroutines inside it, outermost first.
        std::vector<uint32_t> chain;
        int64_t function = dwarf_->function_at(*parsed, vaddr);
        if (function >= 0) {
            chain.push_back(uint32_t(function));
            uint32_t scope = uint32_t(function);
            bool descended = true;
            while (descended) {
                descended = false;
                FOR_EACH_CHILD(*parsed, scope, child) {
                    uint64_t tag = parsed->dies[child].abbrev->tag;
                    if (tag != TAG_subprogram && tag != TAG_inlined_subroutine && tag != TAG_lexical_block) continue;
                    if (!dwarf_->contains(*parsed, parsed->dies[child].offset, vaddr)) continue;
                    if (tag != TAG_lexical_block) chain.push_back(child);
                    scope = child;
                    descended = true;
                    break;
                }
            }
        }
        for (size_t i = 0; i < chain.size(); i++) {
            DwarfFrame frame;
            auto name = dwarf_->die_name(*parsed, parsed->dies[chain[i]].offset);
            frame.name = std::move(name.first);
            frame.linkage = name.second;
            if (i + 1 < chain.size()) {
                const uint64_t wanted[] = {AT_call_file, AT_call_line};
                Value values[2];
                dwarf_->read_attributes(parsed->unit, parsed->dies[chain[i + 1]].offset, wanted, values, 2);
                frame.has_file = values[0].present;
                if (values[0].present) frame.file = dwarf_->file_name(*parsed, values[0].raw);
                frame.line = values[1].present
                                 ? (values[1].form == FORM_sdata ? int64_t(values[1].raw) : int64_t(values[1].raw))
                                 : 0;
            } else {
                frame.has_file = have_line;
                frame.file = line_file;
                frame.line = have_line ? line_number : 0;
            }
            out->push_back(std::move(frame));
        }
        if (out->empty() && have_line) out->push_back({"", false, true, line_file, line_number});
        return true;
    } catch (const Malformed&) {
        out->clear();
        return false;
    } catch (const std::bad_alloc&) {
        out->clear();
        return false;
    }
}

bool ElfObject::all_line_rows(std::vector<std::vector<LineRow>>* out) {
    out->clear();
    if (!has_dwarf()) return true;
    try {
        uint64_t at = 0;
        while (at < dwarf_->info.size()) {
            ParsedUnit* parsed = dwarf_->unit_at(at);
            const Unit& unit = parsed->unit;
            if (unit.top_stmt_list.present) {
                // Unsorted, as decoded: rebuild rather than reuse the sorted cache.
                ParsedUnit fresh;
                fresh.unit = unit;
                dwarf_->table(fresh, false);
                out->push_back(fresh.lines.rows);
            }
            at = unit.end;
        }
        return true;
    } catch (const Malformed&) {
        return false;
    }
}

bool inflate_exact(const uint8_t* data, uint64_t length, uint64_t size, std::vector<uint8_t>* out) {
    out->clear();
    if (length > kMaxSectionBytes || size > kMaxSectionBytes) return false;
#ifdef MEMPROF_NO_ZLIB
    (void)data;  // built without zlib's header (setup.py): a compressed section reads as absent
    return false;
#else
    z_stream stream;
    memset(&stream, 0, sizeof stream);
    if (inflateInit(&stream) != Z_OK) return false;
    stream.next_in = const_cast<Bytef*>(data);
    stream.avail_in = uInt(length);
    // Grown as output comes, not sized from the header: a lying header costs only what the
    // stream really holds.
    int status = Z_OK;
    while (status == Z_OK && out->size() < size) {
        size_t done = out->size();
        size_t chunk = size_t(std::min<uint64_t>(size - done, std::max<uint64_t>(done, 1 << 16)));
        out->resize(done + chunk);
        stream.next_out = out->data() + done;
        stream.avail_out = uInt(chunk);
        status = inflate(&stream, Z_NO_FLUSH);
        out->resize(done + chunk - stream.avail_out);
        if (status == Z_OK && stream.avail_out == chunk) break;  // no progress: truncated input
    }
    // Exactly ``size`` bytes and the stream's end (zlib says so only once it has seen the trailer).
    if (status == Z_OK && out->size() == size) {
        Bytef extra;
        stream.next_out = &extra;
        stream.avail_out = 1;
        status = inflate(&stream, Z_FINISH);
    }
    bool whole = status == Z_STREAM_END && out->size() == size;
    inflateEnd(&stream);
    if (!whole) out->clear();
    return whole;
#endif
}

size_t replaced_utf8_length(const std::string& bytes) {
    // Python's decoder replaces each maximal subpart of an ill-formed sequence with one U+FFFD.
    size_t count = 0, i = 0, n = bytes.size();
    auto at = [&](size_t k) { return uint8_t(bytes[k]); };
    while (i < n) {
        uint8_t b = at(i);
        count++;
        if (b < 0x80) { i++; continue; }
        unsigned need;
        uint8_t low = 0x80, high = 0xBF;
        if (b >= 0xC2 && b <= 0xDF) need = 1;
        else if (b >= 0xE0 && b <= 0xEF) {
            need = 2;
            if (b == 0xE0) low = 0xA0;
            if (b == 0xED) high = 0x9F;
        } else if (b >= 0xF0 && b <= 0xF4) {
            need = 3;
            if (b == 0xF0) low = 0x90;
            if (b == 0xF4) high = 0x8F;
        } else { i++; continue; }
        size_t j = i + 1;
        for (unsigned k = 0; k < need; k++, j++) {
            if (j >= n) break;
            uint8_t c = at(j);
            if (c < (k == 0 ? low : 0x80) || c > (k == 0 ? high : 0xBF)) break;
        }
        i = j;
    }
    return count;
}

}  // namespace memprof
