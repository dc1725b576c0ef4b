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
