#include "capture_writer.h"

#include <errno.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <tuple>

#include "recorder.h"

namespace memprof {
namespace {

// FRAME, NODE, the mappings, NATIVE_NODE and THREAD_NAME records for the first table entries:
// ids are positions, so they keep their order.
void write_tables(Recorder& recorder, const Reader& reader, size_t frames, size_t nodes, size_t native_nodes) {
    const auto& all_frames = reader.frames();
    for (size_t i = 0; i < frames && i < all_frames.size(); ++i) {
        recorder.frame(all_frames[i].function, all_frames[i].file, all_frames[i].first_line);
    }
    const auto& all_nodes = reader.nodes();
    for (size_t i = 0; i < nodes && i < all_nodes.size(); ++i) {
        recorder.node(all_nodes[i].parent, all_nodes[i].frame, all_nodes[i].line, all_nodes[i].entry);
    }
    if (!reader.maps().empty()) {
        // Every mapping the stream saw: a node resolves against the latest one holding it.
        recorder.maps_begin();
        for (const MapRecord& map : reader.maps()) recorder.map(map.start, map.end, map.load_base, map.path, map.build_id);
    }
    const auto& all_native = reader.native_nodes();
    for (size_t i = 0; i < native_nodes && i < all_native.size(); ++i) {
        recorder.native_node(all_native[i].parent, all_native[i].address, all_native[i].eval);
    }
    for (const auto& [tid, name] : reader.thread_names()) recorder.thread_name(tid, name);
}

void write_aggregates(Recorder& recorder, const Reader& reader) {
    for (uint64_t tid : reader.threads_seen()) recorder.thread(tid);  // keeps the order threads came in
    const auto& pairs = reader.stack_pairs();
    for (const AggregateRow& row : reader.aggregates()) {
        // A hybrid stack id is the reader's own index: the file gets the (Python, native) pair.
        uint32_t python = row.stack, native = 0;
        if ((row.stack & kHybridStack) && (row.stack & ~kHybridStack) < pairs.size()) {
            std::tie(python, native) = pairs[row.stack & ~kHybridStack];
        }
        recorder.agg_stack(row.tid, row.allocator, python, native, row.figures);
    }
    for (const TimelineRow& point : reader.timeline()) recorder.agg_sample(point.ms, point.heap, point.rss);
    recorder.agg_summary(reader.peak_bytes(), reader.peak_ms(), reader.unmatched_frees(), reader.histogram(),
                         kHistogramBuckets);
}

// An unnamed file (O_TMPFILE) in the folder of `path`, and a second descriptor of it kept open
// to give it a name once whole; -1 where the filesystem (or kernel) has none.
int open_unnamed(const std::string& path, int* keep) {
#ifdef O_TMPFILE
    size_t slash = path.rfind('/');
    std::string folder = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
    int fd = open(folder.c_str(), O_TMPFILE | O_WRONLY | O_CLOEXEC, 0644);
    if (fd < 0) return -1;
    *keep = fcntl(fd, F_DUPFD_CLOEXEC, 0);
    if (*keep < 0) {
        close(fd);
        return -1;
    }
    return fd;
#else
    (void)path;
    (void)keep;
    return -1;
#endif
}

// Names the unnamed file `keep` refers to as `target` (through /proc, which needs no privilege,
// unlike AT_EMPTY_PATH); a stale `target` (its process killed between link and rename) goes first.
bool name_unnamed(int keep, const std::string& target) {
    char proc[64];
    snprintf(proc, sizeof proc, "/proc/self/fd/%d", keep);
    for (int attempt = 0; attempt < 2; ++attempt) {
        if (linkat(AT_FDCWD, proc, AT_FDCWD, target.c_str(), AT_SYMLINK_FOLLOW) == 0) return true;
        if (errno != EEXIST) return false;
        unlink(target.c_str());
    }
    return false;
}

// Lets `body` write the records, ends the stream and renames the file over `path`. The records
// go to an unnamed file, named `path`.partial only once whole: a process killed while writing
// (SIGKILL during an aggregating run's snapshot) leaves nothing beside its capture. Where there
// is no O_TMPFILE, or the file cannot be named, they go to `path`.partial from the start.
template <typename Body>
int write_capture(const std::string& path, const std::string& header_json, uint64_t end_ms, std::string* error,
                  Body body, bool whole = true, bool unnamed_first = true) {
    std::string partial = path + ".partial";
    int keep = -1;
    int fd = unnamed_first ? open_unnamed(path, &keep) : -1;
    bool unnamed = fd >= 0;
    if (!unnamed) fd = open(partial.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) {
        int problem = errno;
        *error = strerror(problem);
        return problem;
    }
    std::unique_ptr<Sink> sink = make_lz4_file_sink(fd, header_json, kFormatVersion, nullptr, error);
    if (!sink) {
        int problem = errno ? errno : EIO;
        if (unnamed) {
            close(keep);
        } else {
            unlink(partial.c_str());
        }
        return problem;
    }
    Recorder recorder;
    recorder.open(std::move(sink));
    body(recorder);
    if (whole) recorder.trailer(end_ms);
    *error = recorder.close();
    if (unnamed) {
        bool named = error->empty() && name_unnamed(keep, partial);
        close(keep);
        if (error->empty() && !named) {  // no /proc, say: written again the plain way
            return write_capture(path, header_json, end_ms, error, body, whole, false);
        }
    }
    if (error->empty() && rename(partial.c_str(), path.c_str()) != 0) *error = strerror(errno);
    if (!error->empty()) {
        int problem = errno ? errno : EIO;
        unlink(partial.c_str());
        return problem;
    }
    return 0;
}

}  // namespace

int write_window_capture(const Reader& reader, const std::string& path, const std::string& header_json,
                         const std::string& window, size_t frames, size_t nodes, size_t native_nodes,
                         std::string* error) {
    return write_capture(path, header_json, reader.end_ms(), error, [&](Recorder& recorder) {
        write_tables(recorder, reader, frames, nodes, native_nodes);
        recorder.raw(reinterpret_cast<const uint8_t*>(window.data()), window.size(), reader.window_records());
    });
}

int write_aggregated_capture(const Reader& reader, const std::string& path, const std::string& header_json,
                             bool whole, std::string* error) {
    size_t everything = static_cast<size_t>(-1);
    return write_capture(path, header_json, reader.end_ms(), error, [&](Recorder& recorder) {
        write_tables(recorder, reader, everything, everything, everything);
        write_aggregates(recorder, reader);
    }, whole);
}

}  // namespace memprof
