// Replays a capture stream into aggregates, in one pass.
//
// Peak snapshot in one pass: each accumulator (stack, thread, allocator) keeps its current bytes
// and, lazily, its bytes as of the latest peak. A new peak bumps `d_peak_version`; before an
// accumulator changes, if its saved value belongs to an older version, its current value *is*
// its value at the latest peak (it has not changed since) and is saved first. At the end, an
// accumulator whose saved version is the latest reports the saved value, any other its current
// one. O(1) per event, no second pass, no snapshot copies.
#pragma once

#include <cstdint>
#include <cstdio>
#include <map>
#include <tuple>
#include <string>
#include <unordered_map>
#include <vector>

#include "flat_map.h"
#include "format.h"

struct LZ4F_dctx_s;

namespace memprof {

struct FrameRecord {
    std::string function;
    std::string file;
    uint32_t first_line;
};

struct NodeRecord {
    uint32_t parent;
    uint32_t frame;
    uint32_t line;
    bool entry;  // ENTRY_NODE: the frame entered a new C eval loop (see format.h)
};

struct NativeNodeRecord {
    uint32_t parent;
    uint64_t address;  // a return address
    int32_t map;       // index in maps() of the mapping holding it when recorded, or -1
    bool eval;         // EVAL_NATIVE_NODE: the address is in the interpreter's eval loop
};

struct MapRecord {
    uint64_t start;
    uint64_t end;
    uint64_t load_base;
    std::string path;
    std::string build_id;  // raw bytes; "" if the object had none
};

// Stack ids of allocations that carry a native stack: kHybridStack | index into stack_pairs().
// Others are Python trie nodes, as in version 1.
constexpr uint32_t kHybridStack = 0x80000000u;

struct StackRow {
    uint32_t stack;
    uint64_t tid;
    uint8_t kind;
    uint64_t bytes;
    uint64_t count;
};

struct IntervalRow {
    uint32_t stack;
    uint64_t tid;
    uint8_t kind;
    uint64_t allocated_ms;
    int64_t freed_ms;  // -1: still live at the end
    uint64_t bytes;
    uint64_t count;
};

struct TimelineRow {
    uint64_t ms;
    uint64_t heap;
    uint64_t rss;
};

enum Which { PEAK = 0, LEAKS = 1, TEMPORARY = 2, TOTAL = 3 };

// The live-allocation table's empty-slot key: never a real allocation's address.
constexpr uint64_t kNoAddress = ~0ULL;

class Reader {
  public:
    Reader(uint64_t only_tid, bool temporal, uint32_t temporary_threshold);
    ~Reader();

    // File input. open() checks the fixed header and returns the JSON header text.
    bool open(const std::string& path, std::string* header_json, std::string* error);
    // Reads and replays up to `budget` compressed bytes; returns false when the stream is done.
    bool read_some(size_t budget);
    uint64_t bytes_read() const { return d_file_offset; }
    uint64_t file_size() const { return d_file_size; }

    // Memory input: whole records, as the memory sink hands them out.
    bool feed(const uint8_t* data, size_t len);
    // Forgets events, their aggregates and the decoder's delta state (the tracker resets its own
    // at resume), keeps frames, stacks and thread names. `only_tid` filters the new window.
    void reset_window(uint64_t only_tid = 0);

    // Writes one text line per record to `out` instead of aggregating (memprof parse).
    void set_dump(FILE* out) { d_dump = out; }

    // Results.
    const std::string& error() const { return d_error; }
    bool truncated() const { return d_truncated || !d_saw_trailer; }
    bool saw_trailer() const { return d_saw_trailer; }
    uint64_t peak_bytes() const { return d_peak; }
    uint64_t peak_ms() const { return d_peak_ms; }
    uint64_t current_bytes() const { return d_heap; }
    uint64_t end_ms() const { return d_end_ms; }
    uint64_t total_allocations() const { return d_total_count; }
    uint64_t total_bytes() const { return d_total_bytes; }
    uint64_t records() const { return d_records; }
    uint64_t unmatched_frees() const { return d_unmatched_frees; }
    std::vector<StackRow> rows(Which which, bool merge_threads, bool merge_kinds) const;
    std::vector<IntervalRow> intervals();
    const std::vector<TimelineRow>& timeline() const { return d_timeline; }
    const std::vector<FrameRecord>& frames() const { return d_frames; }
    const std::vector<NodeRecord>& nodes() const { return d_nodes; }
    const std::vector<NativeNodeRecord>& native_nodes() const { return d_native_nodes; }
    const std::vector<MapRecord>& maps() const { return d_maps; }
    // (Python node, native node) of each hybrid stack id.
    const std::vector<std::pair<uint32_t, uint32_t>>& stack_pairs() const { return d_pairs; }
    uint16_t format_version() const { return d_version; }
    // Native nodes known when the current window began (reset_window): a window's own records
    // define the ones after.
    size_t native_nodes_at_window() const { return d_native_nodes_at_window; }
    const std::map<uint64_t, std::string>& thread_names() const { return d_thread_names; }
    const std::vector<uint64_t>& threads_seen() const { return d_threads_seen; }
    const uint64_t* kind_counts() const { return d_kind_counts; }
    const uint64_t* kind_bytes() const { return d_kind_bytes; }
    const uint64_t* histogram() const { return d_histogram; }
    struct Mark {
        uint64_t id;
        std::string label;
        uint64_t heap;  // bytes live when the mark was written
    };
    const std::vector<Mark>& marks() const { return d_marks; }

  private:
    struct Acc {
        uint32_t stack;
        uint8_t kind;
        uint64_t tid;
        int64_t cur_bytes, cur_count;
        int64_t saved_bytes, saved_count;
        uint64_t saved_for;
        uint64_t total_bytes, total_count;
        uint64_t temp_bytes, temp_count;
    };
    struct Live {
        uint64_t size;
        uint32_t acc;
        uint32_t sample;
        uint64_t seq;
    };

    // Parses whole records from d_pending; keeps an incomplete tail for the next call.
    bool parse_pending(bool at_end);
    // Returns 1 for a record, 0 if more bytes are needed, -1 on corrupt data (d_error set).
    int parse_record(Cursor& cursor);
    // The address an ALLOC/FREE field carries (format.h), decoded against its base (which it then
    // becomes); false if the field is impossible.
    bool decode_address(uint64_t field, uint64_t* base, uint64_t* address) {
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
    void on_alloc(uint8_t kind, uint64_t address, uint64_t size, uint32_t stack);
    void on_free(uint64_t address);
    void on_munmap(uint64_t address, uint64_t size);
    void release(Live& live, uint64_t bytes, bool whole);
    uint32_t acc_for(uint32_t stack, uint8_t kind);
    // One AGG_STACK record: tid, kind, stack, then (bytes, count) at the peak, leaked, total, temporary.
    void on_aggregate(const uint64_t* v);
    uint32_t hybrid_stack(uint32_t python, uint32_t native);
    int32_t map_of(uint64_t address);
    void change(Acc& acc, int64_t bytes, int64_t count);
    bool fail(const std::string& message);

    // Options.
    uint64_t d_only_tid;
    bool d_temporal;
    uint32_t d_temporary_threshold;
    FILE* d_dump = nullptr;

    // Input.
    FILE* d_file = nullptr;
    LZ4F_dctx_s* d_dctx = nullptr;
    uint64_t d_file_offset = 0;
    uint64_t d_file_size = 0;
    bool d_frame_done = false;
    std::vector<uint8_t> d_in;
    std::vector<uint8_t> d_pending;
    size_t d_pending_pos = 0;

    // Decoder state (persists across windows).
    uint64_t d_last_address = 0;                  // versions 1 and 2: one base for every address
    uint64_t d_last_by_class[kSizeClasses] = {};  // version 3: see format.h
    uint64_t d_last_freed = 0;
    uint64_t d_address_low = 0;  // from an ADDRESS_LOW record, for the next ALLOC/FREE
    uint64_t d_events = 0;       // ALLOC/FREE events decoded (in this window)
    std::vector<uint64_t> d_recent;  // the last kRecentEvents addresses, by event number
    uint32_t d_last_stack = 0;
    uint32_t d_last_native = 0;
    uint16_t d_version = kFormatVersion;
    uint64_t d_tid = 0;
    uint64_t d_records = 0;
    std::vector<FrameRecord> d_frames;
    std::vector<NodeRecord> d_nodes;  // index = node id - 1
    std::vector<NativeNodeRecord> d_native_nodes;  // index = native node id - 1
    size_t d_native_nodes_at_window = 0;
    std::vector<MapRecord> d_maps;                 // every distinct mapping seen
    std::map<std::tuple<uint64_t, uint64_t, uint64_t, std::string, std::string>, uint32_t> d_map_ids;
    std::vector<uint32_t> d_current_maps;  // the latest MAPS set, sorted by start when d_maps_sorted
    bool d_maps_sorted = true;
    std::vector<std::pair<uint32_t, uint32_t>> d_pairs;
    FlatMap<uint32_t> d_pair_ids;  // (python << 32 | native) -> index in d_pairs
    std::map<uint64_t, std::string> d_thread_names;
    std::vector<uint64_t> d_threads_seen;
    std::vector<Mark> d_marks;
    uint64_t d_last_ms = 0;
    uint64_t d_end_ms = 0;
    bool d_saw_trailer = false;
    bool d_truncated = false;
    std::string d_error;

    // Aggregates (reset per window).
    std::vector<Acc> d_accs;
    FlatMap<uint32_t> d_acc_index;  // (stack, kind, tid slot) -> acc
    FlatMap<Live> d_live;
    std::map<uint64_t, Live> d_mappings;  // mmap'd ranges by start address
    std::unordered_map<uint64_t, uint32_t> d_tid_slots;
    std::vector<uint64_t> d_slot_tids;
    uint32_t d_tid_slot = 0;
    uint64_t d_heap = 0;
    uint64_t d_peak = 0;
    uint64_t d_peak_ms = 0;
    uint64_t d_peak_version = 0;
    uint64_t d_alloc_seq = 0;
    uint64_t d_total_count = 0;
    uint64_t d_total_bytes = 0;
    uint64_t d_unmatched_frees = 0;
    uint64_t d_kind_counts[64] = {};
    uint64_t d_kind_bytes[64] = {};
    uint64_t d_histogram[65] = {};
    std::vector<TimelineRow> d_timeline;
    std::map<std::tuple<uint32_t, uint32_t, uint32_t>, std::pair<uint64_t, uint64_t>> d_intervals;
};

}  // namespace memprof
