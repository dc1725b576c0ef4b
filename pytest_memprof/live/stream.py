"""The live stream without any UI: decode capture bytes as they arrive and summarise what is live now.

The wire carries exactly the bytes of a capture file (fixed header, JSON header, one LZ4 frame), so
the reader that opens files (C++, native/reader.h) follows a file being written and a socket fed
by ``memprof run --live-remote`` alike.
Everything here comes from the tracked program or the network: it is bounded and checked, and a
problem is one line of text, never a traceback.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Callable, Protocol

from .._reader import CaptureReader
from ..capture import Capture, metadata_from_header
from ..errors import CaptureError
from ..model import CaptureMetadata, ThreadInfo, View
from . import parse_exit_mark

MAX_DECOMPRESSED = 8 << 20  # per step: LZ4 expands up to 255 times, and a peer may send a bomb
TIMELINE_POINTS = 512  # the view's plots never need more than a terminal's width of points


class StreamDecoder:
    """Decode a capture's bytes incrementally, in chunks of any size, into a CaptureReader (which checks them)."""

    def __init__(self, source_name: str) -> None:
        self.source_name = source_name
        self.reader = CaptureReader()
        self.reader.set_source(source_name)
        self.header: dict | None = None
        self.metadata: CaptureMetadata | None = None
        self.version = 0
        self.problem: str | None = None  # corrupt data after a valid header: decoding stopped there
        self.bytes_received = 0

    @property
    def started(self) -> bool:
        """Whether the whole header has arrived (records may follow)."""
        return self.header is not None

    @property
    def frame_done(self) -> bool:
        """Whether the LZ4 end mark arrived: the capture is complete."""
        return bool(self.reader.frame_done)

    @property
    def stopped(self) -> bool:
        """Whether no more bytes will be decoded (complete, or stopped at corrupt data)."""
        return self.frame_done or self.problem is not None

    def feed(self, data: bytes) -> None:
        """Decode ``data``; raises CaptureError if the stream is not a capture this memprof can read."""
        if self.stopped or not data:
            return
        self.bytes_received += len(data)
        more = self.reader.feed_capture(data, MAX_DECOMPRESSED)
        if self.header is None and self.reader.header_json is not None:
            self._take_header(self.reader.header_json)
        if not more and not self.frame_done:
            self.problem = self.reader.error or "corrupt capture records; decoding stopped"
        elif not more and self.reader.error:  # ended, but with damaged blocks skipped on the way
            self.problem = self.reader.error

    def _take_header(self, text: str) -> None:
        try:
            header = json.loads(text)
            if not isinstance(header, dict):
                raise ValueError("not a JSON object")
            self.metadata = metadata_from_header(header, self.reader.format_version)
        except ValueError as error:  # JSONDecodeError is a ValueError
            raise CaptureError(f"{self.source_name} sends a corrupt capture header ({error})") from None
        self.header, self.version = header, self.reader.format_version


@dataclass(frozen=True)
class LocationRow:
    """Memory live now that was allocated at one line, by one thread."""

    function: str
    file: str
    line: int
    thread_id: int
    thread_name: str
    bytes: int
    count: int

    @property
    def location(self) -> str:
        """``file:line`` (empty for memory with no known Python stack)."""
        return f"{self.file}:{self.line}" if self.file else ""


@dataclass(frozen=True)
class LiveState:
    """Everything the view shows at one moment."""

    source: str
    program: str = ""
    pid: int = 0
    started: bool = False  # the header arrived
    ended: bool = False  # the stream is over (the program ended, or we lost it)
    exit_code: int | None = None
    truncated: bool = False  # the stream ended without the capture's trailer
    problem: str | None = None
    elapsed_s: float = 0.0
    heap_bytes: int = 0
    peak_bytes: int = 0
    rss_bytes: int = 0
    heap_series: tuple[int, ...] = ()
    rss_series: tuple[int, ...] = ()
    rows: tuple[LocationRow, ...] = ()
    threads: tuple[ThreadInfo, ...] = ()
    log_path: str | None = None

    @property
    def state(self) -> str:
        """One phrase: waiting, running, or how it ended."""
        if not self.started:
            return "ended before its capture began" if self.ended else "waiting for the capture to start"
        if not self.ended:
            return "running"
        if self.problem and self.exit_code is None:
            return "not followed past corrupt data (see below)"
        if self.exit_code is not None:
            how = f"ended with exit code {self.exit_code}"
        else:
            how = "ended (exit code unknown)"
        return f"{how}; capture cut short" if self.truncated else how


class Source(Protocol):
    """Where capture bytes come from: a socket, or a file being written."""

    name: str

    def read(self, timeout: float) -> bytes | None:
        """Bytes that arrived within ``timeout`` seconds (b"" if none); None once there will be no more."""

    def close(self) -> None:
        """Release the source (and stop what it watches, if it owns it)."""


class LiveSession:
    """A source decoded as it arrives; ``pump`` reads, ``snapshot`` summarises. One thread at a time."""

    def __init__(self, source: Source, *, program: str = "", log_path: str | None = None,
                 exit_code: Callable[[], int | None] | None = None) -> None:
        self.source = source
        # Where the exit code comes from when the stream has no exit mark (a local program that was killed).
        self._exit_code = exit_code
        self.decoder = StreamDecoder(source.name)
        self.program = program
        self.log_path = log_path
        self.source_ended = False
        self._capture: Capture | None = None
        # (end ms when computed, heap series, rss series, last rss): the reader hands out the whole timeline
        # (100 samples a second), so on a long run it is re-read only once a plot point's worth of time passed.
        self._series: tuple[int, tuple[int, ...], tuple[int, ...], int] = (-1, (), (), 0)

    @property
    def ended(self) -> bool:
        """Whether the stream is over."""
        return self.source_ended or self.decoder.stopped

    def pump(self, seconds: float = 0.25, budget: int = 16 << 20) -> bool:
        """Decode what arrives for up to ``seconds`` (or ``budget`` bytes); False once the stream is over.

        Raises CaptureError if the stream is not a capture this memprof can read.
        """
        deadline = time.monotonic() + seconds
        taken = 0
        while not self.ended and taken < budget:
            remaining = deadline - time.monotonic()
            data = self.source.read(max(remaining, 0.0))
            if data is None:
                self.source_ended = True
                break
            self.decoder.feed(data)
            taken += len(data)
            if not data and remaining <= 0:
                break
        return not self.ended

    def wait_for_header(self, timeout: float) -> None:
        """Decode until the header has arrived; raises CaptureError if it does not within ``timeout``."""
        deadline = time.monotonic() + timeout
        while not self.decoder.started:
            if self.ended:
                raise CaptureError(f"{self.source.name} ended before a capture header arrived")
            if time.monotonic() > deadline:
                raise CaptureError(f"no capture header from {self.source.name} within {timeout:g} s: is it a "
                                   "program started with `memprof run --live-remote`?")
            self.pump(min(0.1, timeout))

    def snapshot(self) -> LiveState:
        """What is live now, by location and thread, plus the status and the heap/RSS history."""
        decoder = self.decoder
        base = {"source": self.source.name, "program": self.program, "log_path": self.log_path,
                "ended": self.ended, "problem": decoder.problem}
        metadata = decoder.metadata
        if metadata is None:
            return LiveState(**base)
        reader = decoder.reader
        if self._capture is None:
            self._capture = Capture.from_reader(reader, metadata)
        capture = self._capture
        names = reader.thread_names()
        threads = tuple(ThreadInfo(tid, names.get(tid, "")) for tid in reader.threads_seen())
        end_ms = int(reader.end_ms)
        if self.ended or end_ms - self._series[0] >= max(end_ms // TIMELINE_POINTS, 1):
            timeline = reader.timeline()
            self._series = (end_ms, downsample([heap for _, heap, _ in timeline]),
                            downsample([rss for _, _, rss in timeline]), timeline[-1][2] if timeline else 0)
        _, heap_series, rss_series, rss_bytes = self._series
        exit_code = None
        for mark_id, label, _ in reversed(reader.marks()):
            exit_code = parse_exit_mark(mark_id, label)
            if exit_code is not None:
                break
        if exit_code is None and self.ended and self._exit_code is not None:
            exit_code = self._exit_code()
        return LiveState(
            **{**base, "program": self.program or metadata.command_line},
            pid=metadata.pid,
            started=True,
            exit_code=exit_code,
            truncated=self.ended and not reader.saw_trailer,
            elapsed_s=reader.end_ms / 1000.0,
            heap_bytes=int(reader.current_bytes),
            peak_bytes=int(reader.peak_bytes),
            rss_bytes=rss_bytes,
            heap_series=heap_series,
            rss_series=rss_series,
            rows=tuple(live_locations(capture, reader.rows(View.LEAKS, False, True), names)),
            threads=threads,
        )

    def close(self) -> None:
        """Close the source."""
        self.source.close()


def live_locations(capture: Capture, rows: Sequence[tuple], names: dict[int, str]) -> list[LocationRow]:
    """Group the reader's live rows (stack, thread, allocator, bytes, count) by allocating line and thread."""
    totals: dict[tuple[str, str, int, int], list[int]] = {}
    for stack, tid, _, size, count in rows:
        if size <= 0:
            continue
        frames = capture.stack(stack)
        where = frames[-1] if frames else None
        key = (where.function, where.file, where.line, tid) if where else ("<no Python stack>", "", 0, tid)
        total = totals.setdefault(key, [0, 0])
        total[0] += size
        total[1] += count
    located = [LocationRow(function, file, line, tid, names.get(tid, ""), size, count)
               for (function, file, line, tid), (size, count) in totals.items()]
    located.sort(key=lambda row: row.bytes, reverse=True)
    return located


def downsample(values: list[int], points: int = TIMELINE_POINTS) -> tuple[int, ...]:
    """At most ``points`` values, each the highest of its stretch (a peak must not vanish from a plot)."""
    if len(values) <= points:
        return tuple(values)
    step = len(values) / points
    return tuple(max(values[int(i * step) : max(int((i + 1) * step), int(i * step) + 1)]) for i in range(points))

