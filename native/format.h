// The capture format's names, in one place: the magic, the version, the limits, the record kinds,
// and the varint, zigzag and bounded-read helpers the recorder and the decoder share. What each
// record holds, how addresses are coded and what a reader must refuse: docs/capture-format.md.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>

namespace memprof {

constexpr char kMagic[8] = {'M', 'E', 'M', 'P', 'R', 'O', 'F', '\0'};
constexpr uint16_t kFormatVersion = 6;  // the version this code writes and the newest it reads
constexpr uint16_t kFirstAggNativeVersion = 6;  // AGG_NATIVE_STACK: aggregated captures with native stacks
constexpr uint16_t kFirstSyncVersion = 5;  // independent LZ4 blocks, each opening with a SYNC record
constexpr uint16_t kFirstSizeClassVersion = 3;  // addresses coded by size class and recent events
constexpr uint8_t kNativeAllocFlag = 0x80;
constexpr size_t kFileHeaderFixed = 16;
constexpr uint32_t kMaxHeaderLength = 1 << 20;
constexpr unsigned kMaxHeaderDepth = 64;  // JSON nesting of the header; ours nests 3 deep
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

// One list drives the allocators' record kinds: (enumerator, record byte, user-facing name).
#define MEMPROF_ALLOCATOR_KINDS(X)             \
    X(MALLOC, 1, "malloc")                     \
    X(CALLOC, 2, "calloc")                     \
    X(REALLOC, 3, "realloc")                   \
    X(POSIX_MEMALIGN, 4, "posix_memalign")     \
    X(ALIGNED_ALLOC, 5, "aligned_alloc")       \
    X(MEMALIGN, 6, "memalign")                 \
    X(VALLOC, 7, "valloc")                     \
    X(PVALLOC, 8, "pvalloc")                   \
    X(MMAP, 9, "mmap")                         \
    X(PY_RAW_MALLOC, 10, "PyMem_RawMalloc")    \
    X(PY_RAW_CALLOC, 11, "PyMem_RawCalloc")    \
    X(PY_RAW_REALLOC, 12, "PyMem_RawRealloc")  \
    X(PY_MEM_MALLOC, 13, "PyMem_Malloc")       \
    X(PY_MEM_CALLOC, 14, "PyMem_Calloc")       \
    X(PY_MEM_REALLOC, 15, "PyMem_Realloc")     \
    X(PY_OBJ_MALLOC, 16, "PyObject_Malloc")    \
    X(PY_OBJ_CALLOC, 17, "PyObject_Calloc")    \
    X(PY_OBJ_REALLOC, 18, "PyObject_Realloc")  \
    X(FREE, 32, "free")                        \
    X(MUNMAP, 33, "munmap")                    \
    X(PY_RAW_FREE, 34, "PyMem_RawFree")        \
    X(PY_MEM_FREE, 35, "PyMem_Free")           \
    X(PY_OBJ_FREE, 36, "PyObject_Free")

enum Kind : uint8_t {
#define MEMPROF_KIND_ENUM(name, value, label) name = value,
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
    AGG_NATIVE_STACK = 83,
    ENTRY_NODE = 71,
    NATIVE_NODE = 72,
    MAPS = 73,
    MAP = 74,
    ADDRESS_LOW = 75,
    EVAL_NATIVE_NODE = 76,
    SYNC = 77,
};

constexpr bool is_alloc_kind(uint8_t kind) { return kind >= 1 && kind < 32; }
constexpr bool is_free_kind(uint8_t kind) { return kind >= 32 && kind < 48; }

// Whether a byte is one of the allocators' record kinds: a table, since the decoder asks it of
// every record and the switch below is not inlined there.
struct AllocatorKindTable {
    bool known[256] = {};
    constexpr AllocatorKindTable() {
#define MEMPROF_KIND_KNOWN(name, value, label) known[value] = true;
        MEMPROF_ALLOCATOR_KINDS(MEMPROF_KIND_KNOWN)
#undef MEMPROF_KIND_KNOWN
    }
};
inline constexpr AllocatorKindTable kAllocatorKinds{};
constexpr bool is_allocator_kind(uint8_t kind) { return kAllocatorKinds.known[kind]; }

inline const char* kind_name(uint8_t kind) {
    switch (kind) {
#define MEMPROF_KIND_NAME(name, value, label) \
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
        case AGG_NATIVE_STACK: return "AGG_NATIVE_STACK";
        case ENTRY_NODE: return "ENTRY_NODE";
        case NATIVE_NODE: return "NATIVE_NODE";
        case MAPS: return "MAPS";
        case MAP: return "MAP";
        case ADDRESS_LOW: return "ADDRESS_LOW";
        case EVAL_NATIVE_NODE: return "EVAL_NATIVE_NODE";
        case SYNC: return "SYNC";
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
