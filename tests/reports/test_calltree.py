"""The compact call tree every reporter builds on."""

from __future__ import annotations

from pytest_memprof.model import Frame
from pytest_memprof.reports.calltree import CallTree


def test_equal_frames_share_nodes_and_strings_are_interned():
    tree = CallTree()
    main = Frame("main", "app.py", 10)
    first = tree.add((main, Frame("load", "app.py", 20)))
    # Equal frames in other objects land on the same nodes.
    second = tree.add((Frame("main", "app.py", 10), Frame("load", "app.py", 20)))
    other_line = tree.add((main, Frame("load", "app.py", 21)))
    assert first == second != other_line
    assert tree.parents[first] == tree.parents[other_line] == 1
    assert tree.strings == ["main", "app.py", "load"]
    path = []
    node = first
    while node > 0:
        function, file, line, _ = tree.frames[tree.node_frames[node]]
        path.insert(0, Frame(tree.strings[function], tree.strings[file], line))
        node = tree.parents[node]
    assert path == [main, Frame("load", "app.py", 20)]
    assert tree.add(()) == 0
