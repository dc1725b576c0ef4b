#include "decoder.h"

#include <algorithm>
#include <iterator>

namespace memprof {

bool Decoder::decode_address(uint64_t field, uint64_t* base, uint64_t* address) {
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

bool Decoder::get_string(Cursor& cursor, std::string* out) {
    uint64_t length;
    const uint8_t* bytes;
    if (!cursor.get_varint(&length)) return false;
    if (length > kMaxStringLength) {
        cursor.pos = cursor.end + 1;  // tells short_read() this is corruption, not a cut
        return false;
    }
    if (!cursor.get_bytes(length, &bytes)) return false;
    out->assign(reinterpret_cast<const char*>(bytes), length);
    return true;
}

Decoded Decoder::corrupt(const char* what) {
    if (d_error.empty()) d_error = std::string("corrupt capture: ") + what + " in record " + std::to_string(d_records + 1);
    return Decoded::CORRUPT;
}

void Decoder::reset_window() {
    d_last_address = 0;
    std::fill(std::begin(d_last_by_class), std::end(d_last_by_class), 0);
    d_last_freed = 0;
    d_address_low = 0;
    d_events = 0;
    d_last_stack = 0;
    d_last_native = 0;
    d_tid = 0;
}

}  // namespace memprof
