"""Stacks as a compact call tree: a table of distinct frames and a trie of nodes (parent, frame).

Every reporter starts here. A stack of 50 frames repeated in 10,000 rows becomes one chain of
nodes, so HTML reports ship each function name and path once, not once per stack.
"""

from __future__ import annotations

from collections.abc import Sequence

from .._reader import call_tree_node
from ..model import Frame, View

# What a report can show (every report but stats, which counts everything made).
REPORT_VIEWS = (View.PEAK, View.LEAKS, View.TEMPORARY)


def report_view(kind: View | str) -> View:
    """``kind`` (a View or its name) as the View a report shows; ValueError unless peak, leaks or temporary."""
    try:
        view = View.of(kind)
    except ValueError:
        view = None
    if view not in REPORT_VIEWS:
        raise ValueError(f"unknown kind {kind!r}; expected one of {', '.join(v.label for v in REPORT_VIEWS)}")
    return view


class CallTree:
    """Interned strings, frames and trie nodes; node 0 is the root (no frame)."""

    def __init__(self) -> None:
        self.strings: list[str] = []
        self.frames: list[tuple[int, int, int, bool]] = []  # (function string, file string, line, native)
        self.parents: list[int] = [-1]
        self.node_frames: list[int] = [-1]
        self._string_ids: dict[str, int] = {}
        self._frame_ids: dict[tuple[str, str, int, bool], int] = {}
        self._children: dict[tuple[int, int], int] = {}
        # Capture.stack shares Frame objects between stacks with a common prefix, so most lookups
        # hit this cheap identity cache (per node: id of a child's Frame -> child); equal frames in
        # distinct objects fall through to the value key.
        self._by_object: list[dict[int, int]] = [{}]
        self._alive: list[Frame] = []  # keeps ids in _by_object from being reused
        self._last: list = [(), []]  # the last stack added and its nodes (see call_tree_node)

    def string_id(self, text: str) -> int:
        """Index of ``text`` in the string table."""
        index = self._string_ids.get(text)
        if index is None:
            index = self._string_ids[text] = len(self.strings)
            self.strings.append(text)
        return index

    def frame_id(self, frame: Frame) -> int:
        """Index of ``frame`` in the frame table."""
        key = (frame.function, frame.file, frame.line, frame.native)
        index = self._frame_ids.get(key)
        if index is None:
            index = self._frame_ids[key] = len(self.frames)
            self.frames.append((self.string_id(frame.function), self.string_id(frame.file), frame.line,
                                frame.native))
        return index

    def add(self, frames: Sequence[Frame]) -> int:
        """The node of the stack ``frames`` (outermost first), creating nodes as needed."""
        return call_tree_node(self._by_object, self._children, self.parents, self.node_frames, self._alive,
                              self.frame_id, frames, self._last)

    def packed(self) -> tuple[list[int], list[int]]:
        """The frame table and the nodes as flat int lists, as the HTML reports embed them:
        (function, file, line, native) per frame, (parent, frame) per node after the root."""
        frames: list[int] = []
        for function, file, line, native in self.frames:
            frames.extend((function, file, line, int(native)))
        nodes: list[int] = []
        for parent, frame in zip(self.parents[1:], self.node_frames[1:]):
            nodes.extend((parent, frame))
        return frames, nodes
