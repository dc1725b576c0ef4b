"""``Capture``: the read side. Replays a capture (file or memory) into aggregates."""

from __future__ import annotations

import contextlib
import gc
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable

from ._reader import (
    FORMAT_VERSION,
    HYBRID_STACK,
    LOCATION_NATIVE_CALL,
    LOCATION_PYTHON_FRAME,
    LOST_LINE,
    CaptureReader,
)
from .errors import CaptureError
from .hybrid import HybridStacks
from .launcher import Launcher, Place
from .model import (
    CaptureMetadata,
    Frame,
    IntervalStat,
    StackStat,
    ThreadInfo,
    TimelinePoint,
    View,
    make_frame,
    make_stack_stat,
)
from .trie import memoised
from .truncation import no_allocations_text, records_lost_at_end, truncation_text

if TYPE_CHECKING:
    from .diff import DiffRow
    from .hybrid import NativeCall
    from .symbols import CaptureSymbols, MissingLibraryWarning

__all__ = ["AllocationRecord", "Capture", "MissingLibraryWarning", "metadata_from_header"]

ProgressCallback = Callable[[int, int], None]
# Compressed bytes read between two progress calls: ten million events fit in 4 MiB, so a bigger
# step would leave a bar with nothing to show until the end.
_PROGRESS_STEP = 256 << 10
_HEADER_FIELDS = {"pid", "python_version", "start_time", "command_line", "native", "trace_python_allocators",
                  "follow_fork", "aggregated"}


@contextlib.contextmanager
def _no_cycle_collection() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while stacks are built: they are tuples of frozen
    Frames (no cycles), made by the hundred thousand, and every full pass of the collector over
    them finds nothing (a quarter of a native flame graph's time). Made during the pause, they
    would all be young when it ends, and the next collection would scan them all: they are moved
    to the oldest generation first (freeze, then unfreeze), as surviving a few passes would have."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.freeze()
        gc.unfreeze()
        gc.enable()


def __getattr__(name: str) -> Any:
    # The symboliser (ctypes, ELF) is imported only for native frames; its warning class with it.
    if name == "MissingLibraryWarning":
        from .symbols import MissingLibraryWarning

        return MissingLibraryWarning
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


class _LazySymbols:
    """symbols.CaptureSymbols, made at the first native call: a capture without native frames (most)
    never imports the symboliser, whose import (ctypes, ELF) costs more than reading a small capture."""

    def __init__(self, python_executable: str | None) -> None:
        self._python_executable = python_executable
        self._symbols: CaptureSymbols | None = None
        self.maps: list[tuple[int, int, int, str, str]] = []
        self.warnings: list[str] = []

    def calls(self, wanted: list[tuple[int, int, bool]]) -> list[NativeCall]:
        return self._made().calls(wanted)

    def _made(self) -> CaptureSymbols:
        if self._symbols is None:
            from .symbols import CaptureSymbols

            self._symbols = CaptureSymbols(self._python_executable)
            self._symbols.warnings = self.warnings
        if self._symbols.maps is not self.maps:
            self._symbols.maps = self.maps
        return self._symbols


def metadata_from_header(header: dict, format_version: int = FORMAT_VERSION) -> CaptureMetadata:
    """Build CaptureMetadata from a header dict; a missing field takes its default, a mistyped one is a ValueError."""

    def field(name: str, kinds: tuple[type, ...], default):
        value = header.get(name, default)
        # bool is an int subclass: a pid of `true` is as wrong as a pid of "many".
        if not isinstance(value, kinds) or (isinstance(value, bool) and bool not in kinds):
            raise ValueError(f"field {name!r} is {type(value).__name__}, not {kinds[0].__name__}")
        return value

    return CaptureMetadata(
        format_version=format_version,
        pid=field("pid", (int,), 0),
        python_version=field("python_version", (str,), ""),
        start_time=float(field("start_time", (float, int), 0.0)),
        command_line=field("command_line", (str,), ""),
        native=field("native", (bool,), False),
        trace_python_allocators=field("trace_python_allocators", (bool,), True),
        follow_fork=field("follow_fork", (bool,), False),
        aggregated=field("aggregated", (bool,), False),
        extra={key: value for key, value in header.items() if key not in _HEADER_FIELDS},
    )


@dataclass(frozen=True)
class AllocationRecord:
    """One allocation or deallocation as recorded (memray's ``AllocationRecord`` of ``get_allocation_records``).

    ``allocator`` is the record's kind by name (``malloc``, ``PyObject_Malloc``, ``free``, ``munmap``,
    ...); a deallocation has ``size`` 0 (``munmap``: the length unmapped) and no stack. ``time_s`` is
    seconds since the capture began, to the tracker's clock (a 10 ms sampling interval).
    """

    time_s: float
    thread_id: int
    address: int
    size: int
    allocator: str
    deallocation: bool
    stack_id: int
    _capture: Capture = field(repr=False, compare=False)

    @property
    def tid(self) -> int:
        """memray's name for ``thread_id``."""
        return self.thread_id

    @property
    def n_allocations(self) -> int:
        """memray's count of allocations a record stands for: always one here."""
        return 1

    def stack(self) -> tuple[Frame, ...]:
        """The frames of the allocating call stack, outermost first (() for a deallocation)."""
        return self._capture.stack(self.stack_id) if self.stack_id else ()

    def stack_trace(self, max_stacks: int | None = None) -> list[tuple[str, str, int]]:
        """memray's form: (function, file, line) per frame, most recent call first, at most ``max_stacks``."""
        frames = [(frame.function, frame.file, frame.line) for frame in reversed(self.stack())]
        return frames if max_stacks is None else frames[:max_stacks]


class Capture:
    """Aggregates of one capture: peak, leaks, temporary allocations, timeline, stacks."""

    def __init__(self, reader: CaptureReader, metadata: CaptureMetadata, path: Path | None = None,
                 thread_id: int = 0, show_interpreter_frames: bool = False, temporary_threshold: int = 0) -> None:
        self._reader = reader
        self._thread_id = thread_id
        self.temporary_threshold = temporary_threshold
        self.metadata = metadata
        self.path = path
        self._frames: list[tuple[str, str, int]] = []
        self._frame_at: dict[int, Frame] = {}  # per frame id << 32 | line
        self._nodes: list[tuple[int, int, int]] = []
        self._stacks: dict[int, tuple[Frame, ...]] = {0: ()}
        # The launcher the header names (memprof run, pytest): stacks start below its frames. Nodes
        # that have not reached the program's first frame keep their state here.
        self._launcher = Launcher.of(metadata)
        self._places: dict[int, int] = {0: Place.BEFORE} if self._launcher else {}
        self._temporal_reader: CaptureReader | None = None
        # Native stacks (captures made with native=True): symbolised and assembled in symbols.py/hybrid.py.
        self._symbols = _LazySymbols(metadata.extra.get("python_executable"))
        self._hybrid = HybridStacks(self._symbols, show_interpreter_frames)
        self.warnings = self._symbols.warnings  # problems met while symbolising, each also issued as a warning

    # ---- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        path: str | os.PathLike[str],
        *,
        progress: ProgressCallback | None = None,
        thread_id: int = 0,
        temporal: bool = False,
        show_interpreter_frames: bool = False,
        temporary_threshold: int = 0,
    ) -> Capture:
        """Read a capture file; raises CaptureError with one line of text if it cannot be read.

        A file cut short (the process died) still opens: ``truncated`` is then True and the
        aggregates cover what was written. With native stacks, ``show_interpreter_frames`` keeps
        the interpreter's own C frames in every stack (they are hidden by default).
        ``temporary_threshold`` is memray's: an allocation is temporary when the thread that made it
        frees it after at most that many of its other allocations (0, the default: before any other).
        """
        path = Path(path)
        if temporary_threshold < 0:
            raise ValueError(f"temporary_threshold must be 0 or more, not {temporary_threshold}")
        header_text, reader = _read_file(path, progress=progress, thread_id=thread_id, temporal=temporal,
                                         temporary_threshold=temporary_threshold)
        try:
            header = json.loads(header_text)
            if not isinstance(header, dict):
                raise ValueError("not an object")
            metadata = metadata_from_header(header, reader.format_version)
        except ValueError as error:
            raise CaptureError(f"{path} has a corrupt header ({error})") from None
        capture = cls(reader, metadata, path, thread_id=thread_id, show_interpreter_frames=show_interpreter_frames,
                      temporary_threshold=temporary_threshold)
        if temporal:
            capture._temporal_reader = reader
        return capture

    @classmethod
    def from_reader(cls, reader: CaptureReader, metadata: CaptureMetadata | None = None) -> Capture:
        """Wrap a reader fed from memory (the pytest plugin's per-test window)."""
        return cls(reader, metadata or metadata_from_header({}))

    # ---- figures --------------------------------------------------------------------------------

    @property
    def truncated(self) -> bool:
        """True if the stream ends early (the process died, or the file was cut or corrupted)."""
        return bool(self._reader.truncated)

    @property
    def undecoded_bytes(self) -> int | None:
        """Bytes at the end of a file cut inside a block (or its LZ4 end mark) that could not be decoded.

        0 for a whole file or one that ends at a block's end; None for a cut file of a format
        version before 5, which does not tell."""
        return self._reader.cut_bytes

    @property
    def truncation(self) -> str | None:
        """Why the capture reads as truncated and what it lost, as a clause for a report; None if whole."""
        return truncation_text(self._reader)

    @property
    def records_lost_at_end(self) -> bool:
        """True if the file ends inside a block the tracker wrote: that block's records are missing."""
        return records_lost_at_end(self._reader)

    @property
    def no_allocations_text(self) -> str:
        """The line a report shows when it has no allocations: none recorded, or none that could be decoded."""
        return no_allocations_text(self._reader)

    @property
    def damaged(self) -> bool:
        """True if blocks of the file failed their checksum: their events are lost (``lost_events``, ``problem``)."""
        return bool(self._reader.damaged_blocks)

    @property
    def lost_events(self) -> int:
        """Allocations and frees in damaged blocks, as far as the next good block tells."""
        return int(self._reader.lost_events)

    @property
    def problem(self) -> str | None:
        """What cut the stream short, if it was corrupt rather than merely unfinished."""
        return self._reader.error

    @property
    def peak_bytes(self) -> int:
        """Highest number of bytes allocated and not yet freed at one moment."""
        return int(self._reader.peak_bytes)

    @property
    def leaked_bytes(self) -> int:
        """Bytes still allocated at the end of the capture."""
        return int(self._reader.current_bytes)

    @property
    def total_allocations(self) -> int:
        """Number of allocations made."""
        return int(self._reader.total_allocations)

    @property
    def total_bytes(self) -> int:
        """Sum of the sizes of all allocations made."""
        return int(self._reader.total_bytes)

    @property
    def start_ms(self) -> int:
        """Where this capture's clock starts on the tracker's: 0, or for a test's window the moment it
        opened (times in every figure are from here)."""
        start = self.metadata.extra.get("window_start_ms")
        if isinstance(start, int) and not isinstance(start, bool) and start >= 0:
            return start
        return int(self._reader.start_ms)

    def _since_start(self, ms: int) -> float:
        return max(0, ms - self.start_ms) / 1000.0

    @property
    def duration(self) -> float:
        """Seconds from the start of tracking (or of the test) to its end (or to the last record, if truncated)."""
        return self._since_start(self._reader.end_ms)

    @property
    def peak_time_s(self) -> float:
        """Seconds from the start when the peak was reached (to the sampling interval, 10 ms)."""
        return self._since_start(self._reader.peak_ms)

    @property
    def unmatched_frees(self) -> int:
        """Frees of memory allocated before tracking began (ignored in every figure)."""
        return int(self._reader.unmatched_frees)

    # ---- stacks ---------------------------------------------------------------------------------

    def stacks(self, view: View | str, merge_threads: bool = True, merge_allocators: bool = True,
               most: int | None = None) -> list[StackStat]:
        """The stacks of ``view`` (peak, leaks, temporary or total), largest first; with ``most``, only
        that many of the largest (the others' frames are not built)."""
        rows = self._reader.rows(View.of(view), merge_threads, merge_allocators)
        if most is not None:
            rows = rows[:most]
        with _no_cycle_collection():
            return [
                # Only a stack that shows no frame can be the launcher's own work.
                make_stack_stat(frames, size, count, tid, allocator, not frames and self.launcher_only(stack))
                for (stack, tid, allocator, size, count), frames in zip(rows, self._stacks_of([row[0] for row in rows]))
            ]

    def view_totals(self, view: View | str) -> tuple[int, int]:
        """(stacks, bytes) of ``view``, threads and allocators merged: ``len(stacks(view))`` and the sum of
        their bytes, without building a stack."""
        rows = self._reader.rows(View.of(view), True, True)
        return len(rows), sum(size for _, _, _, size, _ in rows)

    def peak_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Memory live at the peak, by stack, largest first."""
        return self.stacks(View.PEAK, merge_threads, merge_allocators)

    def leak_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Memory still live at the end, by stack, largest first."""
        return self.stacks(View.LEAKS, merge_threads, merge_allocators)

    def temporary_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Allocations freed after at most ``temporary_threshold`` other allocations, by stack, largest first."""
        return self.stacks(View.TEMPORARY, merge_threads, merge_allocators)

    def total_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Everything ever allocated, by stack, largest first."""
        return self.stacks(View.TOTAL, merge_threads, merge_allocators)

    def location_totals(self, view: View | str = View.TOTAL) -> list[tuple[Frame | None, int, int]]:
        """(allocating frame, bytes, count) per distinct allocating frame (``StackStat.location``) of
        ``view``'s stacks, threads and allocators merged, in the order of each frame's largest stack.

        Summed in C++ without building whole stacks (with native stacks, most of a report's time):
        the reader keys each stack by its Python frame or native call, walked over its tables with
        the calls classified here and the launcher rule as a table; only distinct keys become frames.
        """
        with _no_cycle_collection():
            return self._location_totals(view)

    def _location_totals(self, view: View | str) -> list[tuple[Frame | None, int, int]]:
        self._refresh_frames(self._reader)
        self._hybrid.set_tables(self._reader)
        locator, calls = self._hybrid.locator(self)
        totals: dict[Frame | None, list[int]] = {}
        for kind, first, second, size, count in locator.location_totals(View.of(view)):
            frame: Frame | None = None
            if kind == LOCATION_PYTHON_FRAME:
                frame = self._frame(first, second)
            elif kind == LOCATION_NATIVE_CALL:
                frame = calls[first].expand()[-1]
            total = totals.setdefault(frame, [0, 0])
            total[0] += size
            total[1] += count
        return [(frame, size, count) for frame, (size, count) in totals.items()]

    def parent(self, node: int) -> int:
        """The parent of Python stack node ``node`` in the capture's trie."""
        return self._nodes[node - 1][0]

    def node_frame(self, node: int) -> Frame:
        """The frame of Python stack node ``node``."""
        if node > len(self._nodes):
            self._refresh_tables(self._reader)
        _, frame_id, line = self._nodes[node - 1]
        return self._frame(frame_id, line)

    def launcher_transitions(self) -> bytes | None:
        """The launcher rule as a table per frame id (HybridLocator.place_python), or None without a launcher."""
        return self._launcher.transitions([file for _, file, _ in self._frames]) if self._launcher else None

    def _stacks_of(self, stack_ids: list[int]) -> list[tuple[Frame, ...]]:
        """``stack`` of each of ``stack_ids``; hybrid stacks are merged in one batch."""
        if not any(stack_id & HYBRID_STACK for stack_id in stack_ids):
            return [self.stack(stack_id) for stack_id in stack_ids]
        hybrid = [stack_id & ~HYBRID_STACK for stack_id in stack_ids if stack_id & HYBRID_STACK]
        if max(hybrid) >= len(self._hybrid.pairs):
            self._refresh_tables(self._reader)
        merged = iter(self._hybrid.stacks(hybrid, self))
        return [next(merged) if stack_id & HYBRID_STACK else self.stack(stack_id) for stack_id in stack_ids]

    def temporal_stacks(self) -> list[IntervalStat]:
        """Allocations grouped by stack and by the sampling ticks in which they were made and freed."""
        reader = self._temporal_reader
        if self.metadata.aggregated:
            raise CaptureError(f"{self.path or 'this capture'} is aggregated: it does not keep when allocations were "
                               "made (record it without --aggregate for temporal reports)")
        if reader is None:
            if self.path is None:
                raise CaptureError("temporal data is only available for captures read from a file")
            _, reader = _read_file(self.path, progress=None, thread_id=self._thread_id, temporal=True,
                                   temporary_threshold=self.temporary_threshold)
            self._temporal_reader = reader
        self._refresh_tables(reader)
        with _no_cycle_collection():
            intervals = reader.intervals()
            stacks = self._stacks_of([interval[0] for interval in intervals])
            return [
                IntervalStat(
                    frames=frames,
                    allocated_s=self._since_start(allocated),
                    freed_s=None if freed < 0 else self._since_start(freed),
                    bytes=size,
                    count=count,
                    thread_id=tid,
                    allocator=allocator,
                )
                for (_, tid, allocator, allocated, freed, size, count), frames in zip(intervals, stacks)
            ]

    def range_stacks(self, start_s: float, end_s: float | None = None) -> list[StackStat]:
        """What was allocated from ``start_s`` until ``end_s`` and was still live at ``end_s`` (None: the
        end of the capture), by stack, largest first: the temporal flame graph's answer for that range.

        Allocation times are known to the sampler's tick, so the range's ends are taken at ticks
        (``temporal_stacks``: each time is the tick an event followed): an allocation counts when its
        tick is in [start, end) and it was not freed in a tick before ``end_s``.
        """
        start_ms = round(start_s * 1000)
        end_ms = None if end_s is None else round(end_s * 1000)
        totals: dict[tuple[Frame, ...], list[int]] = {}
        for interval in self.temporal_stacks():
            allocated = round(interval.allocated_s * 1000)
            freed = None if interval.freed_s is None else round(interval.freed_s * 1000)
            if allocated < start_ms or (end_ms is not None and allocated >= end_ms):
                continue
            if freed is not None and (end_ms is None or freed < end_ms):
                continue
            total = totals.setdefault(interval.frames, [0, 0])
            total[0] += interval.bytes
            total[1] += interval.count
        return sorted((StackStat(frames=frames, bytes=size, count=count) for frames, (size, count) in totals.items()),
                      key=lambda stat: -stat.bytes)

    @property
    def show_interpreter_frames(self) -> bool:
        """Whether hybrid stacks keep the interpreter's own C frames (hidden by default)."""
        return self._hybrid.show_interpreter_frames

    @show_interpreter_frames.setter
    def show_interpreter_frames(self, value: bool) -> None:
        self._hybrid.show(value)

    def stack(self, node_id: int) -> tuple[Frame, ...]:
        """The frames of stack ``node_id``, outermost first (hybrid: Python and C frames, for native captures)."""
        cached = self._stacks.get(node_id)
        if cached is not None:
            return cached
        if node_id & HYBRID_STACK:
            return self._hybrid.stack(self._hybrid_index(node_id), self)
        if node_id > len(self._nodes):
            self._refresh_tables(self._reader)
        chain = []
        node = node_id
        while node and node not in self._stacks:
            chain.append(node)
            node = self._nodes[node - 1][0]
        prefix = self._stacks[node]
        for node in reversed(chain):
            parent, frame_id, line = self._nodes[node - 1]
            frame = self._frame(frame_id, line)
            if self._places:
                place = self._place(node)
                if place == Place.LAUNCHER:
                    prefix = ()
                elif self._places[parent] == Place.LAUNCHER:
                    prefix = (frame,)  # the program's first frame
                else:
                    prefix = (*prefix, frame)
            else:
                prefix = (*prefix, frame)
            self._stacks[node] = prefix
        return prefix

    def _frame(self, frame_id: int, line: int) -> Frame:
        # Nodes are paths: many share a frame and line (one function called from many places).
        key = frame_id << 32 | line
        frame = self._frame_at.get(key)
        if frame is None:
            if line == LOST_LINE:  # a stand-in for a stack node a damaged block defined
                frame = Frame("<lost in a damaged block>", "<damaged capture>", 0)
            else:
                function, file, first_line = self._frames[frame_id]
                frame = make_frame(function, file, line, False, first_line)
            self._frame_at[key] = frame
        return frame

    def _place(self, node: int) -> int:
        """Where Python stack node ``node`` is with respect to the launcher (launcher.py)."""
        return memoised(node, self._places, self.parent,
                        lambda above, node: self._launcher.place(above, self._frames[self._nodes[node - 1][1]][1]))

    def launcher_only(self, stack_id: int) -> bool:
        """Whether stack ``stack_id`` is the launcher's own work (pytest's, memprof run's): it shows no frames."""
        if not self._places or not stack_id:
            return False
        if stack_id & HYBRID_STACK:
            if self.stack(stack_id):
                return False
            stack_id = self._hybrid.pairs[self._hybrid_index(stack_id)][0]
            if not stack_id:
                return False
        if stack_id > len(self._nodes):
            self._refresh_tables(self._reader)
        return self._place(stack_id) == Place.LAUNCHER

    def _hybrid_index(self, stack_id: int) -> int:
        index = stack_id & ~HYBRID_STACK
        if index >= len(self._hybrid.pairs):
            self._refresh_tables(self._reader)
        return index

    # ---- comparing ------------------------------------------------------------------------------

    def diff(self, new: Capture, *, view: View | str = View.PEAK, stacks: bool = False, native: bool = False,
             min_bytes: int = 0) -> list[DiffRow]:
        """What changed from this capture (the base) to ``new``: one ``DiffRow`` per location, largest growth first.

        A row is an allocating location (function, file, line; with ``stacks``, a whole stack)
        with its figures in both captures: bytes live at the peak, leaked, in temporary
        allocations, and the allocations made (count and bytes). Lines may drift: a location
        matches where its function moved to (a blank line added above it changes nothing), else
        the nearest line of the same function and file. Rows sort by the change in ``view``'s
        bytes (peak, leaks, temporary or total), growth first; unchanged rows and rows whose
        change in ``view`` is under ``min_bytes`` are left out. Native frames count only with
        ``native`` (both captures recorded with native stacks); otherwise a location is the
        innermost Python frame.
        """
        from .diff import diff_captures

        return diff_captures(self, new, view=view, stacks=stacks, native=native, min_bytes=min_bytes)

    # ---- record by record -----------------------------------------------------------------------

    def allocation_records(self) -> Iterator[AllocationRecord]:
        """Every allocation and deallocation, in the order they happened (memray's ``get_allocation_records``).

        The file is replayed again, a block at a time, so a capture of any length is walked in
        bounded memory; a capture in memory or an aggregated one has no records to give (CaptureError).
        """
        if self.metadata.aggregated:
            raise CaptureError(f"{self.path or 'this capture'} is aggregated: it keeps per-stack totals, not each "
                               "allocation (record it without --aggregate)")
        if self.path is None:
            raise CaptureError("allocation records are only available for captures read from a file")
        reader = CaptureReader(only_tid=self._thread_id)
        reader.open(os.fspath(self.path))
        reader.log_events(True)
        more = True
        while more:
            more = reader.read_some(1 << 20)
            for ms, tid, address, size, stack, allocator, deallocation in reader.take_events():
                yield AllocationRecord(ms / 1000.0, tid, address, size, allocator, deallocation, stack, self)

    def allocations_at(self, time_s: float) -> list[AllocationRecord]:
        """The allocations live at ``time_s`` seconds after the capture began, in the order they were made."""
        live: dict[int, AllocationRecord] = {}
        for record in self.allocation_records():
            if record.time_s > time_s:
                break
            if not record.deallocation:
                live.pop(record.address, None)  # an address reused without a free seen
                live[record.address] = record
            elif record.allocator == "munmap":
                # An unmapping may cover several mappings, or part of one (which then stays, smaller).
                end = record.address + record.size
                for address in [address for address, kept in live.items()
                                if kept.allocator == "mmap" and record.address <= address < end]:
                    del live[address]
            else:
                live.pop(record.address, None)
        return list(live.values())

    # ---- other aggregates -----------------------------------------------------------------------

    def timeline(self) -> list[TimelinePoint]:
        """Heap and RSS at each 10 ms sample, with the peak itself as a point of its own.

        The heap is sampled every 10 ms, so a short peak falls between samples; the series has it
        at its time (the tick it followed, ``peak_time_s``), so its maximum is always the peak, there."""
        points = [TimelinePoint(self._since_start(ms), heap, rss) for ms, heap, rss in self._reader.timeline()]
        peak, peak_s = self.peak_bytes, self.peak_time_s
        if peak and not any(point.heap_bytes == peak and point.time_s == peak_s for point in points):
            at = 0
            while at < len(points) and points[at].time_s <= peak_s:
                at += 1
            rss = points[at - 1].rss_bytes if at else 0
            points.insert(at, TimelinePoint(peak_s, peak, rss))
        return points

    def threads(self) -> list[ThreadInfo]:
        """Threads that allocated, in order of their first event, with their last known names."""
        names = self._reader.thread_names()
        return [ThreadInfo(tid, names.get(tid, "")) for tid in self._reader.threads_seen()]

    def allocator_totals(self) -> dict[str, tuple[int, int]]:
        """{allocator: (count, bytes)} of all allocations made."""
        return dict(self._reader.allocator_totals())

    def size_histogram(self) -> list[tuple[int, int]]:
        """(exclusive upper bound in bytes, count) per power-of-two size bucket."""
        return list(self._reader.size_histogram())

    def _refresh_tables(self, reader: CaptureReader) -> None:
        self._refresh_frames(reader)
        self._nodes = reader.nodes()
        if reader.format_version >= 2 or reader.stack_pairs():
            self._hybrid.set_tables(reader)

    def _refresh_frames(self, reader: CaptureReader) -> None:
        # The frames and mappings: all location_totals needs in Python (the nodes stay in C++).
        self._frames = reader.frames()
        self._symbols.maps = reader.maps()

    def __repr__(self) -> str:
        return (
            f"<Capture {self.path or 'in memory'} peak={self.peak_bytes} leaked={self.leaked_bytes} "
            f"allocations={self.total_allocations}{' truncated' if self.truncated else ''}>"
        )


def _read_file(
    path: Path, *, progress: ProgressCallback | None, thread_id: int, temporal: bool, temporary_threshold: int = 0
) -> tuple[str, CaptureReader]:
    if not path.exists():
        raise CaptureError(f"no such capture file: {path}")
    # The reader counts an allocation as temporary when fewer than its threshold allocations followed
    # it before its free: memray's "at most N others" is the reader's N + 1.
    reader = CaptureReader(only_tid=thread_id, temporal=temporal, temporary_threshold=temporary_threshold + 1)
    header = reader.open(os.fspath(path))
    while reader.read_some(_PROGRESS_STEP):
        if progress is not None:
            progress(reader.bytes_read, reader.file_size)
    if progress is not None:
        progress(reader.file_size, reader.file_size)
    if reader.error and reader.records == 0:
        raise CaptureError(f"{path}: {reader.error}")
    return header, reader
