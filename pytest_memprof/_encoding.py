"""Writing capture records from Python (see docs/capture-format.md), for files we build after the fact.

The tracker writes its stream natively; these helpers serve the writers that re-encode what a
reader already holds: a pytest test's window as a standalone file, and aggregated captures.
"""

from __future__ import annotations

import os
from pathlib import Path

import lz4.frame

from ._reader import FORMAT_VERSION, NativeReader

THREAD, THREAD_NAME, FRAME, NODE, TRAILER = 64, 65, 66, 67, 70
ENTRY_NODE, NATIVE_NODE, MAPS, MAP, EVAL_NATIVE_NODE = 71, 72, 73, 74, 76
AGG_STACK, AGG_SAMPLE, AGG_SUMMARY = 80, 81, 82
MAX_STRING = 1 << 16


def varint(value: int, out: bytearray) -> None:
    """Append ``value`` as an unsigned LEB128 varint."""
    while value >= 0x80:
        out.append((value & 0x7F) | 0x80)
        value >>= 7
    out.append(value)


def string(text: str, out: bytearray) -> None:
    """Append a length-prefixed UTF-8 string, cut to the format's limit."""
    data = text.encode("utf-8", errors="replace")[: MAX_STRING - 1]
    varint(len(data), out)
    out += data


def prelude(reader: NativeReader, frames: int | None = None, nodes: int | None = None,
            native_nodes: int | None = None) -> bytearray:
    """FRAME, NODE and THREAD_NAME records for the first ``frames``/``nodes`` ids the reader knows (all by default).

    With native stacks, also the mappings and the first ``native_nodes`` native stack nodes.
    """
    out = bytearray()
    for function, file, first_line in reader.frames()[:frames]:
        out.append(FRAME)
        string(function, out)
        string(file, out)
        varint(first_line, out)
    for (parent, frame, line), entry in zip(reader.nodes()[:nodes], reader.entry_flags()):
        out.append(ENTRY_NODE if entry else NODE)
        varint(parent, out)
        varint(frame, out)
        varint(line, out)
    maps = reader.maps()
    if maps:
        # Every mapping the session saw: a node resolves against the latest one holding it.
        out.append(MAPS)
        for start, end, load_base, path, build_id in maps:
            out.append(MAP)
            varint(start, out)
            varint(end, out)
            varint(load_base, out)
            string(path, out)
            identity = bytes.fromhex(build_id)
            varint(len(identity), out)
            out += identity
    for parent, address, _, in_eval_loop in reader.native_nodes()[:native_nodes]:
        out.append(EVAL_NATIVE_NODE if in_eval_loop else NATIVE_NODE)
        varint(parent, out)
        varint(address, out)
    for tid, name in reader.thread_names().items():
        out.append(THREAD_NAME)
        varint(tid, out)
        string(name, out)
    return out


def file_prefix(header: bytes, version: int = FORMAT_VERSION) -> bytes:
    """The fixed 16 bytes and the JSON header that start a capture file."""
    return b"MEMPROF\x00" + version.to_bytes(2, "little") + b"\x00\x00" + len(header).to_bytes(4, "little") + header


def write_capture(path: Path, header: bytes, records: bytes) -> None:
    """Write a whole capture file under a temporary name, then rename it: never a half-written file."""
    partial = path.with_name(path.name + ".partial")
    with open(partial, "wb") as handle:
        handle.write(file_prefix(header) + lz4.frame.compress(records, block_checksum=True))
    os.replace(partial, path)
