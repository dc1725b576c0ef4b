"""What a truncated capture is missing, in the words every report and ``memprof parse`` use.

A file cut inside a block loses that whole block: a block is decoded only whole, because its
checksum covers it whole and nothing else tells a cut from damage. Its events are then missing
from every figure, so a report must say how much could not be decoded rather than let "0
allocations" read as the whole truth (docs/capture-format.md).
"""

from __future__ import annotations

from typing import Protocol


class _TruncationFacts(Protocol):
    """What a CaptureReader tells about how its input ended."""

    truncated: bool
    saw_trailer: bool
    cut_bytes: int | None
    cut_block_bytes: int
    records: int
    damaged_blocks: int
    error: str | None
    format_version: int
    total_allocations: int


def records_lost_at_end(reader: _TruncationFacts) -> bool:
    """Whether the file ends inside a block the tracker wrote, so records in it could not be decoded."""
    if not reader.truncated or reader.saw_trailer:
        return False
    return reader.cut_bytes is None or reader.cut_bytes > 0


def truncation_text(reader: _TruncationFacts) -> str | None:
    """Why a capture reads as truncated and what it lost, as a clause ("its last 6,561 bytes ..."); None if whole."""
    if not reader.truncated:
        return None
    cut = reader.cut_bytes
    if cut is None:
        return (f"it ends early, and a capture format version {reader.format_version} file does not tell how many "
                "bytes at its end could not be decoded: any events in them are missing")
    if cut and reader.saw_trailer:
        return f"its last {_bytes(cut)} are cut short after the tracker's trailer: every record is there"
    if cut and reader.cut_block_bytes:
        return (f"its last {_bytes(cut)} could not be decoded: they begin a block of {reader.cut_block_bytes:,} "
                "bytes that is cut short, and the events in it are missing")
    if cut:
        return f"its last {_bytes(cut)} could not be decoded: any events in them are missing"
    if reader.error and not reader.damaged_blocks:
        return reader.error  # corruption stopped decoding; the text says where
    if not reader.records:
        return "it ends right after its header, before any record"
    return "it ends after its last whole block, without the tracker's trailer"


NONE_RECORDED = "No allocations were recorded in this capture."
NONE_DECODED = "No allocations could be decoded: any in the part of the file that is cut short are lost."


def no_allocations_text(reader: _TruncationFacts) -> str:
    """The line a report shows for a capture without allocations: none recorded, or none that could be decoded."""
    return NONE_DECODED if records_lost_at_end(reader) and not reader.total_allocations else NONE_RECORDED


def _bytes(count: int) -> str:
    return "byte" if count == 1 else f"{count:,} bytes"
