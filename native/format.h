// The capture stream: record kinds and their byte encoding, shared by the recorder and the reader.
//
// A capture file is
//
//   "MEMPROF\0"  u16 format_version  u16 reserved  u32 header_length  header (JSON, UTF-8)
//   LZ4 frame (readable by python's lz4.frame) whose content is a sequence of records.
//
// The memory sink (pytest plugin) and the socket sink (live view) carry the same records,
// uncompressed and without the file header. Every record starts with one byte, its kind:
//
//   kind < 32           ALLOC      size  address  zigzag(stack - prev_stack)
//   32 <= kind < 48     FREE       address  [size, for munmap only]
//   ADDRESS_LOW         low        -- the next ALLOC/FREE's address is not a multiple of 16:
//                                     these are its low 4 bits
//   THREAD              tid                      -- following events come from this thread
//   THREAD_NAME         tid  len  bytes
//   FRAME               len name  len file  first_line           -- id = number of FRAMEs so far
//   NODE                parent  frame  line                       -- id = number of NODEs so far + 1
//   SAMPLE              ms_since_start  rss_bytes
//   MARK                id  len  bytes                            -- e.g. a pytest phase boundary
//   TRAILER             ms_since_start  records_written            -- absent when the process died
//
// An aggregated capture (header "aggregated": true) holds no ALLOC/FREE events: the tracked
// process aggregated them itself and wrote, after its FRAME/NODE/THREAD_NAME tables,
//
//   AGG_STACK           tid  kind  stack  peak_bytes peak_count  leak_bytes leak_count
//                       total_bytes total_count  temporary_bytes temporary_count
//   AGG_SAMPLE          ms_since_start  heap_bytes  rss_bytes
//   AGG_SUMMARY         peak_bytes  peak_ms  unmatched_frees  n  n x histogram count
//
// Version 2 added native stacks (records written only with native=True):
//
//   kind | 0x80 (alloc) NATIVE ALLOC  the ALLOC fields, then zigzag(native - prev_native)
//   ENTRY_NODE          as NODE, for a Python frame that entered the C eval loop anew (called
//                       from C): hybrid stacks match these to the eval frames of the native stack
//   NATIVE_NODE         parent  address   -- id = number of NATIVE_NODEs so far + 1; a return
//                       address under its caller's node (native node 0 is the empty stack)
//   MAPS                -- the executable mappings change: the MAP records that follow replace
//                       the current set (at start, after each dlopen and dlclose)
//   MAP                 start  end  load_base  len path  len build_id   -- one executable segment
//                       of a loaded object; address - load_base is the object's own (ELF) virtual
//                       address; build_id is its GNU build ID (raw bytes, empty if none)
//
// Version 4 added
//
//   EVAL_NATIVE_NODE    as NATIVE_NODE, for a return address inside the interpreter's eval loop
//                       (told at run time from the loop's markers on the C stack, so also where
//                       the interpreter's symbols are stripped)
//
// An address field is either 2 * d, for the address of the ALLOC/FREE/munmap d events back
// (0 < d < kRecentEvents; a block is usually freed, and its address handed out again, soon after
// it was last seen), or 2 * zigzag((addr >> 4) - (base >> 4)) + 1, plus the low bits from a
// preceding ADDRESS_LOW. The base of an ALLOC is the previous ALLOC's address in the same size
// class (size_class below: an allocator hands out neighbouring blocks of one class), the base of a
// FREE the previous FREE's address; each record makes its address the base, however it was
// written. Bases, the event count and the recent addresses start empty (and again at each pytest
// window). Versions 1 and 2 wrote ALLOC as  zigzag(addr - prev)  size  stack  and FREE as
// zigzag(addr - prev), with one prev for both: up to 8 times larger compressed; still read.
//
// All integers are unsigned LEB128 varints; zigzag maps signed deltas to unsigned. Node 0 is the
// empty stack. A stack is a trie node: (parent node, frame, line), so an event carries one integer.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace memprof {

constexpr char kMagic[8] = {'M', 'E', 'M', 'P', 'R', 'O', 'F', '\0'};
constexpr uint16_t kFormatVersion = 4;  // the version this code writes and the newest it reads
constexpr uint16_t kFirstSizeClassVersion = 3;  // address coding by size class (see above)
constexpr uint8_t kNativeAllocFlag = 0x80;
constexpr size_t kFileHeaderFixed = 16;
constexpr uint32_t kMaxHeaderLength = 1 << 20;
constexpr size_t kMaxStringLength = 1 << 16;
constexpr unsigned kAddressShift = 4;
constexpr uintptr_t kAddressAlign = uintptr_t{1} << kAddressShift;
constexpr size_t kSizeClasses = 64;
constexpr uint64_t kRecentEvents = uint64_t{1} << 16;  // how far back an address may point

// 0..32 for sizes up to 512 (pymalloc's 16-byte classes), then one class per power of two.
inline unsigned size_class(uint64_t size) {
    if (size <= 512) return static_cast<unsigned>((size + 15) >> 4);
    unsigned bits = 64u - static_cast<unsigned>(__builtin_clzll(size - 1));  // 10.. for 513..
    return bits + 23 < kSizeClasses ? bits + 23 : kSizeClasses - 1;
}

// One list drives the allocator kinds: (enumerator, record byte, user-facing name, is_free).
#define MEMPROF_ALLOCATOR_KINDS(X)                 \
    X(MALLOC, 1, "malloc", false)                  \
    X(CALLOC, 2, "calloc", false)                  \
    X(REALLOC, 3, "realloc", false)                \
    X(POSIX_MEMALIGN, 4, "posix_memalign", false)  \
    X(ALIGNED_ALLOC, 5, "aligned_alloc", false)    \
    X(MEMALIGN, 6, "memalign", false)              \
    X(VALLOC, 7, "valloc", false)                  \
    X(PVALLOC, 8, "pvalloc", false)                \
    X(MMAP, 9, "mmap", false)                      \
    X(PY_RAW_MALLOC, 10, "PyMem_RawMalloc", false) \
    X(PY_RAW_CALLOC, 11, "PyMem_RawCalloc", false) \
    X(PY_RAW_REALLOC, 12, "PyMem_RawRealloc", false) \
    X(PY_MEM_MALLOC, 13, "PyMem_Malloc", false)    \
    X(PY_MEM_CALLOC, 14, "PyMem_Calloc", false)    \
    X(PY_MEM_REALLOC, 15, "PyMem_Realloc", false)  \
    X(PY_OBJ_MALLOC, 16, "PyObject_Malloc", false) \
    X(PY_OBJ_CALLOC, 17, "PyObject_Calloc", false) \
    X(PY_OBJ_REALLOC, 18, "PyObject_Realloc", false) \
    X(FREE, 32, "free", true)                      \
    X(MUNMAP, 33, "munmap", true)                  \
    X(PY_RAW_FREE, 34, "PyMem_RawFree", true)      \
    X(PY_MEM_FREE, 35, "PyMem_Free", true)         \
    X(PY_OBJ_FREE, 36, "PyObject_Free", true)

enum Kind : uint8_t {
#define MEMPROF_KIND_ENUM(name, value, label, is_free) name = value,
    MEMPROF_ALLOCATOR_KINDS(MEMPROF_KIND_ENUM)
#undef MEMPROF_KIND_ENUM
    THREAD = 64,
    THREAD_NAME = 65,
    FRAME = 66,
    NODE = 67,
    SAMPLE = 68,
    MARK = 69,
    TRAILER = 70,
    AGG_STACK = 80,
    AGG_SAMPLE = 81,
    AGG_SUMMARY = 82,
    ENTRY_NODE = 71,
    NATIVE_NODE = 72,
    MAPS = 73,
    MAP = 74,
    ADDRESS_LOW = 75,
    EVAL_NATIVE_NODE = 76,
};

constexpr bool is_alloc_kind(uint8_t kind) { return kind >= 1 && kind < 32; }
constexpr bool is_free_kind(uint8_t kind) { return kind >= 32 && kind < 48; }

inline const char* kind_name(uint8_t kind) {
    switch (kind) {
#define MEMPROF_KIND_NAME(name, value, label, is_free) \
    case value:                                        \
        return label;
        MEMPROF_ALLOCATOR_KINDS(MEMPROF_KIND_NAME)
#undef MEMPROF_KIND_NAME
        case THREAD: return "THREAD";
        case THREAD_NAME: return "THREAD_NAME";
        case FRAME: return "FRAME";
        case NODE: return "NODE";
        case SAMPLE: return "SAMPLE";
        case MARK: return "MARK";
        case TRAILER: return "TRAILER";
        case AGG_STACK: return "AGG_STACK";
        case AGG_SAMPLE: return "AGG_SAMPLE";
        case AGG_SUMMARY: return "AGG_SUMMARY";
        case ENTRY_NODE: return "ENTRY_NODE";
        case NATIVE_NODE: return "NATIVE_NODE";
        case MAPS: return "MAPS";
        case MAP: return "MAP";
        case ADDRESS_LOW: return "ADDRESS_LOW";
        case EVAL_NATIVE_NODE: return "EVAL_NATIVE_NODE";
        default: return nullptr;
    }
}

inline uint64_t zigzag(int64_t value) {
    return (static_cast<uint64_t>(value) << 1) ^ static_cast<uint64_t>(value >> 63);
}
inline int64_t unzigzag(uint64_t value) {
    return static_cast<int64_t>(value >> 1) ^ -static_cast<int64_t>(value & 1);
}

// Writes a varint at `out` (which must have 10 bytes free) and returns the new end.
inline uint8_t* put_varint(uint8_t* out, uint64_t value) {
    while (value >= 0x80) {
        *out++ = static_cast<uint8_t>(value) | 0x80;
        value >>= 7;
    }
    *out++ = static_cast<uint8_t>(value);
    return out;
}

// Bounds-checked reads over untrusted bytes: every get returns false instead of reading past end.
struct Cursor {
    const uint8_t* pos;
    const uint8_t* end;

    bool get_byte(uint8_t* out) {
        if (pos >= end) return false;
        *out = *pos++;
        return true;
    }
    bool get_varint(uint64_t* out) {
        uint64_t result = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            if (pos >= end) return false;
            uint8_t byte = *pos++;
            result |= static_cast<uint64_t>(byte & 0x7f) << shift;
            if (!(byte & 0x80)) {
                *out = result;
                return true;
            }
        }
        return false;  // more than 10 bytes: not a varint we wrote
    }
    bool get_bytes(size_t length, const uint8_t** out) {
        if (static_cast<size_t>(end - pos) < length) return false;
        *out = pos;
        pos += length;
        return true;
    }
};

}  // namespace memprof
