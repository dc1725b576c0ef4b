#include "dumper.h"

#include <cinttypes>
#include <string>

namespace memprof {

namespace {

// Names and paths come from the program and from the file: printed raw, an ESC or a C1 control
// in them would drive the reader's terminal (retitle it, clear it). Each control byte is shown
// as a visible escape instead (\x1b; \u009b for a C1 control encoded in UTF-8).
std::string shown(const std::string& text) {
    static const char digits[] = "0123456789abcdef";
    std::string out;
    out.reserve(text.size());
    for (size_t i = 0; i < text.size(); ++i) {
        auto byte = static_cast<unsigned char>(text[i]);
        auto next = i + 1 < text.size() ? static_cast<unsigned char>(text[i + 1]) : 0;
        if (byte < 0x20 || byte == 0x7f) {
            out += "\\x";
            out += digits[byte >> 4];
            out += digits[byte & 15];
        } else if (byte == 0xc2 && next >= 0x80 && next <= 0x9f) {
            out += "\\u00";
            out += digits[next >> 4];
            out += digits[next & 15];
            ++i;
        } else {
            out += static_cast<char>(byte);
        }
    }
    return out;
}

}  // namespace

const char* Dumper::on(const AllocRecord& record) {
    fprintf(d_out, "ALLOC %s address=0x%" PRIx64 " size=%" PRIu64 " stack=%" PRIu32, kind_name(record.allocator),
            record.address, record.size, record.stack);
    if (record.has_native) fprintf(d_out, " native=%" PRIu32, record.native);
    fprintf(d_out, " thread=%" PRIu64 "\n", record.tid);
    return nullptr;
}

const char* Dumper::on(const FreeRecord& record) {
    fprintf(d_out, "FREE %s address=0x%" PRIx64, kind_name(record.allocator), record.address);
    if (record.allocator == MUNMAP) fprintf(d_out, " size=%" PRIu64, record.size);
    fprintf(d_out, " thread=%" PRIu64 "\n", record.tid);
    return nullptr;
}

const char* Dumper::on(const ThreadRecord& record) {
    fprintf(d_out, "THREAD tid=%" PRIu64 "\n", record.tid);
    return nullptr;
}

const char* Dumper::on(const ThreadNameRecord& record) {
    fprintf(d_out, "THREAD_NAME tid=%" PRIu64 " name=%s\n", record.tid, shown(record.name).c_str());
    return nullptr;
}

const char* Dumper::on(const FrameRecord& record) {
    fprintf(d_out, "FRAME id=%zu function=%s file=%s line=%" PRIu32 "\n", d_frames++,
            shown(record.function).c_str(), shown(record.file).c_str(), record.first_line);
    return nullptr;
}

const char* Dumper::on(const NodeRecord& record) {
    fprintf(d_out, "%s id=%zu parent=%" PRIu32 " frame=%" PRIu32 " line=%" PRIu32 "\n",
            record.entry ? "ENTRY_NODE" : "NODE", ++d_nodes, record.parent, record.frame, record.line);
    return nullptr;
}

const char* Dumper::on(const NativeNodeRecord& record) {
    fprintf(d_out, "%s id=%zu parent=%" PRIu32 " address=0x%" PRIx64 "\n",
            record.eval ? "EVAL_NATIVE_NODE" : "NATIVE_NODE", ++d_native_nodes, record.parent, record.address);
    return nullptr;
}

const char* Dumper::on(const MapsRecord&) {
    fprintf(d_out, "MAPS\n");
    return nullptr;
}

const char* Dumper::on(const MapRecord& record) {
    fprintf(d_out, "MAP start=0x%" PRIx64 " end=0x%" PRIx64 " load_base=0x%" PRIx64 " path=%s build_id=", record.start,
            record.end, record.load_base, shown(record.path).c_str());
    for (unsigned char byte : record.build_id) fprintf(d_out, "%02x", byte);
    fprintf(d_out, "\n");
    return nullptr;
}

const char* Dumper::on(const SampleRecord& record) {
    fprintf(d_out, "SAMPLE ms=%" PRIu64 " rss=%" PRIu64 "\n", record.ms, record.rss);
    return nullptr;
}

const char* Dumper::on(const MarkRecord& record) {
    fprintf(d_out, "MARK id=%" PRIu64 " label=%s\n", record.id, shown(record.label).c_str());
    return nullptr;
}

const char* Dumper::on(const SyncRecord& record) {
    if (record.after_loss) {
        // Ids count their records: those of the lost blocks are skipped.
        d_frames = record.frames;
        d_nodes = record.nodes;
        d_native_nodes = record.native_nodes;
    }
    fprintf(d_out,
            "SYNC records=%" PRIu64 " events=%" PRIu64 " frames=%" PRIu64 " nodes=%" PRIu64 " native_nodes=%" PRIu64
            " tid=%" PRIu64 "%s\n",
            record.records, record.events, record.frames, record.nodes, record.native_nodes, record.tid,
            record.after_loss ? " (after damaged blocks)" : "");
    return nullptr;
}

const char* Dumper::on(const TrailerRecord& record) {
    fprintf(d_out, "TRAILER ms=%" PRIu64 " records=%" PRIu64 "\n", record.ms, record.records);
    return nullptr;
}

const char* Dumper::on(const AggStackRecord& record) {
    fprintf(d_out,
            "%s thread=%" PRIu64 " %s stack=%" PRIu32 "%s%s peak=%" PRIu64 "/%" PRIu64 " leaked=%" PRIu64 "/%" PRIu64
            " total=%" PRIu64 "/%" PRIu64 " temporary=%" PRIu64 "/%" PRIu64 "\n",
            record.native ? "AGG_NATIVE_STACK" : "AGG_STACK", record.tid, kind_name(record.allocator), record.stack,
            record.native ? " native=" : "", record.native ? std::to_string(record.native).c_str() : "", record.at_peak.bytes, record.at_peak.count,
            record.leaked.bytes, record.leaked.count, record.total.bytes, record.total.count, record.temporary.bytes,
            record.temporary.count);
    return nullptr;
}

const char* Dumper::on(const AggSampleRecord& record) {
    fprintf(d_out, "AGG_SAMPLE ms=%" PRIu64 " heap=%" PRIu64 " rss=%" PRIu64 "\n", record.ms, record.heap, record.rss);
    return nullptr;
}

const char* Dumper::on(const AggSummaryRecord& record) {
    fprintf(d_out, "AGG_SUMMARY peak=%" PRIu64 " peak_ms=%" PRIu64 " unmatched_frees=%" PRIu64 "\n", record.peak,
            record.peak_ms, record.unmatched_frees);
    return nullptr;
}

}  // namespace memprof
