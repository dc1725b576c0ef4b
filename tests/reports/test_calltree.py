"""The compact call tree every reporter builds on, and the launcher frames it leaves out."""

from __future__ import annotations

from pytest_memprof.model import Frame
from pytest_memprof.reports import calltree
from pytest_memprof.reports.calltree import CallTree, user_frames

OWN = calltree._PACKAGE_DIR


def names(frames):
    return [frame.function for frame in frames]


def test_launcher_frames_above_the_program_are_left_out():
    stack = (Frame("_run_module_as_main", "<frozen runpy>", 198), Frame("<module>", OWN + "__main__.py", 7),
             Frame("run", OWN + "cli/run.py", 83), Frame("run_path", "<frozen runpy>", 291),
             Frame("<module>", "app.py", 3), Frame("load", "app.py", 9))
    assert names(user_frames(stack)) == ["<module>", "load"]


def test_stacks_that_call_memprof_or_end_in_it_are_kept_whole():
    calling = (Frame("<module>", "app.py", 1), Frame("Tracker.__exit__", OWN + "tracker.py", 5),
               Frame("dumps", "json/__init__.py", 3))
    assert user_frames(calling) == calling
    ending = (Frame("_run_module_as_main", "<frozen runpy>", 198), Frame("run", OWN + "cli/run.py", 83))
    assert user_frames(ending) == ending


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
    assert [tree.frame(index) for index in tree.path(first)] == [main, Frame("load", "app.py", 20)]
    assert tree.add(()) == 0
