"""``Capture``: the read side. Replays a capture (file or memory) into aggregates."""

from __future__ import annotations

import json
import os
import warnings
from pathlib import Path
from typing import Callable

from ._reader import FORMAT_VERSION, HYBRID_STACK, CaptureReader
from .errors import CaptureError
from .hybrid import NativeCall, NativeShape, interpreter_paths, merge, python_runs
from .launcher import Launcher, Place
from .model import CaptureMetadata, Frame, IntervalStat, StackStat, ThreadInfo, TimelinePoint
from .symbols import Symbolizer

# One for the process: the pytest plugin opens a capture per test, and symbols stay valid.
_SYMBOLIZER = Symbolizer()


class MissingLibraryWarning(UserWarning):
    """A library named by native frames cannot be read at report time: its frames show as lib+offset."""

ProgressCallback = Callable[[int, int], None]
_HEADER_FIELDS = {"pid", "python_version", "start_time", "command_line", "native", "trace_python_allocators",
                  "follow_fork", "aggregated"}


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


class Capture:
    """Aggregates of one capture: peak, leaks, temporary allocations, timeline, stacks."""

    def __init__(self, reader: CaptureReader, metadata: CaptureMetadata, path: Path | None = None,
                 thread_id: int = 0, show_interpreter_frames: bool = False) -> None:
        self._reader = reader
        self._thread_id = thread_id
        self.metadata = metadata
        self.path = path
        self._show_interpreter_frames = show_interpreter_frames
        self._frames: list[tuple[str, str, int]] = []
        self._nodes: list[tuple[int, int, int]] = []
        self._stacks: dict[int, tuple[Frame, ...]] = {0: ()}
        # The launcher the header names (memprof run, pytest): stacks start below its frames. Nodes
        # that have not reached the program's first frame keep their state here.
        self._launcher = Launcher.of(metadata)
        self._places: dict[int, Place] = {0: Place.BEFORE} if self._launcher else {}
        self._temporal_reader: CaptureReader | None = None
        # Native stacks (captures made with native=True).
        self._entries: list[bool] = []
        self._native_nodes: list[tuple[int, int, int]] = []
        self._maps: list[tuple[int, int, int, str, str]] = []
        self._pairs: list[tuple[int, int]] = []
        self._calls: dict[int, NativeCall] = {}
        # Per native node, its stack cut at the eval frames; per Python node, its frames cut into
        # eval-loop runs: stacks share both, so a hybrid stack costs its own length, not its depth.
        self._shapes: dict[int, NativeShape] = {0: NativeShape()}
        self._calls_at: dict[tuple[int, int], NativeCall] = {}  # (address, map index) -> call
        # native node -> (innermost frame shown, or None; the eval node reached first, or 0)
        self._outward: dict[int, tuple[Frame | None, int]] = {}
        self._runs: dict[int, tuple[tuple[Frame, ...], ...]] = {0: ()}
        self._is_interpreter = interpreter_paths(metadata.extra.get("python_executable"))
        self._interpreter_maps: dict[int, bool] = {}
        self.warnings: list[str] = []  # problems met while symbolising, each also issued as a warning

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
    ) -> Capture:
        """Read a capture file; raises CaptureError with one line of text if it cannot be read.

        A file cut short (the process died) still opens: ``truncated`` is then True and the
        aggregates cover what was written. With native stacks, ``show_interpreter_frames`` keeps
        the interpreter's own C frames in every stack (they are hidden by default).
        """
        path = Path(path)
        header_text, reader = _read_file(path, progress=progress, thread_id=thread_id, temporal=temporal)
        try:
            header = json.loads(header_text)
            if not isinstance(header, dict):
                raise ValueError("not an object")
            metadata = metadata_from_header(header, reader.format_version)
        except ValueError as error:
            raise CaptureError(f"{path} has a corrupt header ({error})") from None
        capture = cls(reader, metadata, path, thread_id=thread_id, show_interpreter_frames=show_interpreter_frames)
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
    def duration(self) -> float:
        """Seconds from the start of tracking to its end (or to the last record, if truncated)."""
        return self._reader.end_ms / 1000.0

    @property
    def peak_time_s(self) -> float:
        """Seconds from the start when the peak was reached (to the sampling interval, 10 ms)."""
        return self._reader.peak_ms / 1000.0

    @property
    def unmatched_frees(self) -> int:
        """Frees of memory allocated before tracking began (ignored in every figure)."""
        return int(self._reader.unmatched_frees)

    # ---- stacks ---------------------------------------------------------------------------------

    def peak_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Memory live at the peak, by stack, largest first."""
        return self._stack_stats("peak", merge_threads, merge_allocators)

    def leak_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Memory still live at the end, by stack, largest first."""
        return self._stack_stats("leaks", merge_threads, merge_allocators)

    def temporary_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Allocations freed before any other allocation was made, by stack, largest first."""
        return self._stack_stats("temporary", merge_threads, merge_allocators)

    def total_stacks(self, merge_threads: bool = True, merge_allocators: bool = True) -> list[StackStat]:
        """Everything ever allocated, by stack, largest first."""
        return self._stack_stats("total", merge_threads, merge_allocators)

    def location_totals(self, which: str = "total") -> list[tuple[Frame | None, int, int]]:
        """(allocating frame, bytes, count) per stack of ``which`` ("peak", "leaks", "temporary" or
        "total"), threads and allocators merged: what ``StackStat.location`` gives, without
        building whole stacks (with native stacks, most of a report's time)."""
        return [(self.location(stack), size, count)
                for stack, _, _, size, count in self._reader.rows(which, True, True)]

    def location(self, stack_id: int) -> Frame | None:
        """The innermost frame of stack ``stack_id`` (``self.stack(stack_id)[-1]``), or None if it is empty."""
        if not stack_id & HYBRID_STACK:
            return self._node_frame(stack_id) if stack_id else None
        cached = self._stacks.get(stack_id)
        if cached is not None:
            return cached[-1] if cached else None
        index = stack_id & ~HYBRID_STACK
        if index >= len(self._pairs):
            self._refresh_tables(self._reader)
        python_node, native_node = self._pairs[index]
        # merge() puts the last Python run at the innermost eval frame: the answer is the first
        # frame that shows walking out from the allocator, or that run if an eval frame comes first.
        frame, eval_node = self._walk_out(native_node)
        if frame is not None:
            return frame
        if python_node:
            # The last frame of the last Python run: the node's own frame (stack() keeps it unless
            # the whole stack is the launcher's), so no stack is built.
            frame = self._node_frame(python_node)
            if frame is not None:
                return frame
        if eval_node:  # an eval frame with no Python frames to put there: walk on past it
            node = eval_node
            while node:
                call = self._native_call(node)
                shown = call.expand() if call.visible(self._show_interpreter_frames) else ()
                if shown:
                    return shown[-1]
                node = self._native_nodes[node - 1][0]
        return None

    def _node_frame(self, node: int) -> Frame | None:
        """The innermost frame of Python stack node ``node`` (``self.stack(node)[-1]``), or None if it shows none."""
        cached = self._stacks.get(node)
        if cached is not None:
            return cached[-1] if cached else None
        if node > len(self._nodes):
            self._refresh_tables(self._reader)
        if self._places and self._place(node) is Place.LAUNCHER:
            return None
        _, frame_id, line = self._nodes[node - 1]
        function, file, _ = self._frames[frame_id]
        return Frame(function, file, line)

    def _walk_out(self, native_node: int) -> tuple[Frame | None, int]:
        """From ``native_node`` outwards: the first frame that shows, or the first eval node.

        Stacks share their outer nodes, so every node passed on the way keeps the answer."""
        memo = self._outward
        passed = []
        node = native_node
        answer: tuple[Frame | None, int] = (None, 0)
        while node:
            known = memo.get(node)
            if known is not None:
                answer = known
                break
            passed.append(node)
            call = self._native_call(node)
            if call.is_eval:
                answer = (None, node)
                break
            shown = call.expand() if call.visible(self._show_interpreter_frames) else ()
            if shown:
                answer = (shown[-1], 0)
                break
            node = self._native_nodes[node - 1][0]
        for node in passed:
            memo[node] = answer
        return answer

    def temporal_stacks(self) -> list[IntervalStat]:
        """Allocations grouped by stack and by the sampling ticks in which they were made and freed."""
        reader = self._temporal_reader
        if self.metadata.aggregated:
            raise CaptureError(f"{self.path or 'this capture'} is aggregated: it does not keep when allocations were "
                               "made (record it without --aggregate for temporal reports)")
        if reader is None:
            if self.path is None:
                raise CaptureError("temporal data is only available for captures read from a file")
            _, reader = _read_file(self.path, progress=None, thread_id=self._thread_id, temporal=True)
            self._temporal_reader = reader
        self._refresh_tables(reader)
        return [
            IntervalStat(
                frames=self.stack(stack),
                allocated_s=allocated / 1000.0,
                freed_s=None if freed < 0 else freed / 1000.0,
                bytes=size,
                count=count,
                thread_id=tid,
                allocator=allocator,
            )
            for stack, tid, allocator, allocated, freed, size, count in reader.intervals()
        ]

    @property
    def show_interpreter_frames(self) -> bool:
        """Whether hybrid stacks keep the interpreter's own C frames (hidden by default)."""
        return self._show_interpreter_frames

    @show_interpreter_frames.setter
    def show_interpreter_frames(self, value: bool) -> None:
        if value != self._show_interpreter_frames:
            self._show_interpreter_frames = value
            self._stacks = {node: frames for node, frames in self._stacks.items() if not node & HYBRID_STACK}
            self._shapes = {0: NativeShape()}
            self._outward = {}

    def stack(self, node_id: int) -> tuple[Frame, ...]:
        """The frames of stack ``node_id``, outermost first (hybrid: Python and C frames, for native captures)."""
        cached = self._stacks.get(node_id)
        if cached is not None:
            return cached
        if node_id & HYBRID_STACK:
            return self._hybrid_stack(node_id)
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
            function, file, _ = self._frames[frame_id]
            if self._places:
                place = self._place(node)
                if place is Place.LAUNCHER:
                    prefix = ()
                elif self._places[parent] is Place.LAUNCHER:
                    prefix = (Frame(function, file, line),)  # the program's first frame
                else:
                    prefix = (*prefix, Frame(function, file, line))
            else:
                prefix = (*prefix, Frame(function, file, line))
            self._stacks[node] = prefix
        return prefix

    def _place(self, node: int) -> Place:
        """Where Python stack node ``node`` is with respect to the launcher (launcher.py)."""
        place = self._places.get(node)
        if place is not None:
            return place
        chain = []
        while node not in self._places:
            chain.append(node)
            node = self._nodes[node - 1][0]
        place = self._places[node]
        for node in reversed(chain):
            _, frame_id, _ = self._nodes[node - 1]
            place = self._places[node] = self._launcher.place(place, self._frames[frame_id][1])
        return place

    def launcher_only(self, stack_id: int) -> bool:
        """Whether stack ``stack_id`` is the launcher's own work (pytest's, memprof run's): it shows no frames."""
        if not self._places or not stack_id:
            return False
        if stack_id & HYBRID_STACK:
            if self.stack(stack_id):
                return False
            stack_id = self._pairs[stack_id & ~HYBRID_STACK][0]
            if not stack_id:
                return False
        if stack_id > len(self._nodes):
            self._refresh_tables(self._reader)
        return self._place(stack_id) is Place.LAUNCHER

    # ---- other aggregates -----------------------------------------------------------------------

    def timeline(self) -> list[TimelinePoint]:
        """Heap and RSS at each 10 ms sample."""
        return [TimelinePoint(ms / 1000.0, heap, rss) for ms, heap, rss in self._reader.timeline()]

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

    def _stack_stats(self, which: str, merge_threads: bool, merge_allocators: bool) -> list[StackStat]:
        return [
            StackStat(frames=self.stack(stack), bytes=size, count=count, thread_id=tid, allocator=allocator,
                      launcher=self.launcher_only(stack))
            for stack, tid, allocator, size, count in self._reader.rows(which, merge_threads, merge_allocators)
        ]

    def _refresh_tables(self, reader: CaptureReader) -> None:
        self._frames = reader.frames()
        self._nodes = reader.nodes()
        if reader.format_version >= 2 or reader.stack_pairs():
            self._entries = reader.entry_flags()
            self._native_nodes = reader.native_nodes()
            self._maps = reader.maps()
            self._pairs = reader.stack_pairs()

    # ---- native stacks ----------------------------------------------------------------------------

    def _hybrid_stack(self, stack_id: int) -> tuple[Frame, ...]:
        index = stack_id & ~HYBRID_STACK
        if index >= len(self._pairs):
            self._refresh_tables(self._reader)
        python_node, native_node = self._pairs[index]
        frames = merge(self._python_runs(python_node), self._native_shape(native_node),
                       show_interpreter_frames=self._show_interpreter_frames)
        self._stacks[stack_id] = frames
        return frames

    def _python_runs(self, python_node: int) -> tuple[tuple[Frame, ...], ...]:
        runs = self._runs.get(python_node)
        if runs is not None:
            return runs
        chain = []
        node = python_node
        while node not in self._runs:
            chain.append(node)
            node = self._nodes[node - 1][0]
        parent = node
        for node in reversed(chain):
            frames = self.stack(node)
            before = self._runs[parent]
            above = self.stack(parent)
            if len(frames) == len(above) + 1 and (not above or frames[-2] is above[-1]):
                # One frame below its parent's stack: extend the parent's runs.
                frame, entry = frames[-1], self._entries[node - 1]
                runs = (*before, (frame,)) if entry or not before else (*before[:-1], (*before[-1], frame))
            else:
                # stack() dropped the launcher's leading frames here (memprof run, pytest):
                # the frames it returns are the innermost ones, so are their flags.
                entries = []
                walk = node
                while walk:
                    entries.append(self._entries[walk - 1])
                    walk = self._nodes[walk - 1][0]
                entries.reverse()
                runs = python_runs(list(zip(frames, entries[len(entries) - len(frames):])))
            self._runs[node] = runs
            parent = node
        return runs

    def _native_shape(self, native_node: int) -> NativeShape:
        shape = self._shapes.get(native_node)
        if shape is not None:
            return shape
        chain = []
        node = native_node
        while node not in self._shapes:
            chain.append(node)
            node = self._native_nodes[node - 1][0]
        shape = self._shapes[node]
        for node in reversed(chain):
            shape = self._shapes[node] = shape.extended(self._native_call(node), self._show_interpreter_frames)
        return shape

    def _native_call(self, node: int) -> NativeCall:
        call = self._calls.get(node)
        if call is not None:
            return call
        _, address, map_index = self._native_nodes[node - 1]
        # Nodes are paths, addresses are places: many nodes (one per path into a function) share
        # an address, and so its symbols.
        call = self._calls_at.get((address, map_index))
        if call is not None:
            self._calls[node] = call
            return call
        recorded_map = map_index
        if map_index < 0:
            map_index = self._map_containing(address - 1)
        if map_index < 0:
            frame = Frame(f"0x{address:x}", "<unknown>", 0, native=True)
            call = NativeCall("", False, lambda: (frame,))
        else:
            _, _, load_base, path, build_id = self._maps[map_index]
            vaddr = address - 1 - load_base
            interpreter = self._interpreter_maps.get(map_index)
            if interpreter is None:
                interpreter = self._interpreter_maps[map_index] = self._is_interpreter(path)
            function = _SYMBOLIZER.function_name(path, vaddr, build_id)
            # libc's unnamed local functions are its start-up code (e.g. __libc_start_call_main).
            runtime = not function and os.path.basename(path).startswith(("libc.so", "ld-linux"))
            call = NativeCall(function, interpreter or runtime, lambda: self._locate(path, vaddr, build_id))
            if _SYMBOLIZER.problem(path, build_id):
                self._warn_missing(path, build_id)
        self._calls[node] = call
        if recorded_map >= 0:  # a guessed mapping may change as more mappings are read
            self._calls_at[(address, recorded_map)] = call
        return call

    def _locate(self, path: str, vaddr: int, build_id: str) -> tuple[Frame, ...]:
        location = _SYMBOLIZER.locate(path, vaddr, build_id)
        if location.missing:
            self._warn_missing(path, build_id)
        return location.frames

    def _map_containing(self, address: int) -> int:
        # Recorded before the mappings that hold it (a library loaded by another thread): any
        # mapping of the capture, latest first, is the best guess.
        for index in range(len(self._maps) - 1, -1, -1):
            start, end = self._maps[index][:2]
            if start <= address < end:
                return index
        return -1

    def _warn_missing(self, path: str, build_id: str) -> None:
        message = (f"{path} {_SYMBOLIZER.problem(path, build_id) or 'cannot be read'}: its frames are shown as "
                   f"{os.path.basename(path)}+offset")
        if message not in self.warnings:
            self.warnings.append(message)
            warnings.warn(message, MissingLibraryWarning, stacklevel=4)

    def __repr__(self) -> str:
        return (
            f"<Capture {self.path or 'in memory'} peak={self.peak_bytes} leaked={self.leaked_bytes} "
            f"allocations={self.total_allocations}{' truncated' if self.truncated else ''}>"
        )


def _read_file(
    path: Path, *, progress: ProgressCallback | None, thread_id: int, temporal: bool
) -> tuple[str, CaptureReader]:
    if not path.exists():
        raise CaptureError(f"no such capture file: {path}")
    if path.is_dir():
        raise CaptureError(f"{path} is a folder, not a capture file")
    reader = CaptureReader(only_tid=thread_id, temporal=temporal)
    header = reader.open(os.fspath(path))
    while reader.read_some():
        if progress is not None:
            progress(reader.bytes_read, reader.file_size)
    if progress is not None:
        progress(reader.file_size, reader.file_size)
    if reader.error and reader.records == 0:
        raise CaptureError(f"{path}: {reader.error}")
    return header, reader
