#include "recorder.h"

#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <memory>

#include "lz4frame.h"
#include "xxhash.h"

namespace memprof {

long kernel_tid() { return syscall(SYS_gettid); }

void join_until_gone(std::thread& thread, const std::atomic<long>& tid) {
    thread.join();
    long id = tid.load();
    if (id <= 0) return;
    char path[64];
    snprintf(path, sizeof path, "/proc/self/task/%ld", id);
    struct stat status;
    // The kernel takes the thread off the list microseconds after the tid clear: yield to it a
    // few times first (a 100 us sleep is 150 us with the timer's slack, at every stop), then sleep.
    for (int tries = 0; tries < 2100 && stat(path, &status) == 0; ++tries) {
        if (tries < 100) {
            sched_yield();
            continue;
        }
        struct timespec pause = {0, 100 * 1000};
        nanosleep(&pause, nullptr);
    }
}
namespace {

bool write_all(int fd, const uint8_t* data, size_t len, std::string* error) {
    while (len > 0) {
        ssize_t n = ::write(fd, data, len);
        if (n < 0) {
            if (errno == EINTR) continue;
            *error = std::string("cannot write the capture file: ") + strerror(errno);
            return false;
        }
        data += n;
        len -= static_cast<size_t>(n);
    }
    return true;
}

class FileSink : public Sink {
  public:
    FileSink(int fd, void (*writer_start)()) : d_fd(fd), d_writer_start(writer_start), d_threaded(writer_start != nullptr) {}

    bool begin(const std::string& header_json, uint16_t version, std::string* error) {
        uint8_t fixed[kFileHeaderFixed] = {};
        memcpy(fixed, kMagic, sizeof(kMagic));
        fixed[8] = version & 0xff;
        fixed[9] = version >> 8;
        uint32_t length = static_cast<uint32_t>(header_json.size());
        for (int i = 0; i < 4; ++i) fixed[12 + i] = static_cast<uint8_t>(length >> (8 * i));
        if (!write_all(d_fd, fixed, sizeof(fixed), error)) return false;
        if (!write_all(d_fd, reinterpret_cast<const uint8_t*>(header_json.data()), header_json.size(), error)) {
            return false;
        }
        if (LZ4F_isError(LZ4F_createCompressionContext(&d_ctx, LZ4F_VERSION))) {
            *error = "cannot create an LZ4 compression context";
            return false;
        }
        memset(&d_prefs, 0, sizeof(d_prefs));
        // Version 5: one recorder buffer is one independent block (4 MiB blocks hold a 1 MiB
        // buffer whole; autoFlush ends the block there), so a reader can skip a damaged block
        // and decode the next one on its own (it opens with a SYNC record).
        bool independent = version >= kFirstSyncVersion;
        d_prefs.frameInfo.blockSizeID = independent ? LZ4F_max4MB : LZ4F_max256KB;
        d_prefs.frameInfo.blockMode = independent ? LZ4F_blockIndependent : LZ4F_blockLinked;
        // Block checksums let the reader tell a corrupt block from a valid one.
        d_prefs.frameInfo.blockChecksumFlag = LZ4F_blockChecksumEnabled;
        d_prefs.autoFlush = 1;
        d_independent = independent;
        // Not zero-filled: a block uses what it needs of it, and the rest is never touched (zeroing
        // the whole 1 MiB was 256 page faults at every start).
        d_out_size = LZ4F_compressBound(Recorder::kBufferSize, &d_prefs) + LZ4F_HEADER_SIZE_MAX;
        d_out.reset(new uint8_t[d_out_size]);
        size_t n = LZ4F_compressBegin(d_ctx, d_out.get(), d_out_size, &d_prefs);
        if (LZ4F_isError(n)) {
            *error = "cannot start the LZ4 frame";
            return false;
        }
        if (!write_all(d_fd, d_out.get(), n, error)) return false;
        d_spare_raw = new uint8_t[Recorder::kBufferSize];
        if (d_threaded) d_thread = std::thread([this] { run(); });
        return true;
    }

    void consume(uint8_t** buffer, size_t len) override {
        if (!d_threaded || !d_thread.joinable()) {
            compress(*buffer, len);
            return;
        }
        std::unique_lock<std::mutex> lock(d_mutex);
        d_cv.wait(lock, [this] { return !d_has_pending; });
        // The writer is idle: it takes the full buffer, the recorder gets the idle one back.
        std::swap(*buffer, d_spare_raw);
        d_pending_len = len;
        d_has_pending = true;
        d_writer_busy.store(true);
        d_cv.notify_all();
    }

    void stop_thread() override {
        if (!d_thread.joinable()) return;
        {
            std::unique_lock<std::mutex> lock(d_mutex);
            d_cv.wait(lock, [this] { return !d_has_pending; });
            d_stopping = true;
            d_cv.notify_all();
        }
        join_until_gone(d_thread, d_tid);
        d_stopping = false;
    }

    void start_thread() override {
        if (d_threaded && !d_thread.joinable() && d_ctx) d_thread = std::thread([this] { run(); });
    }

    std::string close() override {
        stop_thread();
        if (d_ctx) {
            size_t n = LZ4F_compressEnd(d_ctx, d_out.get(), d_out_size, nullptr);
            if (!LZ4F_isError(n) && d_error.empty()) write_all(d_fd, d_out.get(), n, &d_error);
            LZ4F_freeCompressionContext(d_ctx);
            d_ctx = nullptr;
        }
        if (d_fd >= 0 && ::close(d_fd) != 0 && d_error.empty()) {
            d_error = std::string("cannot close the capture file: ") + strerror(errno);
        }
        d_fd = -1;
        delete[] d_spare_raw;
        d_spare_raw = nullptr;
        return d_error;
    }

    ~FileSink() override {
        if (d_fd >= 0) close();
    }

    bool write_in_signal(const uint8_t* data, size_t len) override {
        if (!d_independent || !d_ctx || d_fd < 0 || !d_error.empty()) return false;
        // The writer thread may be writing its block: ours must not land inside it. Signals that
        // flush are blocked on that thread, so it is running and will finish.
        for (int waited = 0; d_writer_busy.load(); ++waited) {
            if (waited == 500) return false;
            struct timespec pause = {0, 1000000};
            nanosleep(&pause, nullptr);
        }
        // An LZ4 frame block stored as it is (the high bit of its size), then its XXH32.
        uint8_t size[4], sum[4];
        uint32_t word = static_cast<uint32_t>(len) | 0x80000000u;
        uint32_t hash = XXH32(data, len, 0);
        for (int i = 0; i < 4; ++i) {
            size[i] = static_cast<uint8_t>(word >> (8 * i));
            sum[i] = static_cast<uint8_t>(hash >> (8 * i));
        }
        return raw_write(size, 4) && raw_write(data, len) && raw_write(sum, 4);
    }

  private:
    bool raw_write(const uint8_t* data, size_t len) {
        while (len > 0) {
            ssize_t n = ::write(d_fd, data, len);
            if (n < 0) {
                if (errno == EINTR) continue;
                return false;
            }
            data += n;
            len -= static_cast<size_t>(n);
        }
        return true;
    }

    void run() {
        d_tid.store(kernel_tid());
        d_writer_start();
        for (;;) {
            uint8_t* data;
            size_t len;
            {
                std::unique_lock<std::mutex> lock(d_mutex);
                d_cv.wait(lock, [this] { return d_has_pending || d_stopping; });
                if (!d_has_pending) return;
                data = d_spare_raw;
                len = d_pending_len;
            }
            compress(data, len);
            std::lock_guard<std::mutex> lock(d_mutex);
            d_has_pending = false;
            d_writer_busy.store(false);
            d_cv.notify_all();
        }
    }

    void compress(const uint8_t* data, size_t len) {
        if (!d_error.empty() || len == 0) return;
        size_t n = LZ4F_compressUpdate(d_ctx, d_out.get(), d_out_size, data, len, nullptr);
        if (LZ4F_isError(n)) {
            d_error = std::string("LZ4 compression failed: ") + LZ4F_getErrorName(n);
            return;
        }
        write_all(d_fd, d_out.get(), n, &d_error);
    }

    int d_fd;
    void (*d_writer_start)();
    bool d_threaded;
    LZ4F_cctx* d_ctx = nullptr;
    LZ4F_preferences_t d_prefs;
    std::unique_ptr<uint8_t[]> d_out;
    size_t d_out_size = 0;
    uint8_t* d_spare_raw = nullptr;  // the writer's buffer: being compressed, or idle
    size_t d_pending_len = 0;
    bool d_has_pending = false;
    std::atomic<bool> d_writer_busy{false};  // d_has_pending, readable from a signal handler
    bool d_independent = false;
    bool d_stopping = false;
    std::string d_error;
    std::mutex d_mutex;
    std::condition_variable d_cv;
    std::thread d_thread;
    std::atomic<long> d_tid{0};  // d_thread's kernel id, once it runs
};

class MemorySink : public Sink {
  public:
    ~MemorySink() override { follow(nullptr, nullptr, nullptr); }

    void consume(uint8_t** buffer, size_t len) override {
        // Records from before the follower came stay ahead of what it is handed: it starts after
        // the next take(). The flush of a take() is the taker's. (Tracker lock held, as in
        // follow() and take().)
        if (!d_follower || !d_bytes.empty() || d_taking) {
            d_bytes.append(reinterpret_cast<const char*>(*buffer), len);
            return;
        }
        // A buffer of its own: the follower reads it without the lock while more arrive.
        std::unique_ptr<std::string> chunk(new std::string(reinterpret_cast<const char*>(*buffer), len));
        std::lock_guard<std::mutex> lock(d_mutex);
        d_chunks.push_back(std::move(chunk));
        d_cv.notify_all();
    }
    std::string close() override {
        follow(nullptr, nullptr, nullptr);
        return std::string();
    }
    void begin_take() override { d_taking = true; }
    // The follower is handed a block as it fills; what is left at a take() the taker replays,
    // after waiting for the block the follower is on. With 1 MiB blocks that was most of a big
    // test's last MiB, and up to a whole block's replay of waiting (numpy's test_numeric: 6.5 of
    // its 42 MB on the main thread); small tests write less than any block either way.
    size_t block_size() const override { return 64 << 10; }
    std::string take(bool with_followed) override {
        d_taking = false;
        std::unique_lock<std::mutex> lock(d_mutex);
        d_cv.wait(lock, [this] { return !d_busy; });
        d_followed = 0;
        std::string out;
        if (d_chunks.empty()) {
            out.swap(d_bytes);
            return out;
        }
        // Chunks are made only while d_bytes is empty (consume): what d_bytes holds now came after
        // them, once the follower was gone. Without the followed chunks (a taker that keeps no
        // file), a big test's records are not copied once more only to be skipped.
        size_t first = with_followed ? 0 : d_handed;
        size_t total = d_bytes.size();
        for (size_t i = first; i < d_chunks.size(); ++i) total += d_chunks[i]->size();
        out.reserve(total);
        if (with_followed) {
            for (size_t i = 0; i < d_handed; ++i) d_followed += d_chunks[i]->size();
        }
        for (size_t i = first; i < d_chunks.size(); ++i) out += *d_chunks[i];
        out += d_bytes;
        d_bytes.clear();
        d_chunks.clear();
        d_handed = 0;
        return out;
    }
    size_t followed() const override { return d_followed; }

    void follow(Follower follower, void* context, void (*thread_start)()) override {
        stop_thread();
        d_follower = follower;
        d_context = context;
        d_thread_start = thread_start;
        if (follower) start_thread();
    }
    // Around a fork from Python (and before another follower): the follower's thread is joined,
    // once done with what it was handed, and started again.
    void stop_thread() override {
        if (!d_thread.joinable()) return;
        {
            std::lock_guard<std::mutex> lock(d_mutex);
            d_stopping = true;
            d_cv.notify_all();
        }
        join_until_gone(d_thread, d_tid);
        d_stopping = false;
    }
    void start_thread() override {
        if (d_follower && !d_thread.joinable()) d_thread = std::thread(&MemorySink::run, this);
    }

  private:
    void run() {
        d_tid.store(kernel_tid());
        if (d_thread_start) d_thread_start();
        std::unique_lock<std::mutex> lock(d_mutex);
        for (;;) {
            d_cv.wait(lock, [this] { return d_stopping || d_handed < d_chunks.size(); });
            if (d_stopping) return;
            const std::string* chunk = d_chunks[d_handed].get();  // stays put until take()
            d_busy = true;
            lock.unlock();
            d_follower(d_context, reinterpret_cast<const uint8_t*>(chunk->data()), chunk->size());
            lock.lock();
            d_busy = false;
            ++d_handed;
            d_cv.notify_all();
        }
    }

    std::string d_bytes;  // records not in chunks: all of them when nothing follows
    // Following: each full buffer of the recorder, the first d_handed of them handed over.
    std::vector<std::unique_ptr<std::string>> d_chunks;
    size_t d_handed = 0;
    size_t d_followed = 0;  // of the last take()
    Follower d_follower = nullptr;
    void* d_context = nullptr;
    void (*d_thread_start)() = nullptr;
    bool d_busy = false;
    bool d_stopping = false;
    bool d_taking = false;  // between begin_take() and take()
    std::mutex d_mutex;
    std::condition_variable d_cv;
    std::thread d_thread;
    std::atomic<long> d_tid{0};
};

}  // namespace

std::unique_ptr<Sink> make_lz4_file_sink(int fd, const std::string& header_json, uint16_t version,
                                         void (*writer_start)(), std::string* error) {
    auto sink = std::make_unique<FileSink>(fd, writer_start);
    if (!sink->begin(header_json, version, error)) {
        sink->close();
        return nullptr;
    }
    return sink;
}

std::unique_ptr<Sink> make_memory_sink() { return std::make_unique<MemorySink>(); }

void Recorder::open(std::unique_ptr<Sink> sink) {
    d_sink = std::move(sink);
    size_t block = d_sink->block_size();
    d_block = block && block < kBufferSize ? block : kBufferSize;
    if (!d_buffer) d_buffer.reset(new uint8_t[kBufferSize]);
    if (!d_recent) d_recent.reset(new RecentSlot[kRecentSlots]());  // event 0: empty
    d_used = 0;
    reset_deltas();
    d_records = 0;
    d_sync = false;
    d_sync_used = 0;
    d_all_events = d_frames = d_nodes = d_native_nodes = d_thread = 0;
}

void Recorder::sync_blocks() {
    d_sync = true;
    if (d_used == 0) begin_block();
}

void Recorder::restart_deltas() {
    if (!d_sync) {
        reset_deltas();
    } else if (d_used != d_sync_used) {
        flush();  // the next block's SYNC restarts them, where a reader can see it
    }
}

void Recorder::begin_block() {
    reset_deltas();
    uint8_t* out = d_buffer.get();
    *out++ = SYNC;
    out = put_varint(out, d_records);
    out = put_varint(out, d_all_events);
    out = put_varint(out, d_frames);
    out = put_varint(out, d_nodes);
    out = put_varint(out, d_native_nodes);
    commit(put_varint(out, d_thread));
    d_sync_used = d_used;
}

uint8_t* Recorder::put_string(uint8_t* out, const std::string& value) {
    size_t length = value.size() < kMaxStringLength ? value.size() : kMaxStringLength;
    out = put_varint(out, length);
    memcpy(out, value.data(), length);
    return out + length;
}

void Recorder::thread_name(uint64_t tid, const std::string& name) {
    uint8_t* out = reserve(kMaxRecord);
    *out++ = THREAD_NAME;
    out = put_varint(out, tid);
    commit(put_string(out, name));
}

void Recorder::frame(const std::string& function, const std::string& file, uint64_t first_line) {
    uint8_t* out = reserve(kMaxRecord);
    ++d_frames;
    *out++ = FRAME;
    out = put_string(out, function);
    out = put_string(out, file);
    commit(put_varint(out, first_line));
}

void Recorder::node(uint32_t parent, uint32_t frame, uint64_t line, bool entry) {
    uint8_t* out = reserve(32);
    ++d_nodes;
    *out++ = entry ? ENTRY_NODE : NODE;
    out = put_varint(out, parent);
    out = put_varint(out, frame);
    commit(put_varint(out, line));
}

void Recorder::map(uintptr_t start, uintptr_t end, uintptr_t load_base, const std::string& path,
                   const std::string& build_id) {
    uint8_t* out = reserve(kMaxRecord);
    *out++ = MAP;
    out = put_varint(out, start);
    out = put_varint(out, end);
    out = put_varint(out, load_base);
    out = put_string(out, path);
    commit(put_string(out, build_id));
}

void Recorder::sample(uint64_t ms, uint64_t rss) {
    uint8_t* out = reserve(24);
    *out++ = SAMPLE;
    out = put_varint(out, ms);
    commit(put_varint(out, rss));
}

void Recorder::mark(uint64_t id, const std::string& label) {
    uint8_t* out = reserve(kMaxRecord);
    *out++ = MARK;
    out = put_varint(out, id);
    commit(put_string(out, label));
}

void Recorder::agg_stack(uint64_t tid, uint8_t allocator, uint32_t stack, uint32_t native,
                         const uint64_t (&figures)[8]) {
    uint8_t* out = reserve(1 + 12 * 10);
    *out++ = native ? AGG_NATIVE_STACK : AGG_STACK;
    out = put_varint(out, tid);
    out = put_varint(out, allocator);
    out = put_varint(out, stack);
    if (native) out = put_varint(out, native);
    for (uint64_t value : figures) out = put_varint(out, value);
    commit(out);
}

void Recorder::agg_sample(uint64_t ms, uint64_t heap, uint64_t rss) {
    uint8_t* out = reserve(32);
    *out++ = AGG_SAMPLE;
    out = put_varint(out, ms);
    out = put_varint(out, heap);
    commit(put_varint(out, rss));
}

void Recorder::agg_summary(uint64_t peak, uint64_t peak_ms, uint64_t unmatched_frees, const uint64_t* histogram,
                           size_t buckets) {
    uint8_t* out = reserve(1 + (4 + buckets) * 10);
    *out++ = AGG_SUMMARY;
    out = put_varint(out, peak);
    out = put_varint(out, peak_ms);
    out = put_varint(out, unmatched_frees);
    out = put_varint(out, buckets);
    for (size_t i = 0; i < buckets; ++i) out = put_varint(out, histogram[i]);
    commit(out);
}

void Recorder::raw(const uint8_t* data, size_t len, uint64_t records) {
    while (len > 0) {
        size_t room = d_block > d_used ? d_block - d_used : 0;
        if (room == 0) {
            flush();
            continue;
        }
        size_t part = len < room ? len : room;  // a record cut between buffers is whole again in the stream
        memcpy(d_buffer.get() + d_used, data, part);
        d_used += part;
        data += part;
        len -= part;
    }
    d_records += records;
}

void Recorder::trailer(uint64_t ms) {
    uint8_t* out = reserve(24);
    *out++ = TRAILER;
    out = put_varint(out, ms);
    commit(put_varint(out, d_records));
}

void Recorder::flush() {
    if (!d_sink || d_used == 0 || (d_sync && d_used == d_sync_used)) return;
    uint8_t* buffer = d_buffer.release();
    d_sink->consume(&buffer, d_used);
    d_buffer.reset(buffer);
    d_used = 0;
    if (d_sync) begin_block();
}

void Recorder::flush_in_signal() {
    if (!d_sink || !d_sync || d_used == d_sync_used) return;
    if (!d_sink->write_in_signal(d_buffer.get(), d_used)) return;
    d_used = 0;
    begin_block();
}

std::string Recorder::take(bool with_followed) {
    if (!d_sink) return std::string();
    d_sink->begin_take();
    flush();
    return d_sink->take(with_followed);
}

std::string Recorder::close() {
    if (!d_sink) return std::string();
    // The writer thread is stopped first and the last buffer compressed here: handing it over
    // would wake the writer once to compress it and once more to end.
    d_sink->stop_thread();
    flush();
    std::string error = d_sink->close();
    d_sink.reset();
    return error;
}

void Recorder::abandon() {
    // The sink's thread does not exist in this process and its fd belongs to the parent's
    // stream: leak the object rather than run a destructor that would join or write.
    (void)d_sink.release();
    d_used = 0;
}

}  // namespace memprof
