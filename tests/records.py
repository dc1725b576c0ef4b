"""Hand-written capture records for the reader's tests, encoded here rather than by the code under test."""

from __future__ import annotations

import struct

# The fixed start of a capture file: magic, format version, reserved, header length.
FIXED_HEADER = struct.Struct("<8sHHI")


def varint(value: int) -> bytes:
    """``value`` as an unsigned LEB128 varint."""
    out = bytearray()
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)
    return bytes(out)


def zigzag(value: int) -> int:
    """A signed delta as the format's unsigned one."""
    return value * 2 if value >= 0 else -value * 2 - 1


def string(data: bytes) -> bytes:
    """A length-prefixed string."""
    return varint(len(data)) + data



def whole_frame_end(data: bytes) -> int:
    """Where the last whole part of a version 5+ capture's LZ4 frame (its header, a block, the end mark) ends in
    ``data``, read here per the LZ4 frame format: a reader cannot decode the bytes after it."""
    _, _, _, header_length = FIXED_HEADER.unpack_from(data)
    pos = FIXED_HEADER.size + header_length
    if len(data) < pos + 7:
        return pos
    flags = data[pos + 4]
    block_checksum = 4 if flags & 0x10 else 0
    end_mark = 4 + (4 if flags & 0x04 else 0)  # with the content checksum, if any
    pos += 7 + (8 if flags & 0x08 else 0)  # with the content size, if any
    while len(data) >= pos + 4:
        (word,) = struct.unpack_from("<I", data, pos)
        end = pos + end_mark if word == 0 else pos + 4 + (word & 0x7FFFFFFF) + block_checksum
        if end > len(data):
            break
        pos = end
    return pos
