"""The live view (textual pilot) against a real allocating program run by ``memprof run`` as a child."""

from __future__ import annotations

import pytest

from pytest_memprof import Capture
from pytest_memprof.live.runner import start_local
from pytest_memprof.live.view import LiveView

from .conftest import TIMEOUT_S, alive, group_alive, quit_view, run_pilot, wait_until


@pytest.fixture
def local(program, tmp_path):
    """Start the program under ``memprof run -o out.bin`` as the view would; yields (child, session)."""
    started = []

    def start(exit_code: int = 0):
        child, session = start_local([str(program), str(tmp_path / "stop"), str(exit_code)], [],
                                     tmp_path / "out.bin", tmp_path)
        started.append((child, session))
        return child, session

    yield start
    for child, session in started:
        session.close()
        child.stop()


def column(app: LiveView, index: int) -> list[str]:
    return [row[index] for row in app.table_rows()]


def counts(app: LiveView) -> list[int]:
    return [int(cell) for cell in column(app, 4)]


def test_table_sorting_thread_filter_pause_and_quit_stops_the_program(local, tmp_path):
    child, session = local()
    app = LiveView(session, on_quit=child.stop)

    def both_locations_grown() -> bool:
        # Each function's largest row (the view lists largest first): on 3.12+ a function may also
        # have a small one at its first line, where the interpreter instruments its code object.
        rows: dict = {}
        for row in app.shown_rows:
            rows.setdefault(row.function, row)
        return ("hold_big_blocks" in rows and "hold_many_small" in rows and rows["hold_many_small"].count >= 1000
                and app.shown_rows[0].function == "hold_big_blocks")

    async def drive() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, both_locations_grown, "both allocating functions in the table")
            rows = app.table_rows()
            big = next(row for row in rows if row[0] == "hold_big_blocks")
            assert big[1].endswith("allocates.py:9") and big[2].startswith("MainThread (")
            status = str(app.query_one("#status").render())
            assert f"allocates.py {tmp_path / 'stop'} 0" in status and "running" in status
            assert "program output: " in status

            # Largest first by default; 5 sorts by allocation count, largest first, then the other way.
            assert column(app, 0)[0] == "hold_big_blocks"
            await pilot.press("5")
            assert column(app, 0)[0] == "hold_many_small"
            assert counts(app) == sorted(counts(app), reverse=True)
            await pilot.press("5")
            assert counts(app) == sorted(counts(app))
            await pilot.press("1")
            assert column(app, 0) == sorted(column(app, 0), key=str.lower)
            # A click on a header sorts by that column: the allocation count's, at the far right.
            table = app.query_one("#locations")
            await pilot.click("#locations", offset=(sum(c.get_render_width(table) for c in table.ordered_columns[:4])
                                                    + 2, 0))
            assert app.sort_column == 4 and counts(app) == sorted(counts(app), reverse=True)

            # t steps through the threads: the worker's rows only, then all again.
            for _ in range(len(app.snapshot.threads)):
                await pilot.press("t")
                if app.shown_rows and app.shown_rows[0].thread_name == "worker":
                    break
            assert app.table_rows() and all(cell.startswith("worker (") for cell in column(app, 2))
            assert "worker_allocates" in column(app, 0)
            while app.thread_filter is not None:
                await pilot.press("t")
            assert "hold_big_blocks" in column(app, 0)

            # p freezes the display while the stream is still read.
            await pilot.press("p")
            frozen, frozen_snapshot = app.table_rows(), app.snapshot
            assert "PAUSED" in str(app.query_one("#status").render())
            await wait_until(pilot, lambda: app.snapshot is not frozen_snapshot, "a new snapshot while paused")
            assert app.table_rows() == frozen
            await pilot.press("p")
            assert "PAUSED" not in str(app.query_one("#status").render())

            await quit_view(pilot, app)

    try:
        run_pilot(drive())
    finally:
        child.stop()
    # q stopped the program the way Ctrl+C would: it ended, its capture is whole, nothing is left running.
    assert child.returncode == 130
    assert not alive(child.pid) and not group_alive(child.pid)
    capture = Capture.open(tmp_path / "out.bin")
    assert not capture.truncated


def test_a_program_that_exits_while_watched_shows_its_exit_code(local, tmp_path):
    child, session = local(exit_code=3)
    app = LiveView(session, on_quit=child.stop)

    async def drive() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, lambda: "hold_big_blocks" in column(app, 0), "the allocating function")
            (tmp_path / "stop").touch()
            await wait_until(pilot, lambda: app.snapshot.ended, "the program's end")
            assert "ended with exit code 3" in str(app.query_one("#status").render())
            # The table now shows what the program still held when it ended.
            assert "hold_big_blocks" in column(app, 0)
            await quit_view(pilot, app)

    run_pilot(drive())
    assert child.returncode == 3
    assert not alive(child.pid)


def test_a_program_killed_while_watched_is_shown_cut_short(local, tmp_path):
    import signal

    child, session = local()
    app = LiveView(session, on_quit=child.stop)

    async def drive() -> None:
        async with app.run_test(size=(160, 50)) as pilot:
            await wait_until(pilot, lambda: "hold_big_blocks" in column(app, 0), "the allocating function")
            child._signal_group(signal.SIGKILL)
            await wait_until(pilot, lambda: app.snapshot.ended, "the program's end", timeout=TIMEOUT_S)
            status = str(app.query_one("#status").render())
            assert f"ended with exit code {128 + signal.SIGKILL}; capture cut short" in status
            await quit_view(pilot, app)

    run_pilot(drive())
    assert child.returncode == 128 + signal.SIGKILL
