#include "reader.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <iterator>
#include <tuple>

#include "lz4frame.h"

namespace memprof {

Reader::Reader(uint64_t only_tid, bool temporal, uint32_t temporary_threshold)
    : d_only_tid(only_tid), d_temporal(temporal), d_temporary_threshold(temporary_threshold ? temporary_threshold : 1) {}

Reader::~Reader() {
    if (d_file) fclose(d_file);
    if (d_dctx) LZ4F_freeDecompressionContext(d_dctx);
}

bool Reader::fail(const std::string& message) {
    if (d_error.empty()) d_error = message;
    return false;
}

bool Reader::open(const std::string& path, std::string* header_json, std::string* error) {
    d_file = fopen(path.c_str(), "rb");
    if (!d_file) {
        *error = "cannot open " + path + ": " + strerror(errno);
        return false;
    }
    fseek(d_file, 0, SEEK_END);
    long size = ftell(d_file);
    fseek(d_file, 0, SEEK_SET);
    d_file_size = size > 0 ? static_cast<uint64_t>(size) : 0;
    uint8_t fixed[kFileHeaderFixed];
    if (fread(fixed, 1, sizeof(fixed), d_file) != sizeof(fixed)) {
        *error = path + " is not a memprof capture (too short to hold a header)";
        return false;
    }
    if (memcmp(fixed, kMagic, sizeof(kMagic)) != 0) {
        *error = path + " is not a memprof capture (wrong magic bytes)";
        return false;
    }
    uint16_t version = static_cast<uint16_t>(fixed[8] | (fixed[9] << 8));
    if (version > kFormatVersion) {
        *error = path + " was written by capture format version " + std::to_string(version) +
                 ", newer than this memprof reads (up to version " + std::to_string(kFormatVersion) +
                 "); upgrade pytest-memprof to read it";
        return false;
    }
    if (version == 0) {
        *error = path + " has an invalid capture format version 0";
        return false;
    }
    d_version = version;
    uint32_t length = 0;
    for (int i = 0; i < 4; ++i) length |= static_cast<uint32_t>(fixed[12 + i]) << (8 * i);
    if (length > kMaxHeaderLength || kFileHeaderFixed + length > d_file_size) {
        *error = path + " is truncated or corrupt: its header is cut short";
        return false;
    }
    header_json->resize(length);
    if (length && fread(&(*header_json)[0], 1, length, d_file) != length) {
        *error = path + " is truncated: cannot read its header";
        return false;
    }
    d_file_offset = kFileHeaderFixed + length;
    if (LZ4F_isError(LZ4F_createDecompressionContext(&d_dctx, LZ4F_VERSION))) {
        *error = "cannot create an LZ4 decompression context";
        return false;
    }
    d_in.resize(1 << 20);
    return true;
}

bool Reader::read_some(size_t budget) {
    if (!d_file || d_frame_done || !d_error.empty()) return false;
    size_t consumed_total = 0;
    std::vector<uint8_t> out(4 << 20);
    while (consumed_total < budget) {
        size_t got = fread(d_in.data(), 1, d_in.size(), d_file);
        if (got == 0) {
            // End of file before the LZ4 end mark: the writer died or the file was cut.
            d_truncated = true;
            parse_pending(true);
            d_frame_done = true;
            return false;
        }
        size_t offset = 0;
        while (offset < got) {
            size_t src_size = got - offset;
            size_t dst_size = out.size();
            size_t hint = LZ4F_decompress(d_dctx, out.data(), &dst_size, d_in.data() + offset, &src_size, nullptr);
            if (LZ4F_isError(hint)) {
                d_truncated = true;
                fail("corrupt data at byte " + std::to_string(d_file_offset + offset) + " (" +
                     LZ4F_getErrorName(hint) + "); the report covers what came before it");
                parse_pending(true);
                d_frame_done = true;
                return false;
            }
            offset += src_size;
            d_pending.insert(d_pending.end(), out.begin(), out.begin() + static_cast<long>(dst_size));
            if (!parse_pending(false)) {
                d_frame_done = true;
                return false;
            }
            if (hint == 0) {  // end mark: the frame is complete
                d_file_offset += offset;
                parse_pending(true);
                d_frame_done = true;
                return false;
            }
            if (src_size == 0 && dst_size == 0) break;
        }
        d_file_offset += got;
        consumed_total += got;
    }
    return true;
}

bool Reader::feed(const uint8_t* data, size_t len) {
    d_pending.insert(d_pending.end(), data, data + len);
    return parse_pending(false);
}

bool Reader::parse_pending(bool at_end) {
    Cursor cursor{d_pending.data() + d_pending_pos, d_pending.data() + d_pending.size()};
    bool ok = true;
    while (cursor.pos < cursor.end) {
        const uint8_t* record_start = cursor.pos;
        int status = parse_record(cursor);
        if (status == 1) continue;
        cursor.pos = record_start;
        if (status < 0) ok = false;
        else if (at_end) d_truncated = true;  // a record cut in half: the stream ends mid-write
        break;
    }
    size_t pos = static_cast<size_t>(cursor.pos - d_pending.data());
    // Compact once the parsed prefix dominates, so a long stream does not grow the buffer.
    if (pos > (1 << 20) && pos * 2 > d_pending.size()) {
        d_pending.erase(d_pending.begin(), d_pending.begin() + static_cast<long>(pos));
        pos = 0;
    }
    d_pending_pos = pos;
    return ok;
}

namespace {

bool get_string(Cursor& cursor, std::string* out) {
    uint64_t length;
    const uint8_t* bytes;
    if (!cursor.get_varint(&length)) return false;
    if (length > kMaxStringLength) {
        cursor.pos = cursor.end + 1;  // signal corruption to the caller
        return false;
    }
    if (!cursor.get_bytes(length, &bytes)) return false;
    out->assign(reinterpret_cast<const char*>(bytes), length);
    return true;
}

}  // namespace

int Reader::parse_record(Cursor& cursor) {
    uint8_t kind;
    if (!cursor.get_byte(&kind)) return 0;
    const uint8_t* end = cursor.end;
    auto corrupt = [&](const char* what) {
        fail(std::string("corrupt capture: ") + what + " in record " + std::to_string(d_records + 1));
        d_truncated = true;
        return -1;
    };
    // A get that fails means "need more bytes", unless the cursor was pushed past the end.
    auto short_read = [&]() { return cursor.pos > end ? corrupt("an oversized string") : 0; };

    const char* name = kind_name(kind);
    uint8_t alloc_kind = kind & static_cast<uint8_t>(~kNativeAllocFlag);
    const char* alloc_name = is_alloc_kind(alloc_kind) ? kind_name(alloc_kind) : nullptr;
    if (alloc_name) {
        bool has_native = kind & kNativeAllocFlag;
        uint64_t address_delta, size, stack_delta, native_delta = 0;
        bool size_first = d_version >= kFirstSizeClassVersion;
        if (size_first ? !cursor.get_varint(&size) || !cursor.get_varint(&address_delta)
                       : !cursor.get_varint(&address_delta) || !cursor.get_varint(&size)) {
            return short_read();
        }
        if (!cursor.get_varint(&stack_delta) || (has_native && !cursor.get_varint(&native_delta))) {
            return short_read();
        }
        uint64_t address;
        if (!decode_address(address_delta, size_first ? &d_last_by_class[size_class(size)] : &d_last_address,
                            &address)) {
            return corrupt("an address that refers to no recent event");
        }
        int64_t stack = static_cast<int64_t>(d_last_stack) + unzigzag(stack_delta);
        if (stack < 0 || static_cast<uint64_t>(stack) > d_nodes.size()) return corrupt("an unknown stack id");
        // No allocator returns the last byte of the address space; our tables reserve that key.
        if (address == kNoAddress || address + size < address) {
            return corrupt("an allocation at an impossible address");
        }
        int64_t native = static_cast<int64_t>(d_last_native) + unzigzag(native_delta);
        if (has_native && (native < 0 || static_cast<uint64_t>(native) > d_native_nodes.size())) {
            return corrupt("an unknown native stack id");
        }
        d_last_stack = static_cast<uint32_t>(stack);
        if (has_native) d_last_native = static_cast<uint32_t>(native);
        ++d_records;
        if (d_dump) {
            fprintf(d_dump, "ALLOC %s address=0x%" PRIx64 " size=%" PRIu64 " stack=%" PRId64, alloc_name, address, size,
                    stack);
            if (has_native) fprintf(d_dump, " native=%" PRId64, native);
            fprintf(d_dump, " thread=%" PRIu64 "\n", d_tid);
        } else {
            uint32_t id = has_native ? hybrid_stack(static_cast<uint32_t>(stack), static_cast<uint32_t>(native))
                                     : static_cast<uint32_t>(stack);
            if (id == UINT32_MAX) return corrupt("more distinct stacks than a capture can hold");
            on_alloc(alloc_kind, address, size, id);
        }
        return 1;
    }
    if (is_free_kind(kind) && name) {
        uint64_t address_delta, size = 0;
        if (!cursor.get_varint(&address_delta)) return short_read();
        if (kind == MUNMAP && !cursor.get_varint(&size)) return short_read();
        uint64_t address;
        if (!decode_address(address_delta, d_version >= kFirstSizeClassVersion ? &d_last_freed : &d_last_address,
                            &address)) {
            return corrupt("an address that refers to no recent event");
        }
        ++d_records;
        if (d_dump) {
            fprintf(d_dump, "FREE %s address=0x%" PRIx64, name, address);
            if (kind == MUNMAP) fprintf(d_dump, " size=%" PRIu64, size);
            fprintf(d_dump, " thread=%" PRIu64 "\n", d_tid);
        } else if (kind == MUNMAP) {
            on_munmap(address, size);
        } else {
            on_free(address);
        }
        return 1;
    }
    switch (kind) {
        case ADDRESS_LOW: {
            uint64_t low;
            if (!cursor.get_varint(&low)) return short_read();
            if (d_version < kFirstSizeClassVersion || low == 0 || low >= kAddressAlign) {
                return corrupt("an invalid ADDRESS_LOW");
            }
            d_address_low = low;
            break;
        }
        case THREAD: {
            uint64_t tid;
            if (!cursor.get_varint(&tid)) return short_read();
            d_tid = tid;
            if (std::find(d_threads_seen.begin(), d_threads_seen.end(), tid) == d_threads_seen.end()) {
                d_threads_seen.push_back(tid);
            }
            if (d_dump) fprintf(d_dump, "THREAD tid=%" PRIu64 "\n", tid);
            break;
        }
        case THREAD_NAME: {
            uint64_t tid;
            std::string name;
            if (!cursor.get_varint(&tid) || !get_string(cursor, &name)) return short_read();
            d_thread_names[tid] = name;
            if (d_dump) fprintf(d_dump, "THREAD_NAME tid=%" PRIu64 " name=%s\n", tid, name.c_str());
            break;
        }
        case FRAME: {
            FrameRecord frame;
            uint64_t line;
            if (!get_string(cursor, &frame.function) || !get_string(cursor, &frame.file) || !cursor.get_varint(&line)) {
                return short_read();
            }
            frame.first_line = static_cast<uint32_t>(line);
            if (d_dump) {
                fprintf(d_dump, "FRAME id=%zu function=%s file=%s line=%" PRIu64 "\n", d_frames.size(),
                        frame.function.c_str(), frame.file.c_str(), line);
            }
            d_frames.push_back(std::move(frame));
            break;
        }
        case NODE:
        case ENTRY_NODE: {
            uint64_t parent, frame, line;
            if (!cursor.get_varint(&parent) || !cursor.get_varint(&frame) || !cursor.get_varint(&line)) {
                return short_read();
            }
            if (parent > d_nodes.size()) return corrupt("a stack whose parent is unknown");
            if (frame >= d_frames.size()) return corrupt("a stack whose frame is unknown");
            if (d_nodes.size() >= kHybridStack - 1) return corrupt("more stack nodes than a capture can hold");
            d_nodes.push_back({static_cast<uint32_t>(parent), static_cast<uint32_t>(frame), static_cast<uint32_t>(line),
                               kind == ENTRY_NODE});
            if (d_dump) {
                fprintf(d_dump, "%s id=%zu parent=%" PRIu64 " frame=%" PRIu64 " line=%" PRIu64 "\n", name,
                        d_nodes.size(), parent, frame, line);
            }
            break;
        }
        case NATIVE_NODE:
        case EVAL_NATIVE_NODE: {
            uint64_t parent, address;
            if (!cursor.get_varint(&parent) || !cursor.get_varint(&address)) return short_read();
            if (parent > d_native_nodes.size()) return corrupt("a native stack whose parent is unknown");
            if (d_native_nodes.size() >= UINT32_MAX - 1) return corrupt("more native stack nodes than a capture can hold");
            d_native_nodes.push_back({static_cast<uint32_t>(parent), address, map_of(address), kind == EVAL_NATIVE_NODE});
            if (d_dump) {
                fprintf(d_dump, "%s id=%zu parent=%" PRIu64 " address=0x%" PRIx64 "\n", name, d_native_nodes.size(),
                        parent, address);
            }
            break;
        }
        case MAPS: {
            d_current_maps.clear();
            d_maps_sorted = true;
            if (d_dump) fprintf(d_dump, "MAPS\n");
            break;
        }
        case MAP: {
            MapRecord map;
            if (!cursor.get_varint(&map.start) || !cursor.get_varint(&map.end) || !cursor.get_varint(&map.load_base) ||
                !get_string(cursor, &map.path) || !get_string(cursor, &map.build_id)) {
                return short_read();
            }
            if (map.start >= map.end) return corrupt("a mapping that ends before it starts");
            if (d_dump) {
                fprintf(d_dump, "MAP start=0x%" PRIx64 " end=0x%" PRIx64 " load_base=0x%" PRIx64 " path=%s build_id=",
                        map.start, map.end, map.load_base, map.path.c_str());
                for (unsigned char byte : map.build_id) fprintf(d_dump, "%02x", byte);
                fprintf(d_dump, "\n");
            }
            auto key = std::make_tuple(map.start, map.end, map.load_base, map.path, map.build_id);
            auto found = d_map_ids.find(key);
            uint32_t id;
            if (found != d_map_ids.end()) {
                id = found->second;
            } else {
                if (d_maps.size() >= (1u << 20)) return corrupt("more mappings than a process can hold");
                id = static_cast<uint32_t>(d_maps.size());
                d_map_ids.emplace(key, id);
                d_maps.push_back(std::move(map));
            }
            if (d_current_maps.size() >= (1u << 20)) return corrupt("more mappings than a process can hold");
            d_current_maps.push_back(id);
            d_maps_sorted = false;
            break;
        }
        case SAMPLE: {
            uint64_t ms, rss;
            if (!cursor.get_varint(&ms) || !cursor.get_varint(&rss)) return short_read();
            d_last_ms = ms;
            if (d_dump) {
                fprintf(d_dump, "SAMPLE ms=%" PRIu64 " rss=%" PRIu64 "\n", ms, rss);
            } else {
                d_timeline.push_back({ms, d_heap, rss});
            }
            break;
        }
        case MARK: {
            uint64_t id;
            std::string label;
            if (!cursor.get_varint(&id) || !get_string(cursor, &label)) return short_read();
            d_marks.push_back({id, label, d_heap});
            if (d_dump) fprintf(d_dump, "MARK id=%" PRIu64 " label=%s\n", id, label.c_str());
            break;
        }
        case TRAILER: {
            uint64_t ms, records;
            if (!cursor.get_varint(&ms) || !cursor.get_varint(&records)) return short_read();
            d_end_ms = ms;
            d_last_ms = ms;
            d_saw_trailer = true;
            if (d_dump) fprintf(d_dump, "TRAILER ms=%" PRIu64 " records=%" PRIu64 "\n", ms, records);
            break;
        }
        case AGG_STACK: {
            uint64_t v[11];  // tid kind stack, then (bytes, count) at the peak, leaked, total, temporary
            for (uint64_t& value : v) {
                if (!cursor.get_varint(&value)) return short_read();
            }
            if (!is_alloc_kind(static_cast<uint8_t>(v[1])) || v[1] > 0xff || !kind_name(static_cast<uint8_t>(v[1]))) {
                return corrupt("an aggregate of an unknown allocator");
            }
            if (v[2] > d_nodes.size()) return corrupt("an aggregate of an unknown stack");
            if (d_dump) {
                fprintf(d_dump,
                        "AGG_STACK thread=%" PRIu64 " %s stack=%" PRIu64 " peak=%" PRIu64 "/%" PRIu64 " leaked=%" PRIu64
                        "/%" PRIu64 " total=%" PRIu64 "/%" PRIu64 " temporary=%" PRIu64 "/%" PRIu64 "\n",
                        v[0], kind_name(static_cast<uint8_t>(v[1])), v[2], v[3], v[4], v[5], v[6], v[7], v[8], v[9],
                        v[10]);
            } else if (!d_only_tid || v[0] == d_only_tid) {
                on_aggregate(v);
            }
            break;
        }
        case AGG_SAMPLE: {
            uint64_t ms, heap, rss;
            if (!cursor.get_varint(&ms) || !cursor.get_varint(&heap) || !cursor.get_varint(&rss)) return short_read();
            d_last_ms = ms;
            if (d_dump) {
                fprintf(d_dump, "AGG_SAMPLE ms=%" PRIu64 " heap=%" PRIu64 " rss=%" PRIu64 "\n", ms, heap, rss);
            } else {
                d_timeline.push_back({ms, heap, rss});
            }
            break;
        }
        case AGG_SUMMARY: {
            uint64_t peak, peak_ms, unmatched, buckets;
            if (!cursor.get_varint(&peak) || !cursor.get_varint(&peak_ms) || !cursor.get_varint(&unmatched) ||
                !cursor.get_varint(&buckets)) {
                return short_read();
            }
            constexpr size_t kBuckets = sizeof(d_histogram) / sizeof(d_histogram[0]);
            if (buckets > kBuckets) return corrupt("a histogram with too many buckets");
            uint64_t counts[kBuckets] = {};
            for (uint64_t i = 0; i < buckets; ++i) {
                if (!cursor.get_varint(&counts[i])) return short_read();
            }
            if (d_dump) {
                fprintf(d_dump, "AGG_SUMMARY peak=%" PRIu64 " peak_ms=%" PRIu64 " unmatched_frees=%" PRIu64 "\n", peak,
                        peak_ms, unmatched);
            } else {
                d_peak = peak;
                d_peak_ms = peak_ms;
                d_unmatched_frees = unmatched;
                for (size_t i = 0; i < kBuckets; ++i) d_histogram[i] += counts[i];
            }
            break;
        }
        default: {
            char what[64];
            snprintf(what, sizeof(what), "an unknown record kind 0x%02x", kind);
            return corrupt(what);
        }
    }
    ++d_records;
    if (d_end_ms < d_last_ms) d_end_ms = d_last_ms;
    return 1;
}

void Reader::on_aggregate(const uint64_t* v) {
    d_tid = v[0];
    if (std::find(d_threads_seen.begin(), d_threads_seen.end(), d_tid) == d_threads_seen.end()) {
        d_threads_seen.push_back(d_tid);
    }
    uint8_t kind = static_cast<uint8_t>(v[1]);
    Acc& acc = d_accs[acc_for(static_cast<uint32_t>(v[2]), kind)];
    // As if replayed: the values at the (only) peak are saved, the current ones are the leaks.
    acc.saved_for = d_peak_version;
    acc.saved_bytes += static_cast<int64_t>(v[3]);
    acc.saved_count += static_cast<int64_t>(v[4]);
    acc.cur_bytes += static_cast<int64_t>(v[5]);
    acc.cur_count += static_cast<int64_t>(v[6]);
    acc.total_bytes += v[7];
    acc.total_count += v[8];
    acc.temp_bytes += v[9];
    acc.temp_count += v[10];
    d_heap += v[5];
    d_total_bytes += v[7];
    d_total_count += v[8];
    d_kind_bytes[kind] += v[7];
    d_kind_counts[kind] += v[8];
}

uint32_t Reader::hybrid_stack(uint32_t python, uint32_t native) {
    if (native == 0) return python;  // nothing unwound: a Python stack like any other
    auto [slot, inserted] = d_pair_ids.insert((static_cast<uint64_t>(python) << 32) | native);
    if (inserted) {
        if (d_pairs.size() >= kHybridStack - 1) {
            d_pair_ids.erase((static_cast<uint64_t>(python) << 32) | native);
            return UINT32_MAX;
        }
        *slot = static_cast<uint32_t>(d_pairs.size());
        d_pairs.emplace_back(python, native);
    }
    return kHybridStack | *slot;
}

int32_t Reader::map_of(uint64_t address) {
    if (!d_maps_sorted) {
        std::sort(d_current_maps.begin(), d_current_maps.end(),
                  [this](uint32_t a, uint32_t b) { return d_maps[a].start < d_maps[b].start; });
        d_maps_sorted = true;
    }
    // A return address: the call instruction itself lies just before it.
    uint64_t target = address - 1;
    auto it = std::upper_bound(d_current_maps.begin(), d_current_maps.end(), target,
                               [this](uint64_t value, uint32_t id) { return value < d_maps[id].start; });
    if (it == d_current_maps.begin()) return -1;
    const MapRecord& map = d_maps[*(it - 1)];
    return target < map.end ? static_cast<int32_t>(*(it - 1)) : -1;
}

uint32_t Reader::acc_for(uint32_t stack, uint8_t kind) {
    auto slot_it = d_tid_slots.find(d_tid);
    uint32_t slot;
    if (slot_it == d_tid_slots.end()) {
        slot = static_cast<uint32_t>(d_slot_tids.size());
        d_tid_slots.emplace(d_tid, slot);
        d_slot_tids.push_back(d_tid);
    } else {
        slot = slot_it->second;
    }
    uint64_t key = (static_cast<uint64_t>(stack) << 32) | (static_cast<uint64_t>(kind) << 24) | (slot & 0xffffff);
    auto [index, inserted] = d_acc_index.insert(key);
    if (inserted) {
        *index = static_cast<uint32_t>(d_accs.size());
        Acc acc{};
        acc.stack = stack;
        acc.kind = kind;
        acc.tid = d_tid;
        acc.saved_for = d_peak_version;  // born after the latest peak: 0 bytes at that peak
        d_accs.push_back(acc);
    }
    return *index;
}

void Reader::change(Acc& acc, int64_t bytes, int64_t count) {
    if (acc.saved_for != d_peak_version) {
        acc.saved_bytes = acc.cur_bytes;
        acc.saved_count = acc.cur_count;
        acc.saved_for = d_peak_version;
    }
    acc.cur_bytes += bytes;
    acc.cur_count += count;
}

void Reader::on_alloc(uint8_t kind, uint64_t address, uint64_t size, uint32_t stack) {
    if (d_only_tid && d_tid != d_only_tid) return;
    if (kind == MMAP) {
        on_munmap(address, size);  // a fixed mapping replaces whatever was there
    } else if (Live* previous = d_live.find(address)) {
        release(*previous, previous->size, true);  // its free was never seen
        d_live.erase(address);
    }
    uint32_t acc_index = acc_for(stack, kind);
    Acc& acc = d_accs[acc_index];
    change(acc, static_cast<int64_t>(size), 1);
    acc.total_bytes += size;
    acc.total_count += 1;
    d_heap += size;
    if (d_heap > d_peak) {
        d_peak = d_heap;
        d_peak_ms = d_last_ms;
        ++d_peak_version;
    }
    ++d_total_count;
    d_total_bytes += size;
    d_kind_counts[kind] += 1;
    d_kind_bytes[kind] += size;
    d_histogram[size ? 64 - __builtin_clzll(size) : 0] += 1;
    Live live{size, acc_index, static_cast<uint32_t>(d_timeline.size()), ++d_alloc_seq};
    if (kind == MMAP) {
        d_mappings[address] = live;
    } else {
        *d_live.insert(address).first = live;
    }
}

void Reader::release(Live& live, uint64_t bytes, bool whole) {
    Acc& acc = d_accs[live.acc];
    change(acc, -static_cast<int64_t>(bytes), whole ? -1 : 0);
    d_heap -= bytes;
    if (!whole) return;
    if (d_alloc_seq - live.seq < d_temporary_threshold) {
        acc.temp_bytes += live.size;
        acc.temp_count += 1;
    }
    uint32_t now = static_cast<uint32_t>(d_timeline.size());
    if (d_temporal && now != live.sample) {
        auto& cell = d_intervals[std::make_tuple(live.acc, live.sample, now)];
        cell.first += live.size;
        cell.second += 1;
    }
}

void Reader::on_free(uint64_t address) {
    Live* live = address == kNoAddress ? nullptr : d_live.find(address);
    if (!live) {
        ++d_unmatched_frees;  // allocated before tracking (or this window) began
        return;
    }
    release(*live, live->size, true);
    d_live.erase(address);
}

void Reader::on_munmap(uint64_t address, uint64_t size) {
    uint64_t end = address + size < address ? UINT64_MAX : address + size;  // untrusted: no wrap-around
    auto it = d_mappings.upper_bound(address);
    if (it != d_mappings.begin()) --it;
    while (it != d_mappings.end() && it->first < end) {
        uint64_t start = it->first;
        uint64_t stop = start + it->second.size;
        if (stop <= address) {
            ++it;
            continue;
        }
        Live live = it->second;
        it = d_mappings.erase(it);
        uint64_t cut_start = std::max(start, address), cut_end = std::min(stop, end);
        bool whole = cut_start == start && cut_end == stop;
        if (whole) {
            release(live, live.size, true);
            continue;
        }
        // A partial unmap keeps what is left on either side, under the same stack.
        release(live, cut_end - cut_start, false);
        if (start < cut_start) {
            Live left = live;
            left.size = cut_start - start;
            d_mappings[start] = left;
        }
        if (cut_end < stop) {
            Live right = live;
            right.size = stop - cut_end;
            it = d_mappings.emplace(cut_end, right).first;
            ++it;
        }
    }
}

void Reader::reset_window(uint64_t only_tid) {
    d_only_tid = only_tid;
    d_last_address = 0;
    std::fill(std::begin(d_last_by_class), std::end(d_last_by_class), 0);
    d_last_freed = 0;
    d_address_low = 0;
    d_events = 0;
    d_last_stack = 0;
    d_last_native = 0;
    d_native_nodes_at_window = d_native_nodes.size();
    d_tid = 0;
    d_accs.clear();
    d_acc_index.clear();
    d_live.clear();
    d_mappings.clear();
    d_tid_slots.clear();
    d_slot_tids.clear();
    d_heap = d_peak = d_peak_ms = d_peak_version = d_alloc_seq = 0;
    d_total_count = d_total_bytes = d_unmatched_frees = 0;
    memset(d_kind_counts, 0, sizeof(d_kind_counts));
    memset(d_kind_bytes, 0, sizeof(d_kind_bytes));
    memset(d_histogram, 0, sizeof(d_histogram));
    d_timeline.clear();
    d_intervals.clear();
    d_marks.clear();
}

std::vector<StackRow> Reader::rows(Which which, bool merge_threads, bool merge_kinds) const {
    std::unordered_map<uint64_t, size_t> index;
    std::vector<StackRow> out;
    std::unordered_map<uint64_t, uint32_t> tid_slots;
    for (const Acc& acc : d_accs) {
        int64_t bytes = 0, count = 0;
        switch (which) {
            case PEAK:
                bytes = acc.saved_for == d_peak_version ? acc.saved_bytes : acc.cur_bytes;
                count = acc.saved_for == d_peak_version ? acc.saved_count : acc.cur_count;
                break;
            case LEAKS: bytes = acc.cur_bytes; count = acc.cur_count; break;
            case TEMPORARY: bytes = static_cast<int64_t>(acc.temp_bytes); count = static_cast<int64_t>(acc.temp_count); break;
            case TOTAL: bytes = static_cast<int64_t>(acc.total_bytes); count = static_cast<int64_t>(acc.total_count); break;
        }
        if (bytes <= 0 && count <= 0) continue;
        uint64_t tid = merge_threads ? 0 : acc.tid;
        uint8_t kind = merge_kinds ? 0 : acc.kind;
        uint32_t slot = tid_slots.emplace(tid, static_cast<uint32_t>(tid_slots.size())).first->second;
        uint64_t key = (static_cast<uint64_t>(acc.stack) << 32) | (static_cast<uint64_t>(kind) << 24) | slot;
        auto [it, inserted] = index.emplace(key, out.size());
        if (inserted) out.push_back({acc.stack, tid, kind, 0, 0});
        out[it->second].bytes += static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
        out[it->second].count += static_cast<uint64_t>(std::max<int64_t>(count, 0));
    }
    std::sort(out.begin(), out.end(), [](const StackRow& a, const StackRow& b) {
        return a.bytes != b.bytes ? a.bytes > b.bytes : a.count > b.count;
    });
    return out;
}

std::vector<IntervalRow> Reader::intervals() {
    std::vector<IntervalRow> out;
    auto ms_of = [this](uint32_t sample) {
        return sample == 0 ? 0 : d_timeline[std::min<size_t>(sample, d_timeline.size()) - 1].ms;
    };
    for (const auto& [key, cell] : d_intervals) {
        const Acc& acc = d_accs[std::get<0>(key)];
        out.push_back({acc.stack, acc.tid, acc.kind, ms_of(std::get<1>(key)), static_cast<int64_t>(ms_of(std::get<2>(key))),
                       cell.first, cell.second});
    }
    // Still-live allocations, grouped by (accumulator, sample) like the freed ones.
    std::map<std::pair<uint32_t, uint32_t>, std::pair<uint64_t, uint64_t>> live_cells;
    auto add_live = [&](const Live& live) {
        auto& cell = live_cells[std::make_pair(live.acc, live.sample)];
        cell.first += live.size;
        cell.second += 1;
    };
    d_live.for_each([&](uint64_t, Live& live) { add_live(live); });
    for (const auto& [address, live] : d_mappings) add_live(live);
    for (const auto& [key, cell] : live_cells) {
        const Acc& acc = d_accs[key.first];
        out.push_back({acc.stack, acc.tid, acc.kind, ms_of(key.second), -1, cell.first, cell.second});
    }
    return out;
}

}  // namespace memprof
