"""The launcher rule: which leading frames of a stack are what started the program, not the program."""

from __future__ import annotations

from pytest_memprof import launcher
from pytest_memprof.capture import metadata_from_header
from pytest_memprof.launcher import Launcher
from pytest_memprof.model import Frame

OWN = "/site-packages/pytest_memprof/"
MEMPROF_RUN = Launcher(launcher.MEMPROF_RUN)


def names(frames):
    return [frame.function for frame in frames]


def test_launcher_frames_above_the_program_are_left_out():
    stack = (Frame("<module>", "/venv/bin/memprof", 8), Frame("main", OWN + "cli/__init__.py", 40),
             Frame("run", OWN + "cli/run.py", 83), Frame("run_path", "<frozen runpy>", 291),
             Frame("<module>", "app.py", 3), Frame("load", "app.py", 9))
    assert names(MEMPROF_RUN.trim(stack)) == ["<module>", "load"]


def test_a_program_that_calls_memprof_itself_keeps_every_frame():
    # Tracker used by the program: its header names no launcher, so nothing is the launcher's.
    calling = (Frame("<module>", "app.py", 1), Frame("Tracker.__exit__", OWN + "tracker.py", 5),
               Frame("dumps", "json/__init__.py", 3))
    assert Launcher.of(metadata_from_header({"command_line": "python app.py"})).trim(calling) == calling
    under_memprof_run = (Frame("run", OWN + "cli/run.py", 83), *calling)
    assert MEMPROF_RUN.trim(under_memprof_run) == calling


def test_the_launchers_own_work_shows_no_frames():
    ending = (Frame("_run_module_as_main", "<frozen runpy>", 198), Frame("run", OWN + "cli/run.py", 83))
    assert MEMPROF_RUN.trim(ending) == ()


def test_frames_before_the_launcher_are_its_own_unless_no_launcher_frame_follows():
    pytest_rule = Launcher(launcher.PYTEST)
    worker = (Frame("<module>", "<string>", 1), Frame("serve", "/site-packages/execnet/gateway_base.py", 9),
              Frame("test_big", "/src/test_big.py", 4))
    assert names(pytest_rule.trim(worker)) == ["test_big"]
    thread = (Frame("_bootstrap", "/usr/lib/python3.11/threading.py", 995), Frame("work", "/src/test_big.py", 8))
    assert pytest_rule.trim(thread) == thread


def test_the_header_says_who_launched_the_capture():
    assert Launcher.of(metadata_from_header({"runner_files": ["/_pytest/"]})).files == ("/_pytest/",)
    assert Launcher.of(metadata_from_header({"command_line": "memprof run app.py"})).files == launcher.MEMPROF_RUN
    assert not Launcher.of(metadata_from_header({"command_line": "python app.py"}))



def test_the_rule_as_a_table_walks_a_stack_as_trim_does():
    # The reader applies the rule along its trie from this table (3 places per file), as
    # Capture.stack does with place(): a stack walked with it keeps what trim keeps.
    program = (Frame("<module>", "app.py", 3), Frame("helper", OWN + "tracker.py", 5), Frame("load", "app.py", 9))
    for stack in [(Frame("<module>", "<string>", 1), Frame("main", OWN + "cli/__init__.py", 40),
                   Frame("run_path", "<frozen runpy>", 291), *program),
                  program, (Frame("<module>", "<string>", 1), Frame("run_path", "<frozen runpy>", 291))]:
        table = MEMPROF_RUN.transitions([frame.file for frame in stack])
        assert len(table) == 3 * len(stack)
        place, shown = launcher.Place.BEFORE, ()
        for index, frame in enumerate(stack):
            before, place = place, table[3 * index + place]
            if place == launcher.Place.LAUNCHER:
                shown = ()
            elif before == launcher.Place.LAUNCHER:
                shown = (frame,)
            else:
                shown = (*shown, frame)
        assert shown == MEMPROF_RUN.trim(stack)
