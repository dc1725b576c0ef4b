"""``memprof sys`` alone (or ``-c HOST``): a full-screen terminal view with rich, refreshing; ``q`` quits."""

from __future__ import annotations

import os
import select
import sys
import threading
from contextlib import contextmanager
from typing import Any

from ..errors import UsageError
from ..sizes import format_size
from .runner import Refreshes, Source

# The plugins the view shows: a local source collects only these.
PLUGINS_SHOWN = ("now", "system", "uptime", "cpu", "load", "mem", "memswap", "network", "fs", "processcount",
                 "processlist")
# Entries per side panel (network interfaces, file systems): the process list needs the room more.
_SIDE_ROWS = 4


def _percent(value: Any) -> str:
    return f"{value:.1f}%" if isinstance(value, (int, float)) else "N/A"


def _size(value: Any) -> str:
    return format_size(value) if isinstance(value, int) else "N/A"


def _rate(value: Any) -> str:
    return f"{format_size(int(value))}/s" if isinstance(value, (int, float)) else "N/A"


def _bar(value: Any, width: int = 20) -> str:
    if not isinstance(value, (int, float)):
        return " " * width
    filled = max(0, min(width, round(width * value / 100)))
    colour = "red" if value >= 90 else "yellow" if value >= 70 else "green"
    return f"[{colour}]{'█' * filled}[/][dim]{'░' * (width - filled)}[/]"


def render(snapshot: dict[str, Any], origin: str, problem: str = "") -> Any:
    """The whole screen for one snapshot, as a rich renderable (testable without a terminal)."""
    from rich.columns import Columns
    from rich.console import Group
    from rich.markup import escape
    from rich.panel import Panel
    from rich.table import Table

    system = snapshot.get("system") or {}
    cpu, mem = snapshot.get("cpu") or {}, snapshot.get("mem") or {}
    swap, load = snapshot.get("memswap") or {}, snapshot.get("load") or {}
    count = snapshot.get("processcount") or {}
    header = (f"[bold]{escape(str(system.get('hostname', '?')))}[/] {escape(str(system.get('hr_name', '')))}  "
              f"uptime {escape(str(snapshot.get('uptime', 'N/A')))}  {escape(str(snapshot.get('now', '')))}  "
              f"[dim]({escape(origin)}; q quits)[/]")
    if problem:
        header += f"\n[bold red]{escape(problem)}[/]"

    def panel(title: str, rows: list[tuple[str, str]], percent: Any = None) -> Panel:
        table = Table.grid(padding=(0, 1))
        table.add_column(style="dim")
        table.add_column(justify="right")
        for name, value in rows:
            table.add_row(name, value)
        body = Group(_bar(percent), table) if percent is not None else table
        shown = f"[bold]{title}[/] {_percent(percent)}" if percent is not None else f"[bold]{title}[/]"
        return Panel(body, title=shown, width=30)

    panels = Columns([
        panel("CPU", [("user", _percent(cpu.get("user"))), ("system", _percent(cpu.get("system"))),
                      ("iowait", _percent(cpu.get("iowait"))), ("cores", str(cpu.get("cpucore", "N/A")))],
              cpu.get("total")),
        panel("MEM", [("used", _size(mem.get("used"))), ("available", _size(mem.get("available"))),
                      ("total", _size(mem.get("total"))), ("cached", _size(mem.get("cached")))], mem.get("percent")),
        panel("SWAP", [("used", _size(swap.get("used"))), ("free", _size(swap.get("free"))),
                       ("total", _size(swap.get("total")))], swap.get("percent")),
        panel("LOAD", [("1 min", str(load.get("min1", "N/A"))), ("5 min", str(load.get("min5", "N/A"))),
                       ("15 min", str(load.get("min15", "N/A"))), ("processes", str(count.get("total", "N/A"))),
                       ("threads", str(count.get("thread", "N/A")))]),
        panel("NETWORK rx tx", [
            (escape(str(entry.get("interface_name"))),
             f"{_rate(entry.get('bytes_recv_rate_per_sec'))} {_rate(entry.get('bytes_sent_rate_per_sec'))}")
            for entry in (snapshot.get("network") or []) if entry.get("is_up") is not False][:_SIDE_ROWS]),
        panel("FILE SYS used", [
            (escape(str(entry.get("mnt_point"))), f"{_size(entry.get('used'))} {_percent(entry.get('percent'))}")
            for entry in (snapshot.get("fs") or [])][:_SIDE_ROWS]),
    ])
    processes = Table(title="Processes by memory", expand=True, title_justify="left")
    for name, justify in (("pid", "right"), ("name", "left"), ("user", "left"), ("RSS", "right"),
                          ("MEM%", "right"), ("CPU%", "right"), ("command", "left")):
        processes.add_column(name, justify=justify, no_wrap=True, overflow="ellipsis",
                             ratio=1 if name == "command" else None)
    for process in snapshot.get("processlist") or []:
        memory = process.get("memory_info") or {}
        processes.add_row(str(process.get("pid")), escape(str(process.get("name") or "")),
                          escape(str(process.get("username") or "")), _size(memory.get("rss")),
                          _percent(process.get("memory_percent")), _percent(process.get("cpu_percent")),
                          escape(" ".join(" ".join(str(arg).split()) for arg in process.get("cmdline") or [])))
    return Group(header, panels, processes)


@contextmanager
def _keys(stop: threading.Event):
    """Read single keys from a terminal stdin in the background; ``q`` (or Q) sets ``stop``."""
    if not sys.stdin.isatty():
        yield
        return
    import termios
    import tty

    fd = sys.stdin.fileno()
    saved = termios.tcgetattr(fd)
    tty.setcbreak(fd)
    done = threading.Event()

    def read() -> None:
        while not done.is_set() and not stop.is_set():
            ready, _, _ = select.select([fd], [], [], 0.1)
            if ready:
                key = os.read(fd, 1)
                if key in (b"q", b"Q", b""):
                    stop.set()

    reader = threading.Thread(target=read, name="memprof-sys-keys", daemon=True)
    reader.start()
    try:
        yield
    finally:
        done.set()
        reader.join(timeout=1)
        termios.tcsetattr(fd, termios.TCSADRAIN, saved)


class _Problems:
    """Where the refresh loop's messages go in full screen: shown in the view's header, not over it."""

    def __init__(self) -> None:
        self.text = ""
        self.on_change = lambda: None

    def write(self, text: str) -> None:
        if text.strip():
            self.text = text.strip().removeprefix("memprof: ")
            self.on_change()

    def flush(self) -> None:
        pass


def show(source: Source, interval: float, stop_after: int | None, on_snapshot: Any = None) -> int:
    """Run the full-screen view until ``q``, Ctrl-C or ``stop_after`` refreshes; return the exit code."""
    if not sys.stdout.isatty():
        raise UsageError("the terminal view needs a terminal: use --stdout, --stdout-csv or --stdout-json "
                         "to print stats into a pipe or file")
    from rich.console import Console
    from rich.live import Live

    stop = threading.Event()
    problems = _Problems()
    latest: dict[str, Any] = {}
    console = Console()
    with _keys(stop), Live(render(latest, source.description, "collecting..."), console=console, screen=True,
                           auto_refresh=False) as live:
        problems.on_change = lambda: live.update(render(latest, source.description, problems.text), refresh=True)
        try:
            for snapshot in Refreshes(source, interval, stop_after, messages=problems, should_stop=stop.is_set):
                latest = snapshot
                if on_snapshot is not None:
                    on_snapshot(snapshot)
                if "is back" in problems.text:
                    problems.text = ""
                live.update(render(snapshot, source.description, problems.text), refresh=True)
        except KeyboardInterrupt:
            pass
    return 0
