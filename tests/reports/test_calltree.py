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


def test_the_same_frame_objects_follow_the_identity_cache_to_the_same_nodes():
    tree = CallTree()
    frames = tuple(Frame(f"f{depth}", "deep.py", depth) for depth in range(50))
    whole = tree.add(frames)
    assert tree.add(frames) == whole  # every frame found by identity
    node = whole
    for _ in range(30):
        node = tree.parents[node]
    assert tree.add(list(frames[:20])) == node  # a prefix ends on the path's node at its depth
    # A stack leaving the known path part-way goes on by value from the node it reached.
    branch = tree.add((*frames[:30], Frame("f30", "deep.py", 30), Frame("other", "deep.py", 99)))
    assert tree.parents[branch] == tree.add(frames[:31])
    assert len(tree.parents) == 1 + 50 + 1


def test_stacks_sharing_frame_objects_with_the_last_one_land_where_a_plain_trie_puts_them():
    # CallTree.add passes over the frames a stack shares (by identity) with the stack before it:
    # whatever the order, mix of shared and equal-but-distinct objects, and lengths, every stack
    # must end on the node a plain trie of frame values gives it.
    import random

    rng = random.Random(19)
    pool = [Frame(f"f{index % 7}", f"m{index % 3}.py", index % 11) for index in range(40)]
    stacks = []
    for _ in range(3000):
        depth = rng.randint(0, 12)
        stack = [rng.choice(pool[:8]) if level < 3 else rng.choice(pool) for level in range(depth)]
        if stacks and rng.random() < 0.5:  # the previous stack's objects, then a turn
            before = stacks[-1]
            keep = rng.randint(0, len(before))
            stack = list(before[:keep]) + stack[keep:]
        if rng.random() < 0.2:  # equal frames in new objects
            stack = [Frame(frame.function, frame.file, frame.line) for frame in stack]
        stacks.append(tuple(stack))
    tree = CallTree()
    plain: dict = {(): 0}
    paths: dict[int, tuple] = {}
    for stack in stacks:
        node = tree.add(stack)
        key = tuple((frame.function, frame.file, frame.line) for frame in stack)
        assert paths.setdefault(node, key) == key  # one node, one path
        plain.setdefault(key, node)
        assert plain[key] == node
    assert len(set(paths.values())) == len(paths)
