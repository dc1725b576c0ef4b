// Encodes events into a buffer and hands full buffers to a sink.
//
// Locking: every method except the sink's own thread runs with the tracker lock held, so the
// stream is one ordered sequence. That order matters: an address freed by one thread and
// reused by another must appear as FREE then ALLOC. Per-thread buffers would need a global
// sequence number per event and a merge in the reader; one short critical section is cheaper
// for the event sizes we write (a few bytes).
#pragma once

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <iterator>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "follower.h"
#include "format.h"

namespace memprof {

// Joins `thread`, whose function stored its kernel thread id in `tid` (0: none yet), and waits
// (at most 200 ms) until the kernel has taken it off the process's task list. pthread_join returns
// once the kernel clears the thread's tid, which comes before that: for a moment after it,
// /proc/self/stat still counts the thread, and Python 3.12+, which reads that count in os.fork(),
// warns of a thread that is gone.
void join_until_gone(std::thread& thread, const std::atomic<long>& tid);

// This thread's kernel id, for join_until_gone.
long kernel_tid();

class Sink {
  public:
    virtual ~Sink() = default;
    // Takes `len` bytes of records. May swap `*buffer` for another buffer of the same capacity.
    virtual void consume(uint8_t** buffer, size_t len) = 0;
    // Finishes the stream (e.g. the LZ4 end mark) and releases resources; returns an error or "".
    virtual std::string close() = 0;
    // Bytes written so far that the caller may take (memory sink only); without `with_followed`,
    // only those after what the follower was handed (followed() is then 0).
    virtual std::string take(bool with_followed = true) {
        (void)with_followed;
        return std::string();
    }
    // Memory sink: `follower` (null: none) is handed each buffer of records as the recorder fills
    // it, on a thread of the sink's own (`thread_start` runs first on it), while the program goes
    // on; take() still returns every byte, and followed() how many at its start the follower had.
    // Setting another follower (or none) waits for the one before to finish what it was handed.
    virtual void follow(Follower, void*, void (*)()) {}
    // Recorder::take() is about to flush the last records for take(): they are the taker's to
    // replay, not handed to a follower (which the taker would then wait for).
    virtual void begin_take() {}
    virtual size_t followed() const { return 0; }
    // Around a fork from Python: our own threads are joined first, so the child inherits no
    // lock one of them held, and Python 3.12+ sees a single-threaded process (no fork warning).
    // While stopped, consume() compresses inline.
    virtual void stop_thread() {}
    virtual void start_thread() {}
    // From a signal handler, with the tracker lock held: writes `len` bytes of whole records as one
    // uncompressed block, using only async-signal-safe calls (no lock, no allocation). Waits a
    // bounded time for the writer thread to finish the block it is on; false if it cannot write.
    virtual bool write_in_signal(const uint8_t*, size_t) { return false; }
    // How many bytes of records the recorder gathers before it hands them over (0: its whole
    // buffer, Recorder::kBufferSize).
    virtual size_t block_size() const { return 0; }
};

// LZ4-frame file sink: writes the file header, then compresses what it is given. With a writer
// thread (`writer_start` not null: it runs first on that thread), compression and write(2) run
// beside the tracked program (a second core does them for free); without one they run inline.
std::unique_ptr<Sink> make_lz4_file_sink(int fd, const std::string& header_json, uint16_t version,
                                         void (*writer_start)(), std::string* error);
// The tracker's file sink (tracker_sink.cc, in the tracker's module only): its writer thread is
// guarded from its first instruction, so nothing it does is recorded.
std::unique_ptr<Sink> make_file_sink(int fd, const std::string& header_json, uint16_t version, bool threaded,
                                     std::string* error);
std::unique_ptr<Sink> make_memory_sink();

class Recorder {
  public:
    static constexpr size_t kBufferSize = 1 << 20;
    static constexpr size_t kMaxRecord = 64 + 2 * kMaxStringLength;

    void open(std::unique_ptr<Sink> sink);
    bool is_open() const { return d_sink != nullptr; }

    // Each event reserves its room before it looks up its address: a flush there starts a new
    // block, whose SYNC resets the recent-event table the lookup reads.
    void alloc(uint8_t kind, uintptr_t address, uint64_t size, uint32_t stack) {
        uint8_t* out = reserve(40);
        uint64_t distance = recent_distance(address);
        if (!distance) out = put_address_low(out, address);
        *out++ = kind;
        out = put_varint(out, size);
        out = put_address(out, address, distance, d_last_address_by_class[size_class(size)]);
        out = put_varint(out, zigzag(static_cast<int64_t>(stack) - static_cast<int64_t>(d_last_stack)));
        d_last_stack = stack;
        commit(out);
    }
    // An allocation with its native stack too.
    void alloc_native(uint8_t kind, uintptr_t address, uint64_t size, uint32_t stack, uint32_t native) {
        uint8_t* out = reserve(48);
        uint64_t distance = recent_distance(address);
        if (!distance) out = put_address_low(out, address);
        *out++ = kind | kNativeAllocFlag;
        out = put_varint(out, size);
        out = put_address(out, address, distance, d_last_address_by_class[size_class(size)]);
        out = put_varint(out, zigzag(static_cast<int64_t>(stack) - static_cast<int64_t>(d_last_stack)));
        out = put_varint(out, zigzag(static_cast<int64_t>(native) - static_cast<int64_t>(d_last_native)));
        d_last_stack = stack;
        d_last_native = native;
        commit(out);
    }
    void free(uint8_t kind, uintptr_t address) {
        uint8_t* out = reserve(24);
        uint64_t distance = recent_distance(address);
        if (!distance) out = put_address_low(out, address);
        *out++ = kind;
        commit(put_address(out, address, distance, d_last_freed));
    }
    void munmap(uintptr_t address, uint64_t size) {
        uint8_t* out = reserve(32);
        uint64_t distance = recent_distance(address);
        if (!distance) out = put_address_low(out, address);
        *out++ = MUNMAP;
        out = put_address(out, address, distance, d_last_freed);
        commit(put_varint(out, size));
    }
    void thread(uint64_t tid) {
        uint8_t* out = reserve(16);
        d_thread = tid;
        *out++ = THREAD;
        commit(put_varint(out, tid));
    }
    void thread_name(uint64_t tid, const std::string& name);
    void frame(const std::string& function, const std::string& file, uint64_t first_line);
    void node(uint32_t parent, uint32_t frame, uint64_t line, bool entry = false);
    void native_node(uint32_t parent, uintptr_t address, bool eval = false) {
        uint8_t* out = reserve(24);
        ++d_native_nodes;
        *out++ = eval ? EVAL_NATIVE_NODE : NATIVE_NODE;
        out = put_varint(out, parent);
        commit(put_varint(out, address));
    }
    void maps_begin() {
        uint8_t* out = reserve(1);
        *out++ = MAPS;
        commit(out);
    }
    void map(uintptr_t start, uintptr_t end, uintptr_t load_base, const std::string& path,
             const std::string& build_id);
    void sample(uint64_t ms, uint64_t rss);
    void mark(uint64_t id, const std::string& label);
    // Records of an aggregated capture (docs/capture-format.md): one stack's figures, one timeline point, the summary.
    // `native` 0: a Python stack only (AGG_STACK); else the native node under it (AGG_NATIVE_STACK).
    void agg_stack(uint64_t tid, uint8_t allocator, uint32_t stack, uint32_t native, const uint64_t (&figures)[8]);
    void agg_sample(uint64_t ms, uint64_t heap, uint64_t rss);
    void agg_summary(uint64_t peak, uint64_t peak_ms, uint64_t unmatched_frees, const uint64_t* histogram,
                     size_t buckets);
    // Records encoded elsewhere (a window of the tracker's stream), `records` of them, copied as they are.
    void raw(const uint8_t* data, size_t len, uint64_t records);
    void trailer(uint64_t ms);

    uint64_t records() const { return d_records; }
    // From now on every buffer handed to the sink starts with a SYNC record and decodes on its
    // own (docs/capture-format.md, version 5): a reader that finds a damaged block resumes at the
    // next one. Only for streams written as they go (the tracker's file); copies of a window
    // (raw()) cut records across buffers and never sync.
    void sync_blocks();
    // The next records decode as if the stream restarted (tracking resumed): a new block when
    // blocks sync, else reset_deltas().
    void restart_deltas();
    // The next records are encoded as if the stream started here (a pytest window).
    void reset_deltas() {
        std::fill(std::begin(d_last_address_by_class), std::end(d_last_address_by_class), 0);
        d_last_freed = 0;
        // Slots stamped before this event read as empty: the table is not cleared (128 KiB at
        // each pytest window and file block).
        d_window_start = d_events;
        d_last_stack = 0;
        d_last_native = 0;
    }
    // Hands the partial buffer to the sink, so a crash loses at most what came after.
    void flush();
    // flush() for a signal handler (the tracker lock held): the buffer goes out uncompressed,
    // through async-signal-safe calls only. Blocks that sync only (version 5 frames).
    void flush_in_signal();
    std::string take(bool with_followed = true);  // see Sink::take
    // Writes the trailer's stream end and closes the sink; returns an error message or "".
    std::string close();
    // After fork in a child that is not followed: forget the sink without writing to it.
    void abandon();
    Sink* sink() { return d_sink.get(); }

  private:
    // Starts a buffer with its SYNC record (the buffer is empty).
    void begin_block();
    uint8_t* reserve(size_t n) {
        if (d_used + n > d_block) flush();
        return d_buffer.get() + d_used;
    }
    void commit(uint8_t* end) {
        d_used = static_cast<size_t>(end - d_buffer.get());
        ++d_records;
    }
    uint8_t* put_string(uint8_t* out, const std::string& value);
    // Addresses travel as multiples of kAddressAlign; the rare other one is preceded by an
    // ADDRESS_LOW record (counted as a record of its own).
    uint8_t* put_address_low(uint8_t* out, uintptr_t address) {
        uintptr_t low = address & (kAddressAlign - 1);
        if (__builtin_expect(low == 0, 1)) return out;
        *out++ = ADDRESS_LOW;
        ++d_records;
        return put_varint(out, low);
    }
    // An address field (docs/capture-format.md): twice the distance back to the last event at this address when
    // there is a recent one, else the delta to its base, tagged with a 1 bit. The base follows
    // either way.
    static uint8_t* put_address(uint8_t* out, uintptr_t address, uint64_t distance, uintptr_t& base) {
        if (distance) {
            out = put_varint(out, distance << 1);
        } else {
            int64_t delta = static_cast<int64_t>((address >> kAddressShift) - (base >> kAddressShift));
            out = put_varint(out, (zigzag(delta) << 1) | 1);
        }
        base = address;
        return out;
    }
    // Counts this event and returns how many ALLOC/FREE events back the last one at ``address``
    // was, or 0 when it is not among the last kRecentEvents or the table forgot it (a direct-mapped
    // cache: a collision only costs a longer record, the decoder keeps every recent address).
    uint64_t recent_distance(uintptr_t address) {
        ++d_all_events;
        uint64_t event = ++d_events;
        RecentSlot& slot = d_recent[(static_cast<uint64_t>(address >> kAddressShift) * 0x9E3779B97F4A7C15ull) >>
                                    (64 - kRecentSlotBits)];
        uint64_t distance = slot.address == address && slot.event > d_window_start ? event - slot.event : 0;
        slot.address = address;
        slot.event = event;
        return distance < kRecentEvents ? distance : 0;
    }

    static constexpr unsigned kRecentSlotBits = 13;  // 128 KiB: 98% of py_alloc's events hit
    static constexpr size_t kRecentSlots = size_t{1} << kRecentSlotBits;
    struct RecentSlot {
        uintptr_t address;
        uint64_t event;
    };

    std::unique_ptr<Sink> d_sink;
    std::unique_ptr<uint8_t[]> d_buffer;
    size_t d_used = 0;
    size_t d_block = kBufferSize;  // the sink's block_size()
    // Delta bases: the last allocation of each size class (an allocator hands out neighbouring
    // blocks of one class: pymalloc from one pool), and the last freed address.
    uintptr_t d_last_address_by_class[kSizeClasses] = {};
    uintptr_t d_last_freed = 0;
    std::unique_ptr<RecentSlot[]> d_recent;
    uint64_t d_events = 0;        // ALLOC/FREE events so far
    uint64_t d_window_start = 0;  // d_events where the deltas last restarted
    uint32_t d_last_stack = 0;
    uint32_t d_last_native = 0;
    uint64_t d_records = 0;
    // What a SYNC record states: the stream so far, so a reader can tell what a lost block held.
    bool d_sync = false;
    size_t d_sync_used = 0;  // the buffer's length when it holds only its SYNC: nothing to flush
    uint64_t d_all_events = 0;  // ALLOC/FREE events since the stream began (windows do not reset it)
    uint64_t d_frames = 0;
    uint64_t d_nodes = 0;
    uint64_t d_native_nodes = 0;
    uint64_t d_thread = 0;
};

}  // namespace memprof
