// DWARF's LEB128 numbers, for both readers of DWARF-shaped bytes: the tracker's unwinder
// (.eh_frame) and the reports' symboliser (.debug_*). Each brings its own cursor and its own way
// of failing (the unwinder marks the cursor bad, the symboliser throws), so the decoding takes the
// next byte from a callable and only says whether the number was well formed.
#pragma once

#include <cstdint>

namespace memprof {

// Reads an unsigned LEB128 through next_byte(); false for a number of more than 64 bits (ten
// bytes), which no valid input has: hostile input is cut short there.
template <typename NextByte>
inline bool read_uleb128(NextByte&& next_byte, uint64_t* out) {
    uint64_t value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t byte = next_byte();
        value |= static_cast<uint64_t>(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            *out = value;
            return true;
        }
    }
    return false;
}

// The signed form, sign-extended from its last byte's bit 6.
template <typename NextByte>
inline bool read_sleb128(NextByte&& next_byte, int64_t* out) {
    uint64_t value = 0;
    for (unsigned shift = 0; shift < 64; shift += 7) {
        uint8_t byte = next_byte();
        value |= static_cast<uint64_t>(byte & 0x7f) << shift;
        if (!(byte & 0x80)) {
            shift += 7;
            if (shift < 64 && (byte & 0x40)) value |= ~uint64_t(0) << shift;
            *out = static_cast<int64_t>(value);
            return true;
        }
    }
    return false;
}

}  // namespace memprof
