#include "reader.h"

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cstring>
#include <iterator>
#include <new>
#include <tuple>

#include <fcntl.h>
#if defined(__GLIBC__)
#include <malloc.h>
#endif
#include <sys/stat.h>
#include <unistd.h>

#include "lz4.h"
#include "lz4frame.h"
#include "xxhash.h"

namespace memprof {

Reader::Reader(uint64_t only_tid, bool temporal, uint32_t temporary_threshold)
    : d_only_tid(only_tid), d_temporal(temporal), d_temporary_threshold(temporary_threshold ? temporary_threshold : 1) {}

Reader::~Reader() {
    if (d_file) fclose(d_file);
    if (d_dctx) LZ4F_freeDecompressionContext(d_dctx);
    if (d_content_hash) XXH32_freeState(d_content_hash);
}

std::string Reader::error() const {
    if (!d_damaged_blocks) return d_error;
    std::string text = std::to_string(d_damaged_blocks) + (d_damaged_blocks == 1 ? " damaged block" : " damaged blocks") +
                       " (checksum mismatch; the first at byte " + std::to_string(d_first_damage) + "): ";
    if (lost_tail()) {
        text += lost_events() ? std::to_string(lost_events()) + " events lost, and every event after the last good block"
                              : "every event from there on is lost";
    } else {
        text += std::to_string(lost_events()) + (lost_events() == 1 ? " event" : " events") +
                " lost; decoding resumed at the next good block";
    }
    if (!d_error.empty()) text += "; then " + d_error;
    return text;
}

bool Reader::fail(const std::string& message) {
    if (d_error.empty()) d_error = message;
    return false;
}

// ---- input: the capture's bytes, from a file or a socket -----------------------------------------

std::string Reader::problem_text() const {
    const std::string& at = d_source;
    std::string newest = std::to_string(kFormatVersion);
    std::string version = std::to_string(d_header_version);
    switch (d_read_error) {
        case ReadError::NONE: return std::string();
        case ReadError::CANNOT_OPEN: return "cannot open " + at + ": " + strerror(d_errno);
        case ReadError::NOT_A_CAPTURE:
            return d_stream ? at + " does not send a memprof capture stream (wrong magic bytes)"
                            : at + " is not a memprof capture (wrong magic bytes)";
        case ReadError::TOO_SHORT: return at + " is not a memprof capture (too short to hold a header)";
        case ReadError::NEWER_VERSION:
            return d_stream ? at + " sends capture format version " + version + "; this memprof reads up to version " +
                                  newest + " (upgrade pytest-memprof on this side)"
                            : at + " was written by capture format version " + version +
                                  ", newer than this memprof reads (up to version " + newest +
                                  "); upgrade pytest-memprof to read it";
        case ReadError::INVALID_VERSION:
            return at + (d_stream ? " sends" : " has") + " an invalid capture format version 0";
        case ReadError::CORRUPT_HEADER: return at + " is truncated or corrupt: its header is cut short";
        case ReadError::NOT_A_FILE: return at + " is " + d_file_type + ", not a capture file";
        case ReadError::HEADER_TOO_LONG:
            return at + (d_stream ? " sends" : " has") + " a corrupt capture header (" + std::to_string(d_header_length) +
                   " bytes long; a header is at most " + std::to_string(kMaxHeaderLength) + ")";
        case ReadError::HEADER_TOO_DEEP:
            return at + (d_stream ? " sends" : " has") + " a corrupt capture header (JSON nested deeper than " +
                   std::to_string(kMaxHeaderDepth) + " levels)";
    }
    return std::string();
}

bool Reader::refuse(ReadError error) {
    d_read_error = error;
    d_input = Input::STOPPED;
    return false;
}

// Checks what has arrived of the fixed header: a stranger is refused at its first bytes.
bool Reader::check_fixed_header() {
    size_t have = d_head.size() < sizeof(kMagic) ? d_head.size() : sizeof(kMagic);
    if (memcmp(d_head.data(), kMagic, have) != 0) return refuse(ReadError::NOT_A_CAPTURE);
    if (d_head.size() < kFileHeaderFixed) return true;
    d_header_version = static_cast<uint16_t>(d_head[8] | (d_head[9] << 8));
    if (d_header_version > kFormatVersion) return refuse(ReadError::NEWER_VERSION);
    if (d_header_version == 0) return refuse(ReadError::INVALID_VERSION);
    d_header_length = 0;
    for (int i = 0; i < 4; ++i) d_header_length |= static_cast<uint32_t>(d_head[12 + i]) << (8 * i);
    if (d_header_length > kMaxHeaderLength) return refuse(ReadError::HEADER_TOO_LONG);
    return true;
}

namespace {

// Whether JSON `text` nests arrays and objects deeper than `limit`: Python's json module recurses
// once per level, so a hostile header would end in a RecursionError (and traceback) there.
bool nests_deeper_than(const std::string& text, unsigned limit) {
    unsigned depth = 0;
    bool in_string = false;
    for (size_t i = 0; i < text.size(); ++i) {
        char c = text[i];
        if (in_string) {
            if (c == '\\') {
                ++i;
            } else if (c == '"') {
                in_string = false;
            }
        } else if (c == '"') {
            in_string = true;
        } else if (c == '[' || c == '{') {
            if (++depth > limit) return true;
        } else if ((c == ']' || c == '}') && depth > 0) {
            --depth;
        }
    }
    return false;
}

const char* file_type(mode_t mode) {
    if (S_ISFIFO(mode)) return "a FIFO";
    if (S_ISDIR(mode)) return "a folder";
    if (S_ISCHR(mode)) return "a character device";
    if (S_ISBLK(mode)) return "a block device";
    if (S_ISSOCK(mode)) return "a socket";
    return "not a regular file";
}

}  // namespace

size_t Reader::take_header(const uint8_t* data, size_t len) {
    size_t used = 0;
    while (d_input == Input::HEADER && used < len) {
        size_t want = d_head.size() < kFileHeaderFixed ? kFileHeaderFixed : kFileHeaderFixed + d_header_length;
        size_t part = std::min(want - d_head.size(), len - used);
        d_head.insert(d_head.end(), data + used, data + used + part);
        used += part;
        if (!check_fixed_header()) return used;
        if (d_head.size() == kFileHeaderFixed + d_header_length && d_head.size() >= kFileHeaderFixed) {
            d_header_json.assign(reinterpret_cast<const char*>(d_head.data()) + kFileHeaderFixed, d_header_length);
            if (nests_deeper_than(d_header_json, kMaxHeaderDepth)) {
                d_header_json.clear();
                refuse(ReadError::HEADER_TOO_DEEP);
                return used;
            }
            d_decoder.set_version(d_header_version);
            d_blocks = d_header_version >= kFirstSyncVersion;
            d_frame_in_offset = kFileHeaderFixed + d_header_length;
            if (LZ4F_isError(LZ4F_createDecompressionContext(&d_dctx, LZ4F_VERSION))) {
                throw std::bad_alloc();  // the only way creating a context fails
            }
            d_input = Input::RECORDS;
        }
    }
    return used;
}

bool Reader::take_records(const uint8_t* data, size_t len, size_t step) {
    if (d_blocks) return take_blocks(data, len);
    if (!step) step = 1;
    d_out.reserve(step);
    size_t offset = 0;
    for (;;) {
        size_t src_size = len - offset;
        size_t dst_size = step;
        size_t hint = LZ4F_decompress(d_dctx, d_out.data(), &dst_size, data + offset, &src_size, nullptr);
        if (LZ4F_isError(hint)) {
            d_truncated = true;
            fail("corrupt data at byte " + std::to_string(d_offset + offset) + " (" + LZ4F_getErrorName(hint) +
                 "); decoding stopped there");
            return finish_records();
        }
        offset += src_size;
        if (!parse_output(d_out.data(), dst_size)) return finish_records();
        if (hint == 0) {  // the frame's end mark: the capture is whole
            d_frame_done = true;
            d_offset += offset;
            return finish_records();
        }
        // On while output may be waiting inside the decompressor (the last call filled the buffer).
        if ((offset >= len && dst_size < step) || (src_size == 0 && dst_size == 0)) break;
    }
    d_offset += len;
    return true;
}

namespace {

uint32_t le32(const uint8_t* p) {
    return static_cast<uint32_t>(p[0]) | static_cast<uint32_t>(p[1]) << 8 | static_cast<uint32_t>(p[2]) << 16 |
           static_cast<uint32_t>(p[3]) << 24;
}

constexpr uint32_t kLz4FrameMagic = 0x184D2204;
constexpr size_t kLinkedWindow = 64 << 10;  // how far back a linked block may refer

}  // namespace

bool Reader::take_frame_header() {
    const uint8_t* p = d_frame_in.data() + d_frame_pos;
    size_t have = d_frame_len - d_frame_pos;
    if (have < 7) return true;
    uint8_t flags = p[4], bd = p[5];
    unsigned block_id = (bd >> 4) & 7;
    if (le32(p) != kLz4FrameMagic || (flags >> 6) != 1 || (flags & 0x02) || (bd & 0x8f) || block_id < 4) {
        d_truncated = true;
        return fail("corrupt data at byte " + std::to_string(d_frame_in_offset + d_frame_pos) +
                    " (not an LZ4 frame header); decoding stopped there");
    }
    size_t length = 7 + ((flags & 0x08) ? 8 : 0) + ((flags & 0x01) ? 4 : 0);
    if (have < length) return true;
    if (((XXH32(p + 4, length - 5, 0) >> 8) & 0xff) != p[length - 1]) {
        d_truncated = true;
        return fail("corrupt data at byte " + std::to_string(d_frame_in_offset + d_frame_pos) +
                    " (the LZ4 frame header fails its checksum); decoding stopped there");
    }
    if (flags & 0x01) {
        d_truncated = true;
        return fail("an LZ4 frame with a dictionary, which no capture uses; decoding stopped there");
    }
    d_linked = !(flags & 0x20);
    d_block_checksum = flags & 0x10;
    d_content_checksum = flags & 0x04;
    d_block_max = size_t{64 << 10} << (2 * (block_id - 4));
    if (d_content_checksum) {
        if (!d_content_hash) d_content_hash = XXH32_createState();
        if (!d_content_hash) throw std::bad_alloc();
        XXH32_reset(d_content_hash, 0);
    }
    d_out.reserve(d_block_max);
    d_frame_pos += length;
    d_frame_header = true;
    return true;
}

bool Reader::block_damaged(const char* why) {
    (void)why;
    if (!d_damaged_blocks) d_first_damage = d_frame_in_offset + d_frame_pos;
    ++d_damaged_blocks;
    d_content_hash_ok = false;
    // Whatever was left of a record is gone with the block; the next block's SYNC says the rest.
    d_pending.clear();
    d_pending_pos = 0;
    if (d_linked || d_header_version < kFirstSyncVersion) {
        d_truncated = true;  // linked blocks need the one before: nothing after this decodes
        d_decoder.lost_block(0);
        return false;
    }
    // A NODE or FRAME takes at least 4 bytes: a lost block held at most this many table records.
    d_decoder.lost_block(d_block_max / 4 + 1);
    return true;
}

void Reader::note_cut() {
    if (!d_blocks) {
        d_cut_bytes = kCutUnknown;
        return;
    }
    const uint8_t* p = d_frame_in.data() + d_frame_pos;
    d_cut_bytes = d_frame_len - d_frame_pos;
    // parse_blocks has already refused a size above the frame's block maximum.
    if (d_frame_header && d_cut_bytes >= 4 && le32(p) != 0) {
        d_cut_block_bytes = 4 + (le32(p) & 0x7fffffffu) + (d_block_checksum ? 4 : 0);
    }
}

bool Reader::decode_block(const uint8_t* block, size_t size, bool stored) {
    const uint8_t* out;
    size_t produced;
    if (stored) {
        out = block;
        produced = size;
    } else if (d_linked) {
        int n = LZ4_decompress_safe_usingDict(reinterpret_cast<const char*>(block), reinterpret_cast<char*>(d_out.data()),
                                              static_cast<int>(size), static_cast<int>(d_block_max),
                                              reinterpret_cast<const char*>(d_dict.data()),
                                              static_cast<int>(d_dict.size()));
        if (n < 0) return block_damaged("does not decompress");
        out = d_out.data();
        produced = static_cast<size_t>(n);
    } else {
        int n = LZ4_decompress_safe(reinterpret_cast<const char*>(block), reinterpret_cast<char*>(d_out.data()),
                                    static_cast<int>(size), static_cast<int>(d_block_max));
        if (n < 0) return block_damaged("does not decompress");
        out = d_out.data();
        produced = static_cast<size_t>(n);
    }
    if (d_linked) {
        if (produced >= kLinkedWindow) {
            d_dict.assign(out + produced - kLinkedWindow, out + produced);
        } else {
            d_dict.insert(d_dict.end(), out, out + produced);
            if (d_dict.size() > kLinkedWindow) d_dict.erase(d_dict.begin(), d_dict.end() - kLinkedWindow);
        }
    }
    if (d_content_checksum) XXH32_update(d_content_hash, out, produced);
    return parse_output(out, produced);
}

uint8_t* Reader::frame_room(size_t len) {
    if (d_frame_in.capacity() - d_frame_len < len && d_frame_pos > 0) {
        // What is left is less than a block: moving it down keeps the buffer at a block and a read.
        memmove(d_frame_in.data(), d_frame_in.data() + d_frame_pos, d_frame_len - d_frame_pos);
        d_frame_len -= d_frame_pos;
        d_frame_in_offset += d_frame_pos;
        d_frame_pos = 0;
    }
    d_frame_in.reserve(d_frame_len + len, d_frame_len);
    d_input_high = std::max(d_input_high, d_frame_in.capacity());
    return d_frame_in.data() + d_frame_len;
}

bool Reader::take_blocks(const uint8_t* data, size_t len) {
    if (len) memcpy(frame_room(len), data, len);
    d_frame_len += len;
    d_offset += len;
    return parse_blocks();
}

bool Reader::parse_blocks() {
    bool ok = true;
    while (ok) {
        if (!d_frame_header) {
            if (!take_frame_header()) return finish_records();
            if (!d_frame_header) break;
            continue;
        }
        const uint8_t* p = d_frame_in.data() + d_frame_pos;
        size_t have = d_frame_len - d_frame_pos;
        if (have < 4) break;
        uint32_t word = le32(p);
        if (word == 0) {  // the end mark
            if (d_content_checksum) {
                if (have < 8) break;
                if (d_content_hash_ok && XXH32_digest(d_content_hash) != le32(p + 4)) {
                    d_truncated = true;
                    fail("the capture fails its LZ4 content checksum");
                }
            }
            d_frame_done = true;
            d_frame_pos = d_frame_len;
            return finish_records();
        }
        size_t size = word & 0x7fffffffu;
        if (size > d_block_max) {
            // A damaged size field: where the next block starts is unknown.
            if (!d_damaged_blocks) d_first_damage = d_frame_in_offset + d_frame_pos;
            ++d_damaged_blocks;
            d_decoder.lost_block(0);
            d_truncated = true;
            return finish_records();
        }
        size_t whole = 4 + size + (d_block_checksum ? 4 : 0);
        if (have < whole) break;
        const uint8_t* block = p + 4;
        if (d_block_checksum && XXH32(block, size, 0) != le32(block + size)) {
            ok = block_damaged("checksum");
        } else if (!d_decoder.waiting_for_sync() || !d_linked) {
            ok = decode_block(block, size, word >> 31);
        }
        d_frame_pos += whole;
    }
    if (d_frame_pos == d_frame_len) {  // all parsed: the next bytes go to the start
        d_frame_in_offset += d_frame_pos;
        d_frame_pos = d_frame_len = 0;
    }
    return ok ? true : finish_records();
}

bool Reader::finish_records() {
    parse_pending(true);
    d_input = Input::STOPPED;
    // Nothing more is decoded: the input buffers go, and so do the live allocations unless
    // intervals() (temporal) needs them, so a report's own work after the read (templates, pages)
    // does not stack on the reader's largest table.
    d_in = ByteBuffer();
    d_out = ByteBuffer();
    d_frame_in = ByteBuffer();
    d_frame_len = d_frame_pos = 0;
    std::vector<uint8_t>().swap(d_pending);
    d_pending_pos = 0;
    if (!d_temporal) {
        d_live = decltype(d_live)();
        d_mappings.clear();
    }
#if defined(__GLIBC__)
    // glibc keeps freed heap pages resident (its trim threshold rises with each large free):
    // hand them back now, before the report builds its pages.
    malloc_trim(0);
#endif
    return false;
}

bool Reader::feed_capture(const uint8_t* data, size_t len, size_t step) {
    d_stream = true;
    if (d_input == Input::HEADER) {
        size_t used = take_header(data, len);
        d_offset += used;
        data += used;
        len -= used;
    }
    if (d_input != Input::RECORDS) return d_input == Input::HEADER;
    return len == 0 || take_records(data, len, step);
}

bool Reader::open(const std::string& path) {
    d_source = path;
    // O_NONBLOCK: opening a FIFO must not wait for a writer; anything but a regular file is
    // refused before a byte is read (a FIFO or a terminal would block, a device never ends).
    int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        d_errno = errno;
        return refuse(ReadError::CANNOT_OPEN);
    }
    struct stat info;
    if (fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
        d_file_type = fstat(fd, &info) == 0 ? file_type(info.st_mode) : "not a regular file";
        ::close(fd);
        return refuse(ReadError::NOT_A_FILE);
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK);
    d_file = fdopen(fd, "rb");
    if (!d_file) {
        d_errno = errno;
        ::close(fd);
        return refuse(ReadError::CANNOT_OPEN);
    }
    fseek(d_file, 0, SEEK_END);
    long size = ftell(d_file);
    fseek(d_file, 0, SEEK_SET);
    d_file_size = size > 0 ? static_cast<uint64_t>(size) : 0;
    uint8_t fixed[kFileHeaderFixed];
    size_t got = fread(fixed, 1, sizeof(fixed), d_file);
    d_offset = take_header(fixed, got);
    if (d_input == Input::STOPPED) return false;
    if (got < sizeof(fixed)) return refuse(ReadError::TOO_SHORT);
    if (d_input == Input::HEADER) {
        if (kFileHeaderFixed + d_header_length > d_file_size) return refuse(ReadError::CORRUPT_HEADER);
        std::vector<uint8_t> json(d_header_length);
        got = fread(json.data(), 1, json.size(), d_file);
        d_offset += take_header(json.data(), got);
        if (d_input == Input::HEADER) return refuse(ReadError::CORRUPT_HEADER);
    }
    return d_input == Input::RECORDS;
}

bool Reader::read_some(size_t budget) {
    if (!d_file || d_input != Input::RECORDS) return false;
    for (size_t taken = 0; taken < budget;) {
        // Version 5 reads straight into the frame buffer, parsed there; older versions' LZ4
        // streams go through the decompression context a read at a time.
        if (!d_blocks) {
            d_in.reserve(d_read_step);
            d_input_high = std::max(d_input_high, d_in.capacity());
        }
        uint8_t* into = d_blocks ? frame_room(d_read_step) : d_in.data();
        size_t got = fread(into, 1, d_read_step, d_file);
        if (got == 0) {
            d_truncated = true;  // end of file before the LZ4 end mark: the writer died or the file was cut
            note_cut();
            return finish_records();
        }
        if (d_blocks) {
            d_frame_len += got;
            d_offset += got;
            if (!parse_blocks()) return false;
        } else if (!take_records(d_in.data(), got, d_read_step)) {
            return false;
        }
        taken += got;
    }
    return true;
}

bool Reader::feed(const uint8_t* data, size_t len) {
    d_pending.insert(d_pending.end(), data, data + len);
    return parse_pending(false);
}

void Reader::feed_followed(void* reader, const uint8_t* data, size_t len) noexcept {
    Reader* self = static_cast<Reader*>(reader);
    try {
        self->feed(data, len);
    } catch (...) {  // on the sink's thread, where nothing could catch it
        self->d_follow_failed = true;
    }
}

void Reader::set_dump(FILE* out) { d_dumper.reset(new Dumper(out)); }

bool Reader::parse_output(const uint8_t* data, size_t len) {
    if (d_pending_pos < d_pending.size()) {  // a record begun before: it continues here
        d_pending.insert(d_pending.end(), data, data + len);
        return parse_pending(false);
    }
    d_pending.clear();
    d_pending_pos = 0;
    Cursor cursor{data, data + len};
    bool ok = parse_records(cursor, false);
    if (ok && cursor.pos < cursor.end) d_pending.assign(cursor.pos, cursor.end);
    return ok;
}

bool Reader::parse_pending(bool at_end) {
    Cursor cursor{d_pending.data() + d_pending_pos, d_pending.data() + d_pending.size()};
    bool ok = parse_records(cursor, at_end);
    size_t pos = static_cast<size_t>(cursor.pos - d_pending.data());
    // Compact once the parsed prefix dominates, so a long stream does not grow the buffer.
    if (pos > (1 << 20) && pos * 2 > d_pending.size()) {
        d_pending.erase(d_pending.begin(), d_pending.begin() + static_cast<long>(pos));
        pos = 0;
    }
    d_pending_pos = pos;
    return ok;
}

bool Reader::parse_records(Cursor& cursor, bool at_end) {
    bool ok = true;
    while (cursor.pos < cursor.end) {
        const uint8_t* record_start = cursor.pos;
        Decoded status = d_dumper ? d_decoder.next(cursor, *d_dumper) : d_decoder.next(cursor, *this);
        if (status == Decoded::RECORD) continue;
        cursor.pos = record_start;
        if (status == Decoded::CORRUPT) {
            fail(d_decoder.error());
            d_truncated = true;
            ok = false;
        } else if (at_end) {
            d_truncated = true;  // a record cut in half: the stream ends mid-write
        }
        break;
    }
    return ok;
}

// ---- the decoder's consumer: tables -------------------------------------------------------------

void Reader::thread_seen(uint64_t tid) {
    if (std::find(d_threads_seen.begin(), d_threads_seen.end(), tid) == d_threads_seen.end()) {
        d_threads_seen.push_back(tid);
    }
}

const char* Reader::on(const ThreadRecord& record) {
    thread_seen(record.tid);
    return nullptr;
}

const char* Reader::on(ThreadNameRecord& record) {
    d_thread_names[record.tid] = std::move(record.name);
    return nullptr;
}

const char* Reader::on(FrameRecord& record) {
    d_frames.push_back(std::move(record));
    return nullptr;
}

const char* Reader::on(const NodeRecord& record) {
    d_nodes.push_back(record);
    return nullptr;
}

const char* Reader::on(NativeNodeRecord& record) {
    record.map = map_of(record.address);
    d_native_nodes.push_back(record);
    return nullptr;
}

const char* Reader::on(const MapsRecord&) {
    d_current_maps.clear();
    d_maps_sorted = true;
    return nullptr;
}

const char* Reader::on(MapRecord& record) {
    constexpr size_t kMaxMappings = 1u << 20;  // more than any process holds: a hostile stream
    auto key = std::make_tuple(record.start, record.end, record.load_base, record.path, record.build_id);
    auto found = d_map_ids.find(key);
    uint32_t id;
    if (found != d_map_ids.end()) {
        id = found->second;
    } else {
        if (d_maps.size() >= kMaxMappings) return "more mappings than a process can hold";
        id = static_cast<uint32_t>(d_maps.size());
        d_map_ids.emplace(std::move(key), id);
        d_maps.push_back(std::move(record));
    }
    if (d_current_maps.size() >= kMaxMappings) return "more mappings than a process can hold";
    d_current_maps.push_back(id);
    d_maps_sorted = false;
    return nullptr;
}

const char* Reader::on(const SyncRecord& record) {
    if (!record.after_loss) return nullptr;
    // Ids count records: stand-ins for the frames and stacks the lost blocks defined keep every
    // later id pointing where the writer meant. Their events are gone; a stack that was defined
    // there shows as lost.
    if (d_frames.size() < record.frames) {
        d_frames.resize(record.frames, FrameRecord{"<lost in a damaged block>", "<damaged capture>", 0});
    }
    if (d_nodes.size() < record.nodes) d_nodes.resize(record.nodes, NodeRecord{0, 0, kLostLine, false});
    if (d_native_nodes.size() < record.native_nodes) {
        d_native_nodes.resize(record.native_nodes, NativeNodeRecord{0, 0, -1, false});
    }
    return nullptr;
}

const char* Reader::on(MarkRecord& record) {
    d_marks.push_back({record.id, std::move(record.label), d_heap});
    return nullptr;
}

// ---- the decoder's consumer: events and aggregates ----------------------------------------------

const char* Reader::on(const AllocRecord& record) {
    uint32_t stack = record.has_native ? hybrid_stack(record.stack, record.native) : record.stack;
    if (stack == UINT32_MAX) return "more distinct stacks than a capture can hold";
    if (d_only_tid && record.tid != d_only_tid) return nullptr;
    uint64_t address = record.address, size = record.size;
    if (d_event_log) {
        d_events.push_back({d_decoder.last_ms(), record.tid, address, size, stack, record.allocator, false});
    }
    Live* slot = nullptr;  // the live table's entry, found or made with one probe
    if (record.allocator == MMAP) {
        on_munmap(address, size, record.tid);  // a fixed mapping replaces whatever was there
    } else {
        auto [entry, inserted] = d_live.insert(address);
        if (!inserted) release(*entry, entry->size, true, record.tid);  // its free was never seen
        slot = entry;
    }
    uint32_t acc_index = acc_for(stack, record.allocator, record.tid);
    Acc& acc = d_accs[acc_index];
    change(acc, static_cast<int64_t>(size), 1);
    acc.total_bytes += size;
    acc.total_count += 1;
    d_heap += size;
    if (d_heap > d_peak) {
        d_peak = d_heap;
        d_peak_ms = d_decoder.last_ms();
        ++d_peak_version;
    }
    ++d_total_count;
    d_total_bytes += size;
    d_allocator_counts[record.allocator] += 1;
    d_allocator_bytes[record.allocator] += size;
    d_histogram[size ? 64 - __builtin_clzll(size) : 0] += 1;
    Live live{size, acc_index, static_cast<uint32_t>(d_timeline.size()), ++d_slot_seqs[slot_for(record.tid)]};
    if (slot) {
        *slot = live;  // nothing was inserted into d_live since the probe: the slot still stands
    } else {
        d_mappings[address] = live;
    }
    return nullptr;
}

const char* Reader::on(const FreeRecord& record) {
    if (d_event_log && (!d_only_tid || record.tid == d_only_tid)) {
        d_events.push_back({d_decoder.last_ms(), record.tid, record.address, record.size, 0, record.allocator, true});
    }
    if (record.allocator == MUNMAP) {
        on_munmap(record.address, record.size, record.tid);
    } else {
        on_free(record.address, record.tid);
    }
    return nullptr;
}

const char* Reader::on(const SampleRecord& record) {
    if (d_start_ms == kNoStart) d_start_ms = record.ms;
    d_timeline.push_back({record.ms, d_heap, record.rss});
    return nullptr;
}

const char* Reader::on(const AggStackRecord& record) {
    if (d_only_tid && record.tid != d_only_tid) return nullptr;
    thread_seen(record.tid);
    uint32_t stack = record.native ? hybrid_stack(record.stack, record.native) : record.stack;
    if (stack == UINT32_MAX) return "more distinct stacks than a capture can hold";
    Acc& acc = d_accs[acc_for(stack, record.allocator, record.tid)];
    // As if replayed: the values at the (only) peak are saved, the current ones are the leaks.
    acc.saved_for = d_peak_version;
    acc.saved_bytes += static_cast<int64_t>(record.at_peak.bytes);
    acc.saved_count += static_cast<int64_t>(record.at_peak.count);
    acc.cur_bytes += static_cast<int64_t>(record.leaked.bytes);
    acc.cur_count += static_cast<int64_t>(record.leaked.count);
    acc.total_bytes += record.total.bytes;
    acc.total_count += record.total.count;
    acc.temp_bytes += record.temporary.bytes;
    acc.temp_count += record.temporary.count;
    d_heap += record.leaked.bytes;
    d_total_bytes += record.total.bytes;
    d_total_count += record.total.count;
    d_allocator_bytes[record.allocator] += record.total.bytes;
    d_allocator_counts[record.allocator] += record.total.count;
    return nullptr;
}

const char* Reader::on(const AggSampleRecord& record) {
    d_timeline.push_back({record.ms, record.heap, record.rss});
    return nullptr;
}

const char* Reader::on(const AggSummaryRecord& record) {
    d_peak = record.peak;
    d_peak_ms = record.peak_ms;
    d_unmatched_frees = record.unmatched_frees;
    for (size_t i = 0; i < kHistogramBuckets; ++i) d_histogram[i] += record.histogram[i];
    return nullptr;
}

uint32_t Reader::hybrid_stack(uint32_t python, uint32_t native) {
    if (native == 0) return python;  // nothing unwound: a Python stack like any other
    // native <= the decoder's count of native nodes (checked there): the hints stay that small.
    if (native >= d_pair_hints.size()) d_pair_hints.resize(std::max<size_t>(native + 1, d_pair_hints.size() * 2));
    PairHint& hint = d_pair_hints[native];
    if (hint.pair != UINT32_MAX && hint.python == python) return kHybridStack | hint.pair;
    auto [slot, inserted] = d_pair_ids.insert((static_cast<uint64_t>(python) << 32) | native);
    if (inserted) {
        if (d_pairs.size() >= kHybridStack - 1) {
            d_pair_ids.erase((static_cast<uint64_t>(python) << 32) | native);
            return UINT32_MAX;
        }
        *slot = static_cast<uint32_t>(d_pairs.size());
        d_pairs.emplace_back(python, native);
    }
    hint = PairHint{python, *slot};
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

uint32_t Reader::new_slot_for(uint64_t tid) {
    auto slot_it = d_tid_slots.find(tid);
    uint32_t slot;
    if (slot_it == d_tid_slots.end()) {
        slot = static_cast<uint32_t>(d_slot_tids.size());
        d_tid_slots.emplace(tid, slot);
        d_slot_tids.push_back(tid);
        d_slot_seqs.push_back(0);
    } else {
        slot = slot_it->second;
    }
    d_last_tid = tid;
    d_last_slot = slot;
    return slot;
}

uint32_t Reader::acc_for(uint32_t stack, uint8_t allocator, uint64_t tid) {
    uint32_t slot = slot_for(tid);
    uint64_t key = (static_cast<uint64_t>(stack) << 32) | (static_cast<uint64_t>(allocator) << 24) | (slot & 0xffffff);
    // A loop allocates from one line again and again: the last answer saves the probe.
    if (key == d_last_acc_key && d_last_acc != UINT32_MAX) return d_last_acc;
    // Else the last answer for this stack, if of the same allocator and thread: a loop's few
    // call sites in turn, each mostly of one allocator and one thread. Stack ids are the
    // decoder's, checked against its tables (or hybrid_stack's, as dense): the hints stay small.
    std::vector<AccHint>& hints = (stack & kHybridStack) ? d_hybrid_hints : d_python_hints;
    uint32_t id = stack & ~kHybridStack;
    if (id >= hints.size()) hints.resize(std::max<size_t>(id + 1, hints.size() * 2));
    AccHint& hint = hints[id];
    if (hint.window == d_window) {
        const Acc& acc = d_accs[hint.acc];
        if (acc.allocator == allocator && acc.tid == tid) {
            d_last_acc_key = key;
            d_last_acc = hint.acc;
            return hint.acc;
        }
    }
    auto [index, inserted] = d_acc_index.insert(key);
    if (inserted) {
        *index = static_cast<uint32_t>(d_accs.size());
        Acc acc{};
        acc.stack = stack;
        acc.allocator = allocator;
        acc.tid = tid;
        acc.saved_for = d_peak_version;  // born after the latest peak: 0 bytes at that peak
        d_accs.push_back(acc);
    }
    d_last_acc_key = key;
    d_last_acc = *index;
    hint = AccHint{*index, d_window};
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

// Inlined into its callers, all in this file (one a free): 2% of a replay as a call.
__attribute__((always_inline)) inline void Reader::release(Live& live, uint64_t bytes, bool whole, uint64_t tid) {
    Acc& acc = d_accs[live.acc];
    change(acc, -static_cast<int64_t>(bytes), whole ? -1 : 0);
    d_heap -= bytes;
    if (!whole) return;
    // Temporary: freed by the thread that made it, after fewer than the threshold of its other allocations.
    if (acc.tid == tid && d_slot_seqs[slot_for(tid)] - live.seq < d_temporary_threshold) {
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

void Reader::on_free(uint64_t address, uint64_t tid) {
    Live* live = address == kNoAddress ? nullptr : d_live.find(address);
    if (!live) {
        ++d_unmatched_frees;  // allocated before tracking (or this window) began
        return;
    }
    release(*live, live->size, true, tid);
    d_live.erase(address);
}

void Reader::on_munmap(uint64_t address, uint64_t size, uint64_t tid) {
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
            release(live, live.size, true, tid);
            continue;
        }
        // A partial unmap keeps what is left on either side, under the same stack.
        release(live, cut_end - cut_start, false, tid);
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
    d_decoder.reset_window();
    d_native_nodes_at_window = d_native_nodes.size();
    d_records_at_window = d_decoder.records();
    d_window_closed = false;
    d_threads_seen.clear();
    d_accs.clear();
    d_acc_index.clear();
    d_last_acc = UINT32_MAX;
    if (++d_window == 0) {  // wrapped: hints of window 0 would look current
        d_python_hints.clear();
        d_hybrid_hints.clear();
        d_window = 1;
    }
    d_live.clear();
    d_mappings.clear();
    d_tid_slots.clear();
    d_slot_tids.clear();
    d_slot_seqs.clear();
    d_last_slot = UINT32_MAX;
    d_heap = d_peak = d_peak_ms = d_peak_version = 0;
    d_start_ms = kNoStart;
    d_total_count = d_total_bytes = d_unmatched_frees = 0;
    memset(d_allocator_counts, 0, sizeof(d_allocator_counts));
    memset(d_allocator_bytes, 0, sizeof(d_allocator_bytes));
    memset(d_histogram, 0, sizeof(d_histogram));
    d_timeline.clear();
    d_intervals.clear();
    d_marks.clear();
}

std::vector<StackRow> Reader::rows(View view, bool merge_threads, bool merge_allocators, bool largest_first) const {
    std::unordered_map<uint64_t, size_t> index;
    std::vector<StackRow> out;
    std::unordered_map<uint64_t, uint32_t> tid_slots;
    // Threads and allocators merged (stats, the flame graph's first view), a row is a stack: found by
    // its id in a table (Python nodes, then hybrid indexes) rather than a hash, in the same order.
    bool by_stack = merge_threads && merge_allocators;
    std::vector<size_t> python_at, hybrid_at;
    if (by_stack) {
        python_at.assign(d_nodes.size() + 1, SIZE_MAX);
        hybrid_at.assign(d_pairs.size(), SIZE_MAX);
    }
    for (const Acc& acc : d_accs) {
        int64_t bytes = 0, count = 0;
        switch (view) {
            case PEAK:
                bytes = acc.saved_for == d_peak_version ? acc.saved_bytes : acc.cur_bytes;
                count = acc.saved_for == d_peak_version ? acc.saved_count : acc.cur_count;
                break;
            case LEAKS: bytes = acc.cur_bytes; count = acc.cur_count; break;
            case TEMPORARY: bytes = static_cast<int64_t>(acc.temp_bytes); count = static_cast<int64_t>(acc.temp_count); break;
            case TOTAL: bytes = static_cast<int64_t>(acc.total_bytes); count = static_cast<int64_t>(acc.total_count); break;
        }
        if (bytes <= 0 && count <= 0) continue;
        size_t* at = nullptr;
        if (by_stack) {
            uint32_t id = acc.stack & ~kHybridStack;
            std::vector<size_t>& table = (acc.stack & kHybridStack) ? hybrid_at : python_at;
            if (id < table.size()) at = &table[id];
        }
        if (at != nullptr) {
            if (*at == SIZE_MAX) {
                *at = out.size();
                out.push_back({acc.stack, 0, 0, 0, 0});
            }
            out[*at].bytes += static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
            out[*at].count += static_cast<uint64_t>(std::max<int64_t>(count, 0));
            continue;
        }
        uint64_t tid = merge_threads ? 0 : acc.tid;
        uint8_t allocator = merge_allocators ? 0 : acc.allocator;
        uint32_t slot = tid_slots.emplace(tid, static_cast<uint32_t>(tid_slots.size())).first->second;
        uint64_t key = (static_cast<uint64_t>(acc.stack) << 32) | (static_cast<uint64_t>(allocator) << 24) | slot;
        auto [it, inserted] = index.emplace(key, out.size());
        if (inserted) out.push_back({acc.stack, tid, allocator, 0, 0});
        out[it->second].bytes += static_cast<uint64_t>(std::max<int64_t>(bytes, 0));
        out[it->second].count += static_cast<uint64_t>(std::max<int64_t>(count, 0));
    }
    if (largest_first) {
        // Ties go by stack, thread and allocator: an order that does not depend on the tables' layout,
        // which HybridLocator::location_totals reproduces without sorting.
        std::sort(out.begin(), out.end(), [](const StackRow& a, const StackRow& b) {
            if (a.bytes != b.bytes) return a.bytes > b.bytes;
            if (a.count != b.count) return a.count > b.count;
            return std::tie(a.stack, a.tid, a.allocator) < std::tie(b.stack, b.tid, b.allocator);
        });
    }
    return out;
}

std::vector<AggregateRow> Reader::aggregates() const {
    std::vector<AggregateRow> out;
    out.reserve(d_accs.size());
    auto positive = [](int64_t value) { return static_cast<uint64_t>(std::max<int64_t>(value, 0)); };
    for (const Acc& acc : d_accs) {
        bool at_peak = acc.saved_for == d_peak_version;
        AggregateRow row{acc.tid, acc.allocator, acc.stack,
                         {positive(at_peak ? acc.saved_bytes : acc.cur_bytes), positive(at_peak ? acc.saved_count : acc.cur_count),
                          positive(acc.cur_bytes), positive(acc.cur_count), acc.total_bytes, acc.total_count,
                          acc.temp_bytes, acc.temp_count}};
        bool any = false;
        for (uint64_t value : row.figures) any |= value != 0;
        if (any) out.push_back(row);
    }
    return out;
}

std::vector<IntervalRow> Reader::intervals() {
    std::vector<IntervalRow> out;
    auto ms_of = [this](uint32_t sample) {
        return sample == 0 ? 0 : d_timeline[std::min<size_t>(sample, d_timeline.size()) - 1].ms;
    };
    for (const auto& [key, cell] : d_intervals) {
        const Acc& acc = d_accs[std::get<0>(key)];
        out.push_back({acc.stack, acc.tid, acc.allocator, ms_of(std::get<1>(key)), static_cast<int64_t>(ms_of(std::get<2>(key))),
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
        out.push_back({acc.stack, acc.tid, acc.allocator, ms_of(key.second), -1, cell.first, cell.second});
    }
    return out;
}

}  // namespace memprof
