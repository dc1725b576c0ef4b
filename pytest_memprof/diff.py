"""What changed between two captures: per location (or per whole stack), the change in bytes live
at the peak, leaked, in temporary allocations, and in allocations made (count and bytes).

Locations match by function, file and line, with line drift tolerated. A base line first moves by
as far as its function moved: a Python frame knows the line its function starts on, so a blank
line added above a function shifts the function and every line in it alike, and they still match.
A location left unmatched then pairs with the nearest unmatched line of the same function and file
(an edit inside the function). Whole stacks match the same way, frame by frame.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from .model import Frame, StackStat, View

if TYPE_CHECKING:
    from .capture import Capture

__all__ = ["DiffRow", "Figures", "aligned_stacks", "diff_captures", "diff_stack_rows"]

# What a row counts, in this order everywhere (Figures, the JSON, the table).
DIFF_VIEWS = (View.PEAK, View.LEAKS, View.TEMPORARY, View.TOTAL)
UNKNOWN = Frame("<unknown>", "<unknown>", 0)  # a stack with no frame to show (see ``_frames_of``)
# Nearest-line pairing looks at every pair of unmatched rows of one function: past this many
# pairs (a generated file with thousands of lambdas) the rest stay new and gone rather than stall.
_MAX_PAIRS = 250_000
StackRows = dict  # {View: [(frames outermost first, bytes, count)]}: a capture's stacks, or a baseline's summary


@dataclass(frozen=True)
class Figures:
    """One location's (or stack's) figures in one capture."""

    peak_bytes: int = 0
    leaked_bytes: int = 0
    temporary_bytes: int = 0
    allocations: int = 0
    total_bytes: int = 0

    def bytes_of(self, view: View | str) -> int:
        """The bytes of ``view``: peak, leaks, temporary or total."""
        return {View.PEAK: self.peak_bytes, View.LEAKS: self.leaked_bytes, View.TEMPORARY: self.temporary_bytes,
                View.TOTAL: self.total_bytes}[View.of(view)]

    def as_dict(self) -> dict[str, int]:
        """The figures by name, as the JSON output shows them."""
        return {"peak_bytes": self.peak_bytes, "leaked_bytes": self.leaked_bytes,
                "temporary_bytes": self.temporary_bytes, "allocations": self.allocations,
                "total_bytes": self.total_bytes}


@dataclass(frozen=True)
class DiffRow:
    """One location (or stack) of either capture, with its figures in both.

    ``location`` is the allocating frame as the new capture has it (as the base has it when the
    location is gone); ``base_location`` is the base's, None when the location is new. ``stack``
    is the whole stack, outermost first: the row's own with ``stacks=True``, else the location's
    largest one. Figures of a side that lacks the location are zero.
    """

    location: Frame
    base_location: Frame | None
    stack: tuple[Frame, ...]
    base: Figures
    new: Figures
    in_base: bool
    in_new: bool

    @property
    def function(self) -> str:
        """The allocating function."""
        return self.location.function

    @property
    def file(self) -> str:
        """Its file."""
        return self.location.file

    @property
    def line(self) -> int:
        """Its line in the new capture (in the base when the location is gone)."""
        return self.location.line

    @property
    def status(self) -> str:
        """"new" (only in the new capture), "gone" (only in the base) or "both"."""
        return "both" if self.in_base and self.in_new else "new" if self.in_new else "gone"

    def change(self, view: View | str) -> int:
        """New minus base bytes of ``view``: positive when it grew."""
        return self.new.bytes_of(view) - self.base.bytes_of(view)

    @property
    def peak_change(self) -> int:
        """Change in bytes live at the peak."""
        return self.new.peak_bytes - self.base.peak_bytes

    @property
    def leaked_change(self) -> int:
        """Change in bytes still allocated at the end."""
        return self.new.leaked_bytes - self.base.leaked_bytes

    @property
    def temporary_change(self) -> int:
        """Change in bytes of temporary allocations."""
        return self.new.temporary_bytes - self.base.temporary_bytes

    @property
    def allocations_change(self) -> int:
        """Change in the number of allocations made."""
        return self.new.allocations - self.base.allocations

    @property
    def total_change(self) -> int:
        """Change in the bytes of all allocations made."""
        return self.new.total_bytes - self.base.total_bytes

    @property
    def changed(self) -> bool:
        """Whether any figure differs."""
        return self.base != self.new


@dataclass
class _Entry:
    """The figures of one key in one capture, as they accumulate, and the stack that shows it best."""

    stack: tuple[Frame, ...]
    original: tuple[Frame, ...]  # the base's own frames, before moving them onto the new lines
    weight: int = -1  # bytes of the view that chose ``stack``
    figures: list[int] = field(default_factory=lambda: [0, 0, 0, 0, 0])


def _frames_of(stat: StackStat, native: bool) -> tuple[Frame, ...]:
    frames = stat.frames if native else tuple(frame for frame in stat.frames if not frame.native)
    return frames or (UNKNOWN,)


def _stack_rows(capture: Capture, native: bool) -> dict[View, list[tuple[tuple[Frame, ...], int, int]]]:
    return {view: [(_frames_of(stat, native), stat.bytes, stat.count) for stat in capture.stacks(view)]
            for view in DIFF_VIEWS}


def line_shifts(base: Iterable[Sequence[Frame]], new: Iterable[Sequence[Frame]]) -> dict[tuple[str, str, int], int]:
    """{(function, file, first line in the base): lines it moved by in the new capture}, for every
    Python function of ``base``'s stacks that ``new``'s stacks also have and that moved."""

    def first_lines(stacks: Iterable[Sequence[Frame]]) -> dict[tuple[str, str], set[int]]:
        found: dict[tuple[str, str], set[int]] = defaultdict(set)
        for stack in stacks:
            for frame in stack:
                if frame.first_line:
                    found[(frame.function, frame.file)].add(frame.first_line)
        return found

    new_firsts = first_lines(new)
    shifts: dict[tuple[str, str, int], int] = {}
    for (function, file), olds in first_lines(base).items():
        news = sorted(new_firsts.get((function, file), ()))
        if not news:
            continue
        olds_sorted = sorted(olds)
        # Same count (the usual case, and two methods of one name in one file): in order.
        # Otherwise each old start goes to the nearest new one.
        pairs = zip(olds_sorted, news) if len(olds_sorted) == len(news) else (
            (old, min(news, key=lambda start, old=old: (abs(start - old), start))) for old in olds_sorted)
        for old, start in pairs:
            if start != old:
                shifts[(function, file, old)] = start - old
    return shifts


def moved(frame: Frame, shifts: dict[tuple[str, str, int], int]) -> Frame:
    """``frame`` with its line moved as its function moved (``line_shifts``)."""
    shift = shifts.get((frame.function, frame.file, frame.first_line)) if frame.first_line else None
    if not shift:
        return frame
    return Frame(frame.function, frame.file, frame.line + shift, frame.native, first_line=frame.first_line + shift)


def aligned_stacks(base: Capture | Sequence[StackStat], new: Capture, view: View | str, *,
                   native: bool = False) -> tuple[list[StackStat], list[StackStat]]:
    """Both captures' stacks of ``view`` (threads merged), the base's with its lines moved onto the
    new capture's where functions moved: equal frames are then the same code (the diff flame graph).
    ``base`` may be stacks already read (a baseline's location summary)."""
    base_stats = [StackStat(_frames_of(stat, native), stat.bytes, stat.count)
                  for stat in (base if isinstance(base, Sequence) else base.stacks(view))]
    new_stats = [StackStat(_frames_of(stat, native), stat.bytes, stat.count) for stat in new.stacks(view)]
    shifts = line_shifts([stat.frames for stat in base_stats], [stat.frames for stat in new_stats])
    if shifts:
        base_stats = [StackStat(tuple(moved(frame, shifts) for frame in stat.frames), stat.bytes, stat.count)
                      for stat in base_stats]
    # A frame line that still has no match (a call line moved inside its function: <module>'s, when
    # lines were added at the top of a file) goes to the nearest unmatched line of that function.
    new_keys = {_key((frame,), False) for stat in new_stats for frame in stat.frames}
    base_keys = {_key((frame,), False) for stat in base_stats for frame in stat.frames}
    unmatched_base: dict[tuple, list[tuple]] = defaultdict(list)
    unmatched_new: dict[tuple, list[tuple]] = defaultdict(list)
    for key in base_keys - new_keys:
        unmatched_base[_loose(key, False)].append(key)
    for key in new_keys - base_keys:
        unmatched_new[_loose(key, False)].append(key)
    lines = {old: fresh[2] for loose, olds in unmatched_base.items() if loose in unmatched_new
             for old, fresh in _pair_nearest(olds, unmatched_new[loose], False)}
    if lines:
        def placed(frame: Frame) -> Frame:
            line = lines.get(_key((frame,), False))
            return frame if line is None else Frame(frame.function, frame.file, line, frame.native,
                                                    first_line=frame.first_line)

        base_stats = [StackStat(tuple(placed(frame) for frame in stat.frames), stat.bytes, stat.count)
                      for stat in base_stats]
    return base_stats, new_stats


def _key(frames: tuple[Frame, ...], stacks: bool) -> tuple:
    if stacks:
        return tuple((frame.function, frame.file, frame.line, frame.native) for frame in frames)
    frame = frames[-1]
    return (frame.function, frame.file, frame.line, frame.native)


def _loose(key: tuple, stacks: bool) -> tuple:
    """The key without its lines: rows that may pair by nearest line."""
    if stacks:
        return tuple((function, file, native) for function, file, _, native in key)
    return (key[0], key[1], key[3])


def _distance(a: tuple, b: tuple, stacks: bool) -> int:
    if stacks:
        return sum(abs(x[2] - y[2]) for x, y in zip(a, b))
    return abs(a[2] - b[2])


def _collect(rows: StackRows, view: View, stacks: bool,
             shifts: dict[tuple[str, str, int], int] | None) -> dict[tuple, _Entry]:
    entries: dict[tuple, _Entry] = {}
    slots = {View.PEAK: 0, View.LEAKS: 1, View.TEMPORARY: 2}
    for row_view, stack_rows in rows.items():
        for frames, size, count in stack_rows:
            original = frames
            if shifts:
                frames = tuple(moved(frame, shifts) for frame in frames)
            key = _key(frames, stacks)
            entry = entries.get(key)
            if entry is None:
                entry = entries[key] = _Entry(frames, original)
            if row_view is View.TOTAL:
                entry.figures[3] += count
                entry.figures[4] += size
            else:
                entry.figures[slots[row_view]] += size
            # The stack a location row shows: its largest in the sorted view (total bytes if none).
            weight = size if row_view is view else (0 if row_view is View.TOTAL else -1)
            if weight > entry.weight:
                entry.weight, entry.stack, entry.original = weight, frames, original
    return entries


def _pair_nearest(base_only: list[tuple], new_only: list[tuple], stacks: bool) -> list[tuple[tuple, tuple]]:
    """Unmatched base and new keys of one function (or stack shape), paired closest lines first."""
    if len(base_only) * len(new_only) > _MAX_PAIRS:
        return []
    candidates = sorted((_distance(old, new, stacks), old, new) for old in base_only for new in new_only)
    used_old: set[tuple] = set()
    used_new: set[tuple] = set()
    pairs = []
    for _, old, new in candidates:
        if old not in used_old and new not in used_new:
            used_old.add(old)
            used_new.add(new)
            pairs.append((old, new))
    return pairs


def diff_captures(base: Capture, new: Capture, *, view: View | str = View.PEAK, stacks: bool = False,
                  native: bool = False, min_bytes: int = 0) -> list[DiffRow]:
    """What changed from ``base`` to ``new``: a row per location (per whole stack with ``stacks``),
    largest growth in ``view``'s bytes first; see ``Capture.diff``."""
    return diff_stack_rows(_stack_rows(base, native), _stack_rows(new, native), view=view, stacks=stacks,
                           min_bytes=min_bytes)


def diff_stack_rows(base_rows: StackRows, new_rows: StackRows, *, view: View | str = View.PEAK, stacks: bool = False,
                    min_bytes: int = 0) -> list[DiffRow]:
    """``diff_captures`` on stacks already read: {View: [(frames, bytes, count)]} per side (a view
    a side lacks counts as nothing)."""
    view = View.of(view)
    shifts = line_shifts((frames for rows in base_rows.values() for frames, _, _ in rows),
                         (frames for rows in new_rows.values() for frames, _, _ in rows))
    base_entries = _collect(base_rows, view, stacks, shifts)
    new_entries = _collect(new_rows, view, stacks, None)
    pairs = [(key, key) for key in base_entries if key in new_entries]
    unmatched_base: dict[tuple, list[tuple]] = defaultdict(list)
    unmatched_new: dict[tuple, list[tuple]] = defaultdict(list)
    for key in base_entries:
        if key not in new_entries:
            unmatched_base[_loose(key, stacks)].append(key)
    for key in new_entries:
        if key not in base_entries:
            unmatched_new[_loose(key, stacks)].append(key)
    paired_base: set[tuple] = set()
    paired_new: set[tuple] = set()
    for loose, olds in unmatched_base.items():
        if loose in unmatched_new:
            for old, fresh in _pair_nearest(olds, unmatched_new[loose], stacks):
                pairs.append((old, fresh))
                paired_base.add(old)
                paired_new.add(fresh)
    rows = [_row(base_entries[old], new_entries[fresh]) for old, fresh in pairs]
    rows += [_row(entry, None) for key, entry in base_entries.items()
             if key not in new_entries and key not in paired_base]
    rows += [_row(None, entry) for key, entry in new_entries.items()
             if key not in base_entries and key not in paired_new]
    kept = [row for row in rows if row.changed and abs(row.change(view)) >= min_bytes]
    kept.sort(key=lambda row: (-row.change(view), -row.total_change, -row.allocations_change, row.function,
                               row.file, row.line))
    return kept


def _row(base: _Entry | None, new: _Entry | None) -> DiffRow:
    shown = new if new is not None else base
    stack = shown.stack if new is not None else shown.original
    return DiffRow(
        location=stack[-1],
        base_location=base.original[-1] if base is not None else None,
        stack=stack,
        base=Figures(*base.figures) if base is not None else Figures(),
        new=Figures(*new.figures) if new is not None else Figures(),
        in_base=base is not None,
        in_new=new is not None,
    )
