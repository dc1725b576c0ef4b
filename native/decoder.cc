#include "decoder.h"

#include <algorithm>
#include <iterator>

namespace memprof {

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
