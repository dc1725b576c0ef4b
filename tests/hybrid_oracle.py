"""The former pure-Python merge of hybrid stacks, kept as the tests' reference.

pytest_memprof.hybrid assembled each hybrid stack this way (per native node its shape, per Python
node its runs, then ``merge``) until the merge moved to C++ (native/hybrid_locate.cc,
``HybridLocator.assemble``); tests/test_hybrid_merge.py checks that the C++ merge gives exactly
these stacks. ``oracle_stacks`` reads a Capture's tables and calls as the old HybridStacks did.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from pytest_memprof.capture import Capture
from pytest_memprof.hybrid import NativeCall
from pytest_memprof.model import Frame


@dataclass(frozen=True)
class NativeShape:
    """A native stack cut at its eval frames: ``segments[i]`` are the frames shown between eval
    ``i - 1`` and eval ``i``; ``whole``: its outermost frame is start-up code (None: no frame)."""

    segments: tuple[tuple[Frame, ...], ...] = ((),)
    evals: tuple[NativeCall, ...] = ()
    whole: bool | None = None

    def extended(self, call: NativeCall, show_interpreter_frames: bool) -> NativeShape:
        whole = call.is_startup if self.whole is None else self.whole
        if call.is_eval:
            return NativeShape((*self.segments, ()), (*self.evals, call), whole)
        if not call.visible(show_interpreter_frames):
            return NativeShape(self.segments, self.evals, whole)
        return NativeShape((*self.segments[:-1], self.segments[-1] + call.expand()), self.evals, whole)


def merge(runs: Sequence[tuple[Frame, ...]], native: NativeShape, *,
          show_interpreter_frames: bool = False) -> tuple[Frame, ...]:
    """One stack, outermost first, from the Python runs and the native stack's shape."""
    evals = native.evals
    if native.whole and len(runs) <= len(evals):
        placed: list[tuple[Frame, ...] | None] = [*runs, *[None] * (len(evals) - len(runs))]
        leftover: tuple[Frame, ...] = ()
    else:
        unmatched = max(0, len(evals) - len(runs))
        placed = [None] * unmatched + list(runs[len(runs) - (len(evals) - unmatched):])
        leftover = tuple(frame for run in runs[: max(0, len(runs) - len(evals))] for frame in run)
    out: list[Frame] = []
    if leftover:
        if evals:
            placed[0] = leftover + (placed[0] or ())
        else:
            out.extend(leftover)
    out.extend(native.segments[0])
    for index, call in enumerate(evals):
        frames = placed[index]
        if frames is not None:
            if show_interpreter_frames:
                out.extend(call.expand())
            out.extend(frames)
        elif call.visible(show_interpreter_frames):
            out.extend(call.expand())
        out.extend(native.segments[index + 1])
    return tuple(out)


def oracle_stacks(capture: Capture) -> list[tuple[Frame, ...]]:
    """Every hybrid stack of ``capture``, by hybrid index, merged the old way."""
    reader = capture._reader
    capture._refresh_tables(reader)
    show = capture.show_interpreter_frames
    native_nodes = reader.native_nodes()
    entries = reader.entry_flags()
    calls = capture._symbols.calls([(address, map_index, eval_mark)
                                    for _, address, map_index, eval_mark in native_nodes])
    shapes = [NativeShape()]
    for (parent, *_), call in zip(native_nodes, calls):
        shapes.append(shapes[parent].extended(call, show))
    # Per Python node: (index of each run's first frame, frames) of its whole stack.
    bounds: list[tuple[tuple[int, ...], int]] = [((), 0)]
    for node in range(1, len(entries) + 1):
        above, depth = bounds[capture.parent(node)]
        bounds.append(((*above, depth) if entries[node - 1] or not depth else above, depth + 1))
    stacks = []
    for python_node, native_node in reader.stack_pairs():
        starts, depth = bounds[python_node]
        shown = capture.stack(python_node)
        dropped = depth - len(shown)  # Capture.stack drops a leading run of frames (the launcher's)
        runs = tuple(shown[max(0, start - dropped):max(0, end - dropped)]
                     for start, end in zip(starts, (*starts[1:], depth)))
        stacks.append(merge(runs, shapes[native_node], show_interpreter_frames=show))
    return stacks
