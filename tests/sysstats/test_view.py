"""The terminal view's hotkeys, driven by textual's pilot over a source whose figures the test chooses."""

from __future__ import annotations

import subprocess
import sys

import psutil

from pytest_memprof.sysstats.config import SysConfig
from pytest_memprof.sysstats.terminal import SysView, clean
from pytest_memprof.sysstats.thresholds import Limits
from tests.live.conftest import run_pilot, wait_until


def _process(pid: int, name: str, cpu: float, rss: int, seconds: float, io: int, cmdline: list[str] | None = None):
    return {"pid": pid, "name": name, "cmdline": cmdline or [f"/usr/bin/{name}", "--flag"], "username": "someone",
            "status": "S", "nice": 0, "num_threads": 1, "cpu_percent": cpu, "memory_percent": rss / 1e8,
            "memory_info": {"rss": rss, "vms": rss * 2}, "cpu_times": {"user": seconds, "system": 0.0},
            "io_counters": [io, 0, 0, 0, 1], "time_since_update": 1.0, "key": "pid"}


class FakeSource:
    description = "test source"

    def __init__(self, processes: list[dict]) -> None:
        self.processes = processes

    def sample(self) -> dict:
        return {
            "system": {"hostname": "box", "hr_name": "Test OS"}, "uptime": "1:00:00",
            "now": {"iso": "2026-01-01T00:00:00+00:00", "custom": ""},
            "cpu": {"total": 95.0, "user": 80.0, "system": 15.0, "iowait": 0.0, "cpucore": 2},
            "percpu": [{"cpu_number": 0, "total": 90.0, "user": 80.0}, {"cpu_number": 1, "total": 10.0, "user": 5.0}],
            "mem": {"total": 8 << 30, "used": 1 << 30, "available": 7 << 30, "percent": 12.5},
            "memswap": {"total": 0, "used": 0, "percent": 0.0}, "load": {"min1": 0.5, "min5": 0.4, "min15": 0.3,
                                                                         "cpucore": 2},
            "network": [{"interface_name": "eth0", "bytes_recv_rate_per_sec": 1000.0, "bytes_sent_rate_per_sec": 10.0}],
            "diskio": [{"disk_name": "sda", "read_bytes_rate_per_sec": 0.0, "write_bytes_rate_per_sec": 0.0}],
            "fs": [{"mnt_point": "/", "used": 1 << 30, "size": 2 << 30, "percent": 50.0}],
            "sensors": [], "processcount": {"total": len(self.processes), "thread": 9, "running": 1, "sleeping": 2},
            "processlist": list(self.processes), "alert": [],
        }


PROCESSES = [
    _process(101, "alpha", cpu=5.0, rss=300 << 20, seconds=10.0, io=10),
    _process(102, "bravo", cpu=50.0, rss=100 << 20, seconds=1.0, io=5000),
    _process(103, "charlie", cpu=20.0, rss=200 << 20, seconds=99.0, io=0),
]


def _pids(app: SysView) -> list[int]:
    return [int(row[3]) for row in app.process_rows()]


def test_sort_keys_filter_and_panels():
    async def body() -> None:
        app = SysView(FakeSource(PROCESSES), 0.2, limits=Limits())
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 1, "a first refresh")
            assert _pids(app) == [102, 103, 101]  # automatic: by CPU, memory being plentiful
            for key, expected in (("m", [101, 103, 102]), ("p", [101, 102, 103]), ("i", [102, 101, 103]),
                                  ("t", [103, 101, 102]), ("c", [102, 103, 101]), ("a", [102, 103, 101])):
                await pilot.press(key)
                await pilot.pause(0.05)
                assert _pids(app) == expected, key
            await pilot.press("slash")
            await pilot.press(*"ch.*lie", "enter")
            await pilot.pause(0.05)
            assert _pids(app) == [103] and app.process_filter.pattern == "ch.*lie"
            await pilot.press("slash", "[", "enter")  # not a regular expression: said, the filter kept
            await pilot.pause(0.05)
            assert "not a regular expression" in app.message and _pids(app) == [103]
            await pilot.press("slash")
            app.query_one("#filter").value = ""
            await pilot.press("enter")
            await pilot.pause(0.05)
            assert len(_pids(app)) == 3
            for key, panel in (("d", "diskio"), ("n", "network"), ("f", "fs"), ("s", "sensors")):
                assert app.query_one(f"#panel-{panel}").display
                await pilot.press(key)
                await pilot.pause(0.05)
                assert not app.query_one(f"#panel-{panel}").display, panel
            await pilot.press("z")
            await pilot.pause(0.05)
            assert not app.query_one("#summary").display and app.query_one("#processes").display
            await pilot.press("z", "1")
            await pilot.pause(0.05)
            assert "cpu1" in str(app.query_one("#summary-cpu").render())
            await pilot.press("h")
            await pilot.pause(0.05)
            assert type(app.screen).__name__ == "HelpScreen"
            await pilot.press("escape")
            await pilot.pause(0.05)
            assert type(app.screen).__name__ == "Screen"
            await pilot.press("q")
    run_pilot(body())


def test_values_are_coloured_by_the_config_thresholds():
    async def body() -> None:
        limits = Limits(SysConfig({"cpu": {"user_careful": "10", "user_warning": "20", "user_critical": "30"}}))
        app = SysView(FakeSource(PROCESSES), 0.2, limits=limits)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 1, "a first refresh")
            text = app.query_one("#summary-cpu").render()
            user_line = next(span for span in text.spans if "user" in str(text)[span.start:span.end])
            assert "red" in str(user_line.style)  # 80 % against a critical of 30
            await pilot.press("q")
    run_pilot(body())


def test_k_kills_the_selected_process_after_asking():
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "memprof-kill-me"])
    try:
        me = _process(child.pid, "python", cpu=99.0, rss=1 << 20, seconds=1.0, io=0,
                      cmdline=[sys.executable, "-c", "...", "memprof-kill-me"])

        async def body() -> None:
            app = SysView(FakeSource([*PROCESSES, me]), 0.2, limits=Limits())
            async with app.run_test(size=(100, 30)) as pilot:
                await wait_until(pilot, lambda: app.refreshes >= 1, "a first refresh")
                assert _pids(app)[0] == child.pid
                await pilot.press("k")
                await pilot.pause(0.1)
                assert type(app.screen).__name__ == "ConfirmKill"
                await pilot.press("n")
                await pilot.pause(0.1)
                assert child.poll() is None and "kept" in app.message
                await pilot.press("k")
                await pilot.pause(0.1)
                await pilot.press("y")
                await wait_until(pilot, lambda: child.poll() is not None, "the process to end")
                assert "sent SIGTERM" in app.message
                await pilot.press("q")
        run_pilot(body())
    finally:
        child.kill()
        child.wait()
    assert not psutil.pid_exists(child.pid) or psutil.Process(child.pid).status() == psutil.STATUS_ZOMBIE


def test_a_servers_processes_are_not_killed_from_here():
    async def body() -> None:
        app = SysView(FakeSource(PROCESSES), 0.2, limits=Limits(), can_kill=False)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 1, "a first refresh")
            await pilot.press("k")
            await pilot.pause(0.05)
            assert type(app.screen).__name__ == "Screen" and "this machine only" in app.message
            await pilot.press("q")
    run_pilot(body())


def test_process_names_cannot_drive_the_terminal():
    hostile = _process(666, "evil\x1b]0;pwned\x07", cpu=1.0, rss=1, seconds=0.0, io=0,
                       cmdline=["evil", "\x1b[2J\x9b31m[bold red]markup[/]"])

    async def body() -> None:
        app = SysView(FakeSource([hostile]), 0.2, limits=Limits())
        async with app.run_test(size=(120, 30)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 1, "a first refresh")
            (row,) = app.process_rows()
            assert "\x1b" not in "".join(row) and "\\x1b[2J\\x9b31m[bold red]markup[/]" in row[-1]
            await pilot.press("q")
    run_pilot(body())
    assert clean("a\x1bb") == "a\\x1bb"


def test_glances_keys_enter_filters_e_erases_l_hides_alerts_u_sorts_by_user():
    processes = [dict(process, username=user) for process, user in zip(PROCESSES, ("zed", "amy", "kim"))]

    async def body() -> None:
        app = SysView(FakeSource(processes), 0.2, limits=Limits())
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 1, "a first refresh")
            await pilot.press("u")
            await pilot.pause(0.05)
            assert _pids(app) == [102, 103, 101]
            await pilot.press("enter")
            await pilot.pause(0.05)
            assert app.query_one("#filter").display
            await pilot.press(*"alpha", "enter")
            await pilot.pause(0.05)
            assert _pids(app) == [101]
            await pilot.press("E")
            await pilot.pause(0.05)
            assert len(_pids(app)) == 3
            await pilot.press("l")
            await pilot.pause(0.05)
            assert not app.query_one("#alerts").display
            await pilot.press("q")
    run_pilot(body())
