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
#include <cstring>
#include <map>
#include <memory>
#include <tuple>
#include <string>
#include <unordered_map>
#include <vector>

#include "decoder.h"
#include "huge_pages.h"
#include "dumper.h"
#include "flat_map.h"
#include "follower.h"
#include "format.h"

struct LZ4F_dctx_s;
struct XXH32_state_s;

namespace memprof {

// Stack ids of allocations that carry a native stack: kHybridStack (decoder.h) | index into
// stack_pairs(). Others are Python trie nodes, as in version 1.

struct StackRow {
    uint32_t stack;
    uint64_t tid;
    uint8_t allocator;
    uint64_t bytes;
    uint64_t count;
};

struct IntervalRow {
    uint32_t stack;
    uint64_t tid;
    uint8_t allocator;
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

// One allocation or deallocation as recorded, for Capture.allocation_records (set_event_log).
struct EventRow {
    uint64_t ms;
    uint64_t tid;
    uint64_t address;
    uint64_t size;      // a free's is 0 (munmap: the length unmapped)
    uint32_t stack;     // as in StackRow; 0 for a deallocation (its stack is not recorded)
    uint8_t allocator;  // the record's kind (format.h): an allocator or a deallocator
    bool deallocation;
};

// Which allocations a report shows (pytest_memprof.model.View has the same values).
enum View { PEAK = 0, LEAKS = 1, TEMPORARY = 2, TOTAL = 3 };

// One stack's figures, as an aggregated capture keeps them: (bytes, count) at the peak, leaked,
// in total and in temporary allocations.
struct AggregateRow {
    uint64_t tid;
    uint8_t allocator;
    uint32_t stack;
    uint64_t figures[8];
};

// Why a capture cannot be read at all; the binding raises one exception type per value.
enum class ReadError : uint8_t {
    NONE = 0,
    CANNOT_OPEN,
    NOT_A_CAPTURE,    // wrong magic bytes
    TOO_SHORT,        // a file too short to hold the fixed header
    NEWER_VERSION,    // written by a newer format than this reader knows
    INVALID_VERSION,  // version 0
    CORRUPT_HEADER,   // a header cut short
    NOT_A_FILE,       // a FIFO, a device, a folder: refused before a byte is read (a FIFO would block)
    HEADER_TOO_LONG,  // a header length above kMaxHeaderLength: refused before it is read
    HEADER_TOO_DEEP,  // JSON nested deeper than kMaxHeaderDepth (no header we write nests past 3)
};

// How much a file's reader reads, and (before version 5) decompresses, at a time. Reading goes into
// one bounded buffer that holds at most a block and a read (see Reader::read_some), so a report's
// memory does not grow with the file.
constexpr size_t kFileStep = 256 << 10;

// Bytes that are not zero-filled when allocated: a buffer sized for the largest block an LZ4 frame
// may declare (4 MiB) only becomes resident where a block is actually written.
class ByteBuffer {
  public:
    uint8_t* data() { return d_data.get(); }
    const uint8_t* data() const { return d_data.get(); }
    size_t capacity() const { return d_capacity; }
    // At least `size` bytes, keeping the first `keep`.
    void reserve(size_t size, size_t keep = 0) {
        if (size <= d_capacity) return;
        std::unique_ptr<uint8_t[]> bigger(new uint8_t[size]);  // default-initialised: not zero-filled
        if (keep) memcpy(bigger.get(), d_data.get(), keep);
        d_data = std::move(bigger);
        d_capacity = size;
    }

  private:
    std::unique_ptr<uint8_t[]> d_data;
    size_t d_capacity = 0;
};

class Reader {
  public:
    Reader(uint64_t only_tid, bool temporal, uint32_t temporary_threshold);
    ~Reader();

    // A capture's own bytes (fixed header, JSON header, LZ4 frame) are read from a file (open, then
    // read_some) or taken as they arrive from a socket (feed_capture); both go through one decoder.
    // A capture that cannot be read at all stops with read_error() (and problem_text() saying it);
    // corrupt data after a valid header only stops decoding there (error(), truncated()).

    // Opens `path` and reads its header; false if it cannot be read (read_error()).
    bool open(const std::string& path);
    // Reads and replays up to `budget` compressed bytes; returns false when the stream is done.
    bool read_some(size_t budget);
    uint64_t bytes_read() const { return d_offset; }
    uint64_t file_size() const { return d_file_size; }
    // Bytes a file is read at a time (kFileStep unless set; the tests read with tiny steps), and the
    // most the input buffer has held: a block and a read, whatever the file's size.
    void set_read_step(size_t step) { d_read_step = step ? step : 1; }
    size_t input_buffer_capacity() const { return d_input_high; }
    // Takes the next `len` bytes of a capture stream named `source`, decompressing at most `step`
    // bytes at a time (a peer may send an LZ4 bomb); false once it stops (whole, corrupt, refused).
    bool feed_capture(const uint8_t* data, size_t len, size_t step);
    void set_source(const std::string& source) { d_source = source; }
    bool header_done() const { return d_input != Input::HEADER && d_read_error == ReadError::NONE; }
    const std::string& header_json() const { return d_header_json; }
    bool frame_done() const { return d_frame_done; }
    ReadError read_error() const { return d_read_error; }
    std::string problem_text() const;

    // Memory input: whole records, as the memory sink hands them out.
    bool feed(const uint8_t* data, size_t len);
    // feed() for the tracker's memory sink to call on its own thread as the records are written
    // (tracker::follow); while it may, nothing else touches this reader. A failure (memory ran
    // out) is kept for follow_failed().
    FollowerEntry follower() { return {&Reader::feed_followed, this}; }
    bool follow_failed() const { return d_follow_failed; }
    // Forgets events, their aggregates and the decoder's delta state (the tracker resets its own
    // at resume), keeps frames, stacks and thread names. `only_tid` filters the new window.
    void reset_window(uint64_t only_tid = 0);
    // The window's records are all in: it reads as a whole capture (not truncated) until the next.
    void close_window() { d_window_closed = true; }

    // Writes one text line per record to `out` instead of aggregating (memprof parse).
    void set_dump(FILE* out);

    // Results.
    // Why decoding stopped or skipped: corruption, damaged blocks and what they lost; "" if neither.
    std::string error() const;
    // Blocks whose checksum failed (version 5 skips each and resumes at the next).
    uint64_t damaged_blocks() const { return d_damaged_blocks; }
    // ALLOC/FREE events in the skipped blocks, as the next good block's SYNC tells; events after a
    // damaged block with no good one after it are not counted (lost_tail() says so).
    uint64_t lost_events() const { return d_decoder.lost_events(); }
    bool lost_tail() const { return d_decoder.waiting_for_sync(); }
    bool truncated() const { return d_truncated || !(d_decoder.saw_trailer() || d_window_closed); }
    // A file that ends inside its LZ4 frame (cut short, not stopped at corruption): the bytes after
    // the last whole frame element, which were read but cannot be decoded; 0 when it ends at a
    // block's end. A block is decoded only whole, since its checksum covers it whole: a block cut
    // by one byte loses all its events. kCutUnknown before version 5, whose LZ4 stream is buffered
    // inside the decompression context, which does not say how much it holds.
    static constexpr uint64_t kCutUnknown = UINT64_MAX;
    uint64_t cut_bytes() const { return d_cut_bytes; }
    // The whole size (size field, data, checksum) of the block the cut bytes begin; 0 if they do
    // not hold a block's size field (the frame header or the end mark is cut, or under 4 bytes).
    uint64_t cut_block_bytes() const { return d_cut_block_bytes; }
    bool saw_trailer() const { return d_decoder.saw_trailer(); }
    uint64_t peak_bytes() const { return d_peak; }
    uint64_t peak_ms() const { return d_peak_ms; }
    uint64_t current_bytes() const { return d_heap; }
    uint64_t end_ms() const { return d_decoder.end_ms(); }
    // Where the current window began (its first sample, see reset_window); 0 for a whole stream.
    uint64_t start_ms() const { return d_start_ms == kNoStart ? 0 : d_start_ms; }
    uint64_t total_allocations() const { return d_total_count; }
    uint64_t total_bytes() const { return d_total_bytes; }
    uint64_t records() const { return d_decoder.records(); }
    uint64_t unmatched_frees() const { return d_unmatched_frees; }
    std::vector<StackRow> rows(View view, bool merge_threads, bool merge_allocators, bool largest_first = true) const;
    // Every stack, thread and allocator with its four figures (what an aggregated capture writes).
    std::vector<AggregateRow> aggregates() const;
    std::vector<IntervalRow> intervals();
    const std::vector<TimelineRow>& timeline() const { return d_timeline; }
    const std::vector<FrameRecord>& frames() const { return d_frames; }
    const std::vector<NodeRecord>& nodes() const { return d_nodes; }
    const std::vector<NativeNodeRecord>& native_nodes() const { return d_native_nodes; }
    const std::vector<MapRecord>& maps() const { return d_maps; }
    // (Python node, native node) of each hybrid stack id.
    const std::vector<std::pair<uint32_t, uint32_t>>& stack_pairs() const { return d_pairs; }
    uint16_t format_version() const { return d_decoder.version(); }
    // Native nodes known when the current window began (reset_window): a window's own records
    // define the ones after.
    size_t native_nodes_at_window() const { return d_native_nodes_at_window; }
    // Records replayed since the current window began.
    uint64_t window_records() const { return d_decoder.records() - d_records_at_window; }
    const std::map<uint64_t, std::string>& thread_names() const { return d_thread_names; }
    const std::vector<uint64_t>& threads_seen() const { return d_threads_seen; }
    const uint64_t* allocator_counts() const { return d_allocator_counts; }
    const uint64_t* allocator_bytes() const { return d_allocator_bytes; }
    const uint64_t* histogram() const { return d_histogram; }
    struct Mark {
        uint64_t id;
        std::string label;
        uint64_t heap;  // bytes live when the mark was written
    };
    const std::vector<Mark>& marks() const { return d_marks; }
    // Keep every event (after the thread filter) as it is replayed, for take_events(): the
    // record-by-record view; off by default, since a long capture holds millions.
    void set_event_log(bool on) { d_event_log = on; }
    std::vector<EventRow> take_events() {
        std::vector<EventRow> out;
        out.swap(d_events);
        return out;
    }

  private:
    struct Acc {
        uint32_t stack;
        uint8_t allocator;
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

    friend class Decoder;  // hands each decoded record to on()

    enum class Input { HEADER, RECORDS, STOPPED };

    bool refuse(ReadError error);
    bool check_fixed_header();
    // Takes bytes of the header until it is whole; returns how many of `len` it used.
    size_t take_header(const uint8_t* data, size_t len);
    // Decompresses and replays LZ4 frame bytes; false once the stream stopped.
    bool take_records(const uint8_t* data, size_t len, size_t step);
    bool finish_records();
    // Version 5: the LZ4 frame parsed block by block (lz4_Frame_format.md), so a block whose
    // checksum fails is skipped rather than ending the stream.
    bool take_blocks(const uint8_t* data, size_t len);
    bool take_frame_header();
    bool decode_block(const uint8_t* block, size_t size, bool stored);
    bool block_damaged(const char* why);
    // The file ended: records what the bytes not yet parsed were (cut_bytes).
    void note_cut();
    // Parses the version 5 frame bytes held in d_frame_in.
    bool parse_blocks();
    // Makes room for `len` more bytes at the end of d_frame_in (dropping what is parsed).
    uint8_t* frame_room(size_t len);
    // Parses whole records from d_pending; keeps an incomplete tail for the next call.
    bool parse_pending(bool at_end);
    // Parses decompressed bytes where they lie when nothing is left over from before; only an
    // incomplete tail is copied (to d_pending).
    bool parse_output(const uint8_t* data, size_t len);
    // Replays the whole records from cursor.pos on; leaves cursor at the first one not whole.
    bool parse_records(Cursor& cursor, bool at_end);

    // The decoder's consumer: each takes one valid record; a non-null result is why the record
    // cannot be taken (the decoder then calls the capture corrupt there).
    const char* on(const AllocRecord& record);
    const char* on(const FreeRecord& record);
    const char* on(const ThreadRecord& record);
    const char* on(ThreadNameRecord& record);
    const char* on(FrameRecord& record);
    const char* on(const NodeRecord& record);
    const char* on(NativeNodeRecord& record);
    const char* on(const MapsRecord& record);
    const char* on(MapRecord& record);
    const char* on(const SampleRecord& record);
    const char* on(MarkRecord& record);
    const char* on(const TrailerRecord&) { return nullptr; }
    const char* on(const SyncRecord& record);
    const char* on(const AggStackRecord& record);
    const char* on(const AggSampleRecord& record);
    const char* on(const AggSummaryRecord& record);

    void on_free(uint64_t address, uint64_t tid);
    void on_munmap(uint64_t address, uint64_t size, uint64_t tid);
    void release(Live& live, uint64_t bytes, bool whole, uint64_t tid);
    uint32_t slot_for(uint64_t tid) {
        // Inline: up to three calls an event, nearly all of the same thread as the last (out of
        // line, the slow path's register saves made it ~25 instructions: 7% of a replay).
        if (__builtin_expect(tid == d_last_tid && d_last_slot != UINT32_MAX, 1)) return d_last_slot;
        return new_slot_for(tid);
    }
    uint32_t new_slot_for(uint64_t tid);  // another thread than the last event's
    uint32_t acc_for(uint32_t stack, uint8_t allocator, uint64_t tid);
    void thread_seen(uint64_t tid);
    uint32_t hybrid_stack(uint32_t python, uint32_t native);
    int32_t map_of(uint64_t address);
    void change(Acc& acc, int64_t bytes, int64_t count);
    bool fail(const std::string& message);

    // Options.
    uint64_t d_only_tid;
    bool d_temporal;
    uint32_t d_temporary_threshold;
    std::unique_ptr<Dumper> d_dumper;  // memprof parse: records are printed, not aggregated

    // Input.
    std::string d_source;  // the file's path or the stream's name, for problem_text()
    bool d_stream = false;
    Input d_input = Input::HEADER;
    ReadError d_read_error = ReadError::NONE;
    int d_errno = 0;
    const char* d_file_type = "";  // what a NOT_A_FILE path is
    std::vector<uint8_t> d_head;  // the header as it arrives
    uint16_t d_header_version = 0;
    uint32_t d_header_length = 0;
    std::string d_header_json;
    FILE* d_file = nullptr;
    LZ4F_dctx_s* d_dctx = nullptr;
    uint64_t d_offset = 0;  // capture bytes taken so far
    uint64_t d_file_size = 0;
    bool d_frame_done = false;
    size_t d_read_step = kFileStep;
    size_t d_input_high = 0;  // the most bytes d_in and d_frame_in have held (input_buffer_capacity)
    ByteBuffer d_in;   // before version 5: a read of the file
    ByteBuffer d_out;  // decompressed output: one block (version 5) or one step
    std::vector<uint8_t> d_pending;
    size_t d_pending_pos = 0;
    bool d_follow_failed = false;
    static void feed_followed(void* reader, const uint8_t* data, size_t len) noexcept;

    // Tables (persist across windows).
    Decoder d_decoder;
    std::vector<FrameRecord> d_frames;
    std::vector<NodeRecord> d_nodes;  // index = node id - 1
    std::vector<NativeNodeRecord> d_native_nodes;  // index = native node id - 1
    size_t d_native_nodes_at_window = 0;
    uint64_t d_records_at_window = 0;
    bool d_window_closed = false;
    std::vector<MapRecord> d_maps;                 // every distinct mapping seen
    std::map<std::tuple<uint64_t, uint64_t, uint64_t, std::string, std::string>, uint32_t> d_map_ids;
    std::vector<uint32_t> d_current_maps;  // the latest MAPS set, sorted by start when d_maps_sorted
    bool d_maps_sorted = true;
    std::vector<std::pair<uint32_t, uint32_t>> d_pairs;
    FlatMap<uint32_t, uint64_t, HugePageAllocator> d_pair_ids;  // (python << 32 | native) -> index in d_pairs
    // Per native node id: the pair hybrid_stack answered last for it, tried before d_pair_ids (a
    // native stack mostly comes with one Python stack; a loop's few call sites in turn defeat a
    // one-entry memo). UINT32_MAX: none yet.
    struct PairHint {
        uint32_t python = 0;
        uint32_t pair = UINT32_MAX;
    };
    std::vector<PairHint> d_pair_hints;
    std::map<uint64_t, std::string> d_thread_names;
    std::vector<uint64_t> d_threads_seen;
    std::vector<Mark> d_marks;
    bool d_event_log = false;
    std::vector<EventRow> d_events;
    bool d_truncated = false;
    std::string d_error;
    // Version 5 framing.
    bool d_blocks = false;        // the frame is parsed by take_blocks
    bool d_frame_header = false;  // its header is read
    bool d_linked = false, d_block_checksum = false, d_content_checksum = false;
    size_t d_block_max = 0;
    ByteBuffer d_frame_in;  // frame bytes: [d_frame_pos, d_frame_len) are not parsed yet
    size_t d_frame_len = 0;
    size_t d_frame_pos = 0;
    uint64_t d_frame_in_offset = 0;  // capture offset of d_frame_in[0]
    std::vector<uint8_t> d_dict;      // linked blocks: the last 64 KiB of output
    XXH32_state_s* d_content_hash = nullptr;  // the frame's content checksum, when it has one
    bool d_content_hash_ok = true;           // no block was skipped: the content checksum applies
    uint64_t d_damaged_blocks = 0;
    uint64_t d_first_damage = 0;  // the byte offset of the first damaged block
    uint64_t d_cut_bytes = 0;
    uint64_t d_cut_block_bytes = 0;

    // Aggregates (reset per window).
    std::vector<Acc, HugePageAllocator<Acc>> d_accs;
    FlatMap<uint32_t, uint64_t, HugePageAllocator> d_acc_index;  // (stack, allocator, tid slot) -> acc
    uint64_t d_last_acc_key = 0;     // acc_for's last key and answer (UINT32_MAX: none)
    uint32_t d_last_acc = UINT32_MAX;
    // Per stack id (Python and hybrid apart): the acc acc_for answered last for it in window
    // d_window, tried before d_acc_index. Windows are numbered, so a new one clears nothing.
    struct AccHint {
        uint32_t acc = 0;
        uint32_t window = 0;
    };
    std::vector<AccHint> d_python_hints, d_hybrid_hints;
    uint32_t d_window = 1;
    FlatMap<Live, uint64_t, HugePageAllocator> d_live;
    std::map<uint64_t, Live> d_mappings;  // mmap'd ranges by start address
    std::unordered_map<uint64_t, uint32_t> d_tid_slots;
    std::vector<uint64_t> d_slot_tids;
    // Allocations made so far by each thread slot: "temporary" counts the other allocations of
    // the same thread between an allocation and its free, as memray does (one thread's burst
    // does not make another's short-lived block long-lived).
    std::vector<uint64_t> d_slot_seqs;
    uint64_t d_last_tid = 0;
    uint32_t d_last_slot = UINT32_MAX;
    uint64_t d_heap = 0;
    uint64_t d_peak = 0;
    uint64_t d_peak_ms = 0;
    static constexpr uint64_t kNoStart = UINT64_MAX;
    uint64_t d_start_ms = 0;  // kNoStart from reset_window until the window's first sample
    uint64_t d_peak_version = 0;
    uint64_t d_total_count = 0;
    uint64_t d_total_bytes = 0;
    uint64_t d_unmatched_frees = 0;
    uint64_t d_allocator_counts[kAllocatorSlots] = {};
    uint64_t d_allocator_bytes[kAllocatorSlots] = {};
    uint64_t d_histogram[kHistogramBuckets] = {};
    std::vector<TimelineRow> d_timeline;
    std::map<std::tuple<uint32_t, uint32_t, uint32_t>, std::pair<uint64_t, uint64_t>> d_intervals;
};

}  // namespace memprof
