// Decoding the record stream (docs/capture-format.md) into one typed record per kind, handed to a
// consumer: the aggregating Reader, or the Dumper behind `memprof parse`.
//
// The decoder owns what the stream itself defines: the running values (delta bases, recent
// addresses, last stack ids, the current thread), how many frames and stack nodes exist (so an id
// is checked before any consumer sees it), and the stream's clock and trailer. A consumer only
// acts on whole, valid records; one that finds a record it cannot accept (a table full) returns
// why, and the decoder reports the record as corrupt.
#pragma once

#include <cstdint>
#include <cstdio>
#include <string>
#include <vector>

#include "format.h"

namespace memprof {

// Stack ids of allocations that carry a native stack are kHybridStack | an index (reader.h): a
// capture holds fewer Python stack nodes than that.
constexpr uint32_t kHybridStack = 0x80000000u;
constexpr uint64_t kMaxNodes = kHybridStack - 1;
constexpr uint64_t kMaxNativeNodes = UINT32_MAX - 1;
// Never a real allocation's address (none ends the address space): the reader's tables' empty key.
constexpr uint64_t kNoAddress = ~0ULL;
// The line of a stand-in stack node for one a damaged block defined (no real line is this).
constexpr uint32_t kLostLine = UINT32_MAX;

struct AllocRecord {
    uint8_t allocator;  // an allocator kind (format.h), without the native flag
    uint64_t tid;
    uint64_t address;
    uint64_t size;
    uint32_t stack;
    bool has_native;
    uint32_t native;  // the native stack node, when has_native
};

struct FreeRecord {
    uint8_t allocator;  // a deallocator kind
    uint64_t tid;
    uint64_t address;
    uint64_t size;  // munmap only: the length unmapped
};

struct ThreadRecord {
    uint64_t tid;
};

struct ThreadNameRecord {
    uint64_t tid;
    std::string name;
};

struct FrameRecord {
    std::string function;
    std::string file;
    uint32_t first_line;
};

struct NodeRecord {
    uint32_t parent;
    uint32_t frame;
    uint32_t line;
    bool entry;  // ENTRY_NODE: the frame entered a new C eval loop
};

struct NativeNodeRecord {
    uint32_t parent;
    uint64_t address;  // a return address
    int32_t map;       // set by the Reader: index in maps() of the mapping holding it when read, or -1
    bool eval;         // EVAL_NATIVE_NODE: the address is in the interpreter's eval loop
};

struct MapsRecord {};

struct MapRecord {
    uint64_t start;
    uint64_t end;
    uint64_t load_base;
    std::string path;
    std::string build_id;  // raw bytes; "" if the object had none
};

struct SampleRecord {
    uint64_t ms;
    uint64_t rss;
};

struct MarkRecord {
    uint64_t id;
    std::string label;
};

struct TrailerRecord {
    uint64_t ms;
    uint64_t records;
};

// Opens every block of a version 5 stream (written as it goes): what the stream held before it.
struct SyncRecord {
    uint64_t records;
    uint64_t events;  // ALLOC/FREE events (munmap included) since the stream began
    uint64_t frames;
    uint64_t nodes;
    uint64_t native_nodes;
    uint64_t tid;
    bool after_loss;  // set by the decoder: blocks before this one were lost; tables need padding
};

struct Figures {
    uint64_t bytes;
    uint64_t count;
};

struct AggStackRecord {
    uint64_t tid;
    uint8_t allocator;
    uint32_t stack;
    uint32_t native = 0;  // AGG_NATIVE_STACK: the native node under the Python stack, else 0
    Figures at_peak, leaked, total, temporary;
};

struct AggSampleRecord {
    uint64_t ms;
    uint64_t heap;
    uint64_t rss;
};

constexpr size_t kHistogramBuckets = 65;  // bucket i counts sizes in [2^(i-1), 2^i)
constexpr size_t kAllocatorSlots = 64;    // one per record kind an allocator can have (format.h)

struct AggSummaryRecord {
    uint64_t peak;
    uint64_t peak_ms;
    uint64_t unmatched_frees;
    uint64_t histogram[kHistogramBuckets];
};

// What decoding one record gave.
enum class Decoded { RECORD, NEED_MORE, CORRUPT };

class Decoder {
  public:
    explicit Decoder(uint16_t version = kFormatVersion) : d_version(version) {}

    void set_version(uint16_t version) { d_version = version; }
    uint16_t version() const { return d_version; }

    // Decodes the record at `cursor` and hands it to `consumer` (see the consumers' `on` methods).
    // NEED_MORE leaves the cursor anywhere: the caller retries from the record's start with more
    // bytes. CORRUPT sets error().
    template <typename Consumer>
    Decoded next(Cursor& cursor, Consumer& consumer);

    // A new window (a pytest test): the running values start again, the tables stay.
    void reset_window();

    const std::string& error() const { return d_error; }
    uint64_t records() const { return d_records; }
    uint64_t end_ms() const { return d_end_ms; }  // the latest time the stream gave
    uint64_t last_ms() const { return d_last_ms; }
    bool saw_trailer() const { return d_saw_trailer; }
    uint64_t tid() const { return d_tid; }

    // A damaged block was skipped: records until the next SYNC are refused; that SYNC tells what
    // was lost. `max_table_records` bounds the frames and nodes the lost blocks could have held.
    void lost_block(uint64_t max_table_records) {
        d_lost = true;
        d_lost_budget += max_table_records;
    }
    bool waiting_for_sync() const { return d_lost; }
    uint64_t lost_events() const { return d_lost_events; }
    uint64_t events() const { return d_all_events; }

  private:
    template <typename Consumer>
    Decoded decode_alloc(Cursor& cursor, uint8_t kind, Consumer& consumer);
    template <typename Consumer>
    Decoded decode_free(Cursor& cursor, uint8_t kind, Consumer& consumer);
    template <typename Consumer>
    Decoded decode_table(Cursor& cursor, uint8_t kind, Consumer& consumer);
    template <typename Consumer>
    Decoded decode_event(Cursor& cursor, uint8_t kind, Consumer& consumer);
    template <typename Consumer>
    Decoded decode_aggregate(Cursor& cursor, uint8_t kind, Consumer& consumer);

    bool decode_address(uint64_t field, uint64_t* base, uint64_t* address);
    bool get_string(Cursor& cursor, std::string* out);
    // A get that failed: the record is cut short (more bytes will come), or it held an oversized string.
    Decoded short_read(const Cursor& cursor) {
        return cursor.pos > cursor.end ? corrupt("an oversized string") : Decoded::NEED_MORE;
    }
    Decoded corrupt(const char* what);
    Decoded accepted(const char* refusal) { return refusal ? corrupt(refusal) : done(); }
    Decoded done() {
        ++d_records;
        if (d_end_ms < d_last_ms) d_end_ms = d_last_ms;
        return Decoded::RECORD;
    }

    uint16_t d_version;
    // Running values (reset per window).
    uint64_t d_last_address = 0;                  // versions 1 and 2: one base for every address
    uint64_t d_last_by_class[kSizeClasses] = {};  // version 3: the base of each size class
    uint64_t d_last_freed = 0;
    uint64_t d_address_low = 0;  // from an ADDRESS_LOW record, for the next ALLOC/FREE
    uint64_t d_events = 0;       // ALLOC/FREE events decoded
    std::vector<uint64_t> d_recent;  // the last kRecentEvents addresses, by event number
    uint32_t d_last_stack = 0;
    uint32_t d_last_native = 0;
    uint64_t d_tid = 0;
    // What the stream defined so far (kept across windows).
    uint64_t d_frames = 0;
    uint64_t d_nodes = 0;
    uint64_t d_native_nodes = 0;
    uint64_t d_records = 0;
    uint64_t d_all_events = 0;
    bool d_lost = false;
    uint64_t d_lost_budget = 0;
    uint64_t d_lost_events = 0;
    uint64_t d_last_ms = 0;
    uint64_t d_end_ms = 0;
    bool d_saw_trailer = false;
    std::string d_error;
};

// ---- the record kinds, one small function per group ---------------------------------------------

// Inline: once an event, and its call cost a fifth of it.
inline bool Decoder::decode_address(uint64_t field, uint64_t* base, uint64_t* address) {
    if (d_version < kFirstSizeClassVersion) {
        *address = *base + static_cast<uint64_t>(unzigzag(field));
    } else if (field & 1) {
        *address = (((*base >> kAddressShift) + static_cast<uint64_t>(unzigzag(field >> 1))) << kAddressShift) |
                   d_address_low;
    } else {
        uint64_t distance = field >> 1;
        if (distance == 0 || distance >= kRecentEvents || distance > d_events || d_address_low) return false;
        *address = d_recent[(d_events + 1 - distance) & (kRecentEvents - 1)];
    }
    d_address_low = 0;
    if (d_version >= kFirstSizeClassVersion) {
        if (d_recent.empty()) d_recent.resize(kRecentEvents);
        d_recent[++d_events & (kRecentEvents - 1)] = *address;
    }
    *base = *address;
    return true;
}

template <typename Consumer>
Decoded Decoder::next(Cursor& cursor, Consumer& consumer) {
    uint8_t kind;
    if (!cursor.get_byte(&kind)) return Decoded::NEED_MORE;
    if (d_lost && kind != SYNC) return corrupt("a block after a damaged one that does not open with a SYNC record");
    uint8_t allocator = kind & static_cast<uint8_t>(~kNativeAllocFlag);
    if (is_alloc_kind(allocator) && is_allocator_kind(allocator)) return decode_alloc(cursor, kind, consumer);
    if (is_free_kind(kind) && is_allocator_kind(kind)) return decode_free(cursor, kind, consumer);
    switch (kind) {
        case THREAD_NAME:
        case FRAME:
        case NODE:
        case ENTRY_NODE:
        case NATIVE_NODE:
        case EVAL_NATIVE_NODE:
        case MAPS:
        case MAP:
            return decode_table(cursor, kind, consumer);
        case ADDRESS_LOW:
        case THREAD:
        case SAMPLE:
        case MARK:
        case TRAILER:
        case SYNC:
            return decode_event(cursor, kind, consumer);
        case AGG_STACK:
        case AGG_SAMPLE:
        case AGG_SUMMARY:
        case AGG_NATIVE_STACK:
            return decode_aggregate(cursor, kind, consumer);
        default: {
            char what[64];
            snprintf(what, sizeof(what), "an unknown record kind 0x%02x", kind);
            return corrupt(what);
        }
    }
}

template <typename Consumer>
Decoded Decoder::decode_alloc(Cursor& cursor, uint8_t kind, Consumer& consumer) {
    AllocRecord record{};
    record.allocator = kind & static_cast<uint8_t>(~kNativeAllocFlag);
    record.has_native = kind & kNativeAllocFlag;
    record.tid = d_tid;
    uint64_t address_field, stack_delta, native_delta = 0;
    bool size_first = d_version >= kFirstSizeClassVersion;  // versions 1 and 2 wrote the address first
    if (size_first ? !cursor.get_varint(&record.size) || !cursor.get_varint(&address_field)
                   : !cursor.get_varint(&address_field) || !cursor.get_varint(&record.size)) {
        return short_read(cursor);
    }
    if (!cursor.get_varint(&stack_delta) || (record.has_native && !cursor.get_varint(&native_delta))) {
        return short_read(cursor);
    }
    uint64_t* base = size_first ? &d_last_by_class[size_class(record.size)] : &d_last_address;
    if (!decode_address(address_field, base, &record.address)) {
        return corrupt("an address that refers to no recent event");
    }
    int64_t stack = static_cast<int64_t>(d_last_stack) + unzigzag(stack_delta);
    if (stack < 0 || static_cast<uint64_t>(stack) > d_nodes) return corrupt("an unknown stack id");
    // No allocator returns the last byte of the address space; the reader's tables reserve that key.
    if (record.address == kNoAddress || record.address + record.size < record.address) {
        return corrupt("an allocation at an impossible address");
    }
    int64_t native = static_cast<int64_t>(d_last_native) + unzigzag(native_delta);
    if (record.has_native && (native < 0 || static_cast<uint64_t>(native) > d_native_nodes)) {
        return corrupt("an unknown native stack id");
    }
    record.stack = d_last_stack = static_cast<uint32_t>(stack);
    if (record.has_native) record.native = d_last_native = static_cast<uint32_t>(native);
    ++d_all_events;
    return accepted(consumer.on(record));
}

template <typename Consumer>
Decoded Decoder::decode_free(Cursor& cursor, uint8_t kind, Consumer& consumer) {
    FreeRecord record{kind, d_tid, 0, 0};
    uint64_t address_field;
    if (!cursor.get_varint(&address_field)) return short_read(cursor);
    if (kind == MUNMAP && !cursor.get_varint(&record.size)) return short_read(cursor);
    uint64_t* base = d_version >= kFirstSizeClassVersion ? &d_last_freed : &d_last_address;
    if (!decode_address(address_field, base, &record.address)) {
        return corrupt("an address that refers to no recent event");
    }
    ++d_all_events;
    return accepted(consumer.on(record));
}

template <typename Consumer>
Decoded Decoder::decode_table(Cursor& cursor, uint8_t kind, Consumer& consumer) {
    switch (kind) {
        case THREAD_NAME: {
            ThreadNameRecord record;
            if (!cursor.get_varint(&record.tid) || !get_string(cursor, &record.name)) return short_read(cursor);
            return accepted(consumer.on(record));
        }
        case FRAME: {
            FrameRecord record;
            uint64_t line;
            if (!get_string(cursor, &record.function) || !get_string(cursor, &record.file) ||
                !cursor.get_varint(&line)) {
                return short_read(cursor);
            }
            record.first_line = static_cast<uint32_t>(line);
            ++d_frames;
            return accepted(consumer.on(record));
        }
        case NODE:
        case ENTRY_NODE: {
            uint64_t parent, frame, line;
            if (!cursor.get_varint(&parent) || !cursor.get_varint(&frame) || !cursor.get_varint(&line)) {
                return short_read(cursor);
            }
            if (parent > d_nodes) return corrupt("a stack whose parent is unknown");
            if (frame >= d_frames) return corrupt("a stack whose frame is unknown");
            if (d_nodes >= kMaxNodes) return corrupt("more stack nodes than a capture can hold");
            ++d_nodes;
            NodeRecord record{static_cast<uint32_t>(parent), static_cast<uint32_t>(frame), static_cast<uint32_t>(line),
                              kind == ENTRY_NODE};
            return accepted(consumer.on(record));
        }
        case NATIVE_NODE:
        case EVAL_NATIVE_NODE: {
            uint64_t parent, address;
            if (!cursor.get_varint(&parent) || !cursor.get_varint(&address)) return short_read(cursor);
            if (parent > d_native_nodes) return corrupt("a native stack whose parent is unknown");
            if (d_native_nodes >= kMaxNativeNodes) return corrupt("more native stack nodes than a capture can hold");
            ++d_native_nodes;
            NativeNodeRecord record{static_cast<uint32_t>(parent), address, -1, kind == EVAL_NATIVE_NODE};
            return accepted(consumer.on(record));
        }
        case MAPS:
            return accepted(consumer.on(MapsRecord{}));
        default: {  // MAP
            MapRecord record;
            if (!cursor.get_varint(&record.start) || !cursor.get_varint(&record.end) ||
                !cursor.get_varint(&record.load_base) || !get_string(cursor, &record.path) ||
                !get_string(cursor, &record.build_id)) {
                return short_read(cursor);
            }
            if (record.start >= record.end) return corrupt("a mapping that ends before it starts");
            return accepted(consumer.on(record));
        }
    }
}

template <typename Consumer>
Decoded Decoder::decode_event(Cursor& cursor, uint8_t kind, Consumer& consumer) {
    switch (kind) {
        case ADDRESS_LOW: {
            uint64_t low;
            if (!cursor.get_varint(&low)) return short_read(cursor);
            if (d_version < kFirstSizeClassVersion || low == 0 || low >= kAddressAlign) {
                return corrupt("an invalid ADDRESS_LOW");
            }
            d_address_low = low;
            return done();
        }
        case THREAD: {
            ThreadRecord record;
            if (!cursor.get_varint(&record.tid)) return short_read(cursor);
            d_tid = record.tid;
            return accepted(consumer.on(record));
        }
        case SAMPLE: {
            SampleRecord record;
            if (!cursor.get_varint(&record.ms) || !cursor.get_varint(&record.rss)) return short_read(cursor);
            d_last_ms = record.ms;
            return accepted(consumer.on(record));
        }
        case MARK: {
            MarkRecord record;
            if (!cursor.get_varint(&record.id) || !get_string(cursor, &record.label)) return short_read(cursor);
            return accepted(consumer.on(record));
        }
        case SYNC: {
            SyncRecord record{};
            if (!cursor.get_varint(&record.records) || !cursor.get_varint(&record.events) ||
                !cursor.get_varint(&record.frames) || !cursor.get_varint(&record.nodes) ||
                !cursor.get_varint(&record.native_nodes) || !cursor.get_varint(&record.tid)) {
                return short_read(cursor);
            }
            if (d_version < kFirstSyncVersion) return corrupt("a SYNC record in a capture older than version 5");
            if (!d_lost) {
                if (record.records != d_records || record.events != d_all_events || record.frames != d_frames ||
                    record.nodes != d_nodes || record.native_nodes != d_native_nodes) {
                    return corrupt("a SYNC record that disagrees with the stream before it");
                }
            } else {
                if (record.records < d_records || record.events < d_all_events || record.frames < d_frames ||
                    record.nodes < d_nodes || record.native_nodes < d_native_nodes) {
                    return corrupt("a SYNC record behind the stream before it");
                }
                uint64_t padding = (record.frames - d_frames) + (record.nodes - d_nodes) +
                                   (record.native_nodes - d_native_nodes);
                if (padding > d_lost_budget || record.nodes > kMaxNodes || record.native_nodes > kMaxNativeNodes) {
                    return corrupt("a SYNC record claiming more than the lost blocks could hold");
                }
                if (record.nodes > d_nodes && record.frames == 0) return corrupt("a SYNC record with stacks but no frames");
                record.after_loss = true;
            }
            reset_window();
            d_tid = record.tid;
            const char* refusal = consumer.on(record);
            if (refusal) return corrupt(refusal);
            if (record.after_loss) d_lost_events += record.events - d_all_events;
            d_records = record.records;
            d_all_events = record.events;
            d_frames = record.frames;
            d_nodes = record.nodes;
            d_native_nodes = record.native_nodes;
            d_lost = false;
            d_lost_budget = 0;
            return done();
        }
        default: {  // TRAILER
            TrailerRecord record;
            if (!cursor.get_varint(&record.ms) || !cursor.get_varint(&record.records)) return short_read(cursor);
            d_last_ms = d_end_ms = record.ms;
            d_saw_trailer = true;
            return accepted(consumer.on(record));
        }
    }
}

template <typename Consumer>
Decoded Decoder::decode_aggregate(Cursor& cursor, uint8_t kind, Consumer& consumer) {
    if (kind == AGG_STACK || kind == AGG_NATIVE_STACK) {
        AggStackRecord record;
        uint64_t allocator, stack, native = 0;
        Figures* figures[] = {&record.at_peak, &record.leaked, &record.total, &record.temporary};
        if (!cursor.get_varint(&record.tid) || !cursor.get_varint(&allocator) || !cursor.get_varint(&stack) ||
            (kind == AGG_NATIVE_STACK && !cursor.get_varint(&native))) {
            return short_read(cursor);
        }
        for (Figures* pair : figures) {
            if (!cursor.get_varint(&pair->bytes) || !cursor.get_varint(&pair->count)) return short_read(cursor);
        }
        if (allocator > 0xff || !is_alloc_kind(static_cast<uint8_t>(allocator)) ||
            !kind_name(static_cast<uint8_t>(allocator))) {
            return corrupt("an aggregate of an unknown allocator");
        }
        if (stack > d_nodes) return corrupt("an aggregate of an unknown stack");
        if (kind == AGG_NATIVE_STACK && d_version < kFirstAggNativeVersion) {
            return corrupt("an AGG_NATIVE_STACK record in a capture older than version 6");
        }
        if (kind == AGG_NATIVE_STACK && (native == 0 || native > d_native_nodes)) {
            return corrupt("an aggregate of an unknown native stack");
        }
        record.native = static_cast<uint32_t>(native);
        record.allocator = static_cast<uint8_t>(allocator);
        record.stack = static_cast<uint32_t>(stack);
        return accepted(consumer.on(record));
    }
    if (kind == AGG_SAMPLE) {
        AggSampleRecord record;
        if (!cursor.get_varint(&record.ms) || !cursor.get_varint(&record.heap) || !cursor.get_varint(&record.rss)) {
            return short_read(cursor);
        }
        d_last_ms = record.ms;
        return accepted(consumer.on(record));
    }
    AggSummaryRecord record{};  // AGG_SUMMARY
    uint64_t buckets;
    if (!cursor.get_varint(&record.peak) || !cursor.get_varint(&record.peak_ms) ||
        !cursor.get_varint(&record.unmatched_frees) || !cursor.get_varint(&buckets)) {
        return short_read(cursor);
    }
    if (buckets > kHistogramBuckets) return corrupt("a histogram with too many buckets");
    for (uint64_t i = 0; i < buckets; ++i) {
        if (!cursor.get_varint(&record.histogram[i])) return short_read(cursor);
    }
    return accepted(consumer.on(record));
}

}  // namespace memprof
