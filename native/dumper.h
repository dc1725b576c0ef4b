// `memprof parse`: one text line per decoded record, instead of aggregating.
#pragma once

#include <cstdio>

#include "decoder.h"

namespace memprof {

class Dumper {
  public:
    explicit Dumper(FILE* out) : d_out(out) {}

    // The decoder's consumer (see Reader): it prints every record and refuses none.
    const char* on(const AllocRecord& record);
    const char* on(const FreeRecord& record);
    const char* on(const ThreadRecord& record);
    const char* on(const ThreadNameRecord& record);
    const char* on(const FrameRecord& record);
    const char* on(const NodeRecord& record);
    const char* on(const NativeNodeRecord& record);
    const char* on(const MapsRecord& record);
    const char* on(const MapRecord& record);
    const char* on(const SampleRecord& record);
    const char* on(const MarkRecord& record);
    const char* on(const TrailerRecord& record);
    const char* on(const SyncRecord& record);
    const char* on(const AggStackRecord& record);
    const char* on(const AggSampleRecord& record);
    const char* on(const AggSummaryRecord& record);

  private:
    FILE* d_out;
    // Ids count their records: a line shows the id readers will give the frame or node.
    size_t d_frames = 0;
    size_t d_nodes = 0;
    size_t d_native_nodes = 0;
};

}  // namespace memprof
