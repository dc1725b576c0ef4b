// Capture files made from what a reader holds: a pytest test's window as a file of its own, and an
// aggregated capture (docs/capture-format.md). Both are written by the Recorder into an LZ4 file
// sink, as the tracker writes its own, under a temporary name renamed at the end: never a
// half-written file.
#pragma once

#include <cstddef>
#include <string>

#include "reader.h"

namespace memprof {

// Each returns 0, or the errno of what failed with `*error` saying what it was.

// `window`: the records the reader replayed since its window began (the tracker's memory sink
// hands them out). They refer to the first `frames`, `nodes` and `native_nodes` table entries the
// reader knew before the window, which the file repeats first.
int write_window_capture(const Reader& reader, const std::string& path, const std::string& header_json,
                         const std::string& window, size_t frames, size_t nodes, size_t native_nodes,
                         std::string* error);

// Per stack, thread and allocator: the bytes and counts at the peak, leaked, in total and in
// temporary allocations; then the timeline, the summary and a trailer (header "aggregated": true).
// Without `whole` (a snapshot while the program runs) there is no trailer: it reads as truncated.
int write_aggregated_capture(const Reader& reader, const std::string& path, const std::string& header_json,
                             bool whole, std::string* error);

}  // namespace memprof
