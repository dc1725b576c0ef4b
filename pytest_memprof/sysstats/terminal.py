"""``memprof sys`` alone (or ``-c HOST``): the full-screen view, in textual (as the live view), with Glances's hotkeys.

A background thread runs the refresh loop (a remote server may be slow to answer) and posts each
snapshot; the view renders it: a header, CPU/MEM/SWAP/LOAD with bars, the network, disk I/O, file system
and sensors panels, the alert log's summary, and every process in a table that scrolls. Values are
coloured by the thresholds of the config (views.py's decorations: OK green, CAREFUL blue, WARNING
yellow, CRITICAL red). Everything that comes from the machine's processes or a server is shown as Text
with control characters written out, never as markup.
"""

from __future__ import annotations

import re
import threading
from typing import Any, Callable, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.message import Message
from textual.screen import ModalScreen
from textual.widgets import DataTable, Input, Static

from ..errors import UsageError
from .hotkeys import HOTKEYS
from .printers import visible
from .runner import Refreshes, Source

# The plugins the view shows: a local source collects only these.
PLUGINS_SHOWN = ("now", "system", "uptime", "cpu", "percpu", "load", "mem", "memswap", "network", "diskio", "fs",
                 "sensors", "processcount", "processlist", "alert")
_STYLE = {"OK": "green", "CAREFUL": "blue", "WARNING": "yellow", "CRITICAL": "bold red", "DEFAULT": "",
          "MAX": "bold red"}
# Entries per side panel: the process list needs the room more.
_SIDE_ROWS = 4
MAX_TEXT = 300


def _style(decoration: str | None) -> str:
    return _STYLE.get((decoration or "DEFAULT").replace("_LOG", ""), "")


def _percent(value: Any) -> str:
    return f"{value:.1f}%" if isinstance(value, (int, float)) else "N/A"


def short(value: Any) -> str:
    """A byte count in at most 5 characters, as Glances writes them (896M, 1.01G, 23.5G); N/A if unknown."""
    if not isinstance(value, (int, float)):
        return "N/A"
    size = float(value)
    for unit in ("", "K", "M", "G", "T", "P"):
        if abs(size) < 1000 or unit == "P":
            if not unit:
                return f"{int(size)}"
            return f"{size:.2f}{unit}" if size < 10 else f"{size:.1f}{unit}" if size < 100 else f"{size:.0f}{unit}"
        size /= 1024
    return "N/A"  # pragma: no cover - the loop always returns


_size = short
_rate = short


def clean(text: Any, limit: int = MAX_TEXT) -> str:
    """Text from a process or a server, safe for a terminal: control characters written out, bounded length."""
    shown = visible(str(text))
    return shown if len(shown) <= limit else shown[: limit - 1] + "\u2026"


def _cpu_time(process: dict[str, Any]) -> float:
    times = process.get("cpu_times") or {}
    return (times.get("user") or 0.0) + (times.get("system") or 0.0)


def _io_rate(process: dict[str, Any]) -> float:
    io = process.get("io_counters") or [0, 0, 0, 0, 0]
    elapsed = process.get("time_since_update") or 0
    if len(io) < 5 or not io[4] or not elapsed:
        return 0.0
    return (io[0] - io[2] + io[1] - io[3]) / elapsed


# Sort keys as Glances names them: (key, label, sort function, largest first)
SORTS: dict[str, tuple[str, Callable[[dict[str, Any]], Any], bool]] = {
    "cpu_percent": ("CPU%", lambda p: p.get("cpu_percent") or 0.0, True),
    "memory_percent": ("MEM%", lambda p: (p.get("memory_info") or {}).get("rss") or 0, True),
    "name": ("name", lambda p: str(p.get("name") or "").lower(), False),
    "io_counters": ("I/O rate", _io_rate, True),
    "cpu_times": ("TIME+", _cpu_time, True),
    "username": ("user", lambda p: str(p.get("username") or ""), False),
}


def auto_sort(snapshot: dict[str, Any]) -> str:
    """Glances's automatic sort: by memory when memory is at its warning level, else by CPU."""
    mem = snapshot.get("mem") or {}
    return "memory_percent" if (mem.get("percent") or 0) >= 70 else "cpu_percent"


def _bar(value: Any, width: int = 16) -> str:
    if not isinstance(value, (int, float)):
        return " " * width
    filled = max(0, min(width, round(width * value / 100)))
    return "\u2588" * filled + "\u2591" * (width - filled)


class ConfirmKill(ModalScreen[bool]):
    """Asks before a process is killed: y kills, anything else keeps it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("y", "answer(True)", "yes"), Binding("n", "answer(False)", "no"),
                                             Binding("escape", "answer(False)", "no")]
    CSS = "ConfirmKill { align: center middle; } #question { width: 60; border: thick $error; padding: 1 2; }"

    def __init__(self, question: str) -> None:
        super().__init__()
        self.question = question

    def compose(self) -> ComposeResult:
        """The question."""
        yield Static(Text(self.question + "\n\ny: kill it   n / Esc: keep it"), id="question")

    def action_answer(self, answer: bool) -> None:
        """Close with the answer."""
        self.dismiss(answer)


class HelpScreen(ModalScreen[None]):
    """The hotkeys; h, q or Esc closes it."""

    BINDINGS: ClassVar[list[BindingType]] = [Binding("h", "close", "close"), Binding("escape", "close", "close"),
                                             Binding("q", "close", "close")]
    CSS = "HelpScreen { align: center middle; } #hotkeys { width: 76; height: auto; border: round $accent; }"

    def compose(self) -> ComposeResult:
        """The table of hotkeys."""
        yield Static(Text("memprof sys hotkeys\n\n" + "\n".join(f" {key:>2}  {text}" for key, text in HOTKEYS)),
                     id="hotkeys")

    def action_close(self) -> None:
        """Back to the view."""
        self.dismiss(None)


class SysView(App):
    """The machine at a glance, refreshing; Glances's hotkeys."""

    TITLE = "memprof sys"
    CSS = """
    #header { height: auto; padding: 0 1; background: $boost; }
    #summary { height: auto; }
    .summary { width: 1fr; height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #panels { height: auto; max-height: 6; }
    .panel { width: 1fr; height: auto; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #alerts { height: 1; padding: 0 1; text-wrap: nowrap; text-overflow: ellipsis; }
    #filter { height: 3; }
    #processes { height: 1fr; min-height: 5; overflow-x: hidden; }
    #footer { height: 1; padding: 0 1; background: $boost; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_view", "quit"), Binding("escape", "quit_view", "quit", show=False),
        Binding("a", "sort('auto')"), Binding("c", "sort('cpu_percent')"), Binding("m", "sort('memory_percent')"),
        Binding("p", "sort('name')"), Binding("i", "sort('io_counters')"), Binding("t", "sort('cpu_times')"),
        Binding("u", "sort('username')"), Binding("E", "erase_filter"), Binding("l", "toggle('alerts')"),
        Binding("h", "toggle_help"), Binding("slash", "filter"), Binding("k", "kill"), Binding("1", "toggle_percpu"),
        Binding("d", "toggle('diskio')"), Binding("n", "toggle('network')"), Binding("f", "toggle('fs')"),
        Binding("s", "toggle('sensors')"), Binding("z", "toggle_all"),
    ]

    class SnapshotReady(Message):
        """A new snapshot from the refresh thread."""

        def __init__(self, snapshot: dict[str, Any]) -> None:
            super().__init__()
            self.snapshot = snapshot

    class Problem(Message):
        """The refresh loop has something to say (a server away, back, or given up on)."""

        def __init__(self, text: str, final: bool = False) -> None:
            super().__init__()
            self.text = text
            self.final = final

    def __init__(self, source: Source, interval: float, stop_after: int | None = None, *, limits: Any = None,
                 on_snapshot: Callable[[dict[str, Any]], None] | None = None, can_kill: bool = True) -> None:
        super().__init__()
        from .thresholds import Limits

        self.source = source
        self.interval = interval
        self.stop_after = stop_after
        self.limits = limits if limits is not None else Limits()
        self.on_snapshot = on_snapshot
        self.can_kill = can_kill
        self.snapshot: dict[str, Any] = {}
        self.problem = "collecting\u2026"
        self.failure: str | None = None
        self.sort_key = "auto"
        self.process_filter: re.Pattern[str] | None = None
        self.hidden: set[str] = set()
        self.all_hidden = False
        self.percpu = False
        self.show_help = False
        self.message = ""
        self.shown_pids: list[Any] = []
        self.refreshes = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._refresh, name="memprof-sys-refresh", daemon=True)

    # ---- layout and the refresh thread ----------------------------------------------------------

    def compose(self) -> ComposeResult:
        """Header, summary, panels, alerts, help, filter, processes, footer."""
        yield Static(id="header")
        with Horizontal(id="summary"):
            for name in ("cpu", "mem", "memswap", "load"):
                yield Static(id=f"summary-{name}", classes="summary")
        with Horizontal(id="panels"):
            for name in ("network", "diskio", "fs", "sensors"):
                yield Static(id=f"panel-{name}", classes="panel")
        yield Static(id="alerts")
        yield Input(placeholder="filter: a regular expression on name and command line (empty: none)", id="filter")
        yield DataTable(id="processes", cursor_type="row", zebra_stripes=True)
        yield Static(id="footer")

    def on_mount(self) -> None:
        """Columns, hidden help and filter, then start refreshing."""
        table = self.query_one("#processes", DataTable)
        for label, key, width in (("CPU%", "cpu", 5), ("MEM%", "mem", 4), ("RES", "res", 5), ("PID", "pid", 7),
                                  ("USER", "user", 8), ("S", "status", 1), ("TIME+", "time", 8),
                                  ("IO/s", "io", 5), ("Command", "command", None)):
            table.add_column(label, key=key, width=width)
        self.query_one("#filter").display = False
        table.focus()  # else the (hidden) filter line would take the hotkeys as text
        self._render()
        self._thread.start()

    def _refresh(self) -> None:
        from ..errors import MemprofError

        view = self

        class Messages:
            def write(self, text: str) -> None:
                if text.strip():
                    view.post_message(view.Problem(text.strip().removeprefix("memprof: ")))

            def flush(self) -> None:
                pass

        try:
            for snapshot in Refreshes(self.source, self.interval, self.stop_after, messages=Messages(),
                                      should_stop=self._stop.is_set):
                self.post_message(self.SnapshotReady(snapshot))
        except MemprofError as error:
            self.post_message(self.Problem(str(error), final=True))
            return
        if self.stop_after is not None and not self._stop.is_set():
            self.call_from_thread(self.exit)

    def on_sys_view_snapshot_ready(self, message: SnapshotReady) -> None:
        """Show a new snapshot."""
        self.snapshot = message.snapshot
        self.refreshes += 1
        self.problem = ""  # data again: "collecting", "not answering" and "is back" are all over
        if self.on_snapshot is not None:
            self.on_snapshot(message.snapshot)
        self._render()

    def on_sys_view_problem(self, message: Problem) -> None:
        """Show what the refresh loop says; a final failure ends the view with exit code 1."""
        self.problem = message.text
        if message.final:
            self.failure = message.text
            self.exit(return_code=1)
            return
        self._render()

    # ---- actions --------------------------------------------------------------------------------

    def action_quit_view(self) -> None:
        """Quit (q or Esc)."""
        self._stop.set()
        self.exit()

    def action_sort(self, key: str) -> None:
        """Sort the processes (a auto, c CPU, m memory, p name, i I/O, t time)."""
        self.sort_key = key
        self._render()

    def action_toggle_help(self) -> None:
        """Show the hotkeys (h again, q or Esc closes them)."""
        self.show_help = True

        def closed(_: None) -> None:
            self.show_help = False

        self.push_screen(HelpScreen(), closed)

    def action_toggle_percpu(self) -> None:
        """One line per CPU, or all together."""
        self.percpu = not self.percpu
        self._render()

    def action_toggle(self, panel: str) -> None:
        """Show or hide one side panel."""
        self.hidden ^= {panel}
        self._render()

    def action_toggle_all(self) -> None:
        """Hide everything but the processes, or show it again."""
        self.all_hidden = not self.all_hidden
        self._render()

    def action_filter(self) -> None:
        """Open the filter line."""
        field = self.query_one("#filter", Input)
        field.display = True
        field.value = self.process_filter.pattern if self.process_filter else ""
        field.focus()

    def on_input_submitted(self, event: Input.Submitted) -> None:
        """Apply the filter typed (a regular expression); a bad one is said, not applied."""
        text = event.value.strip()
        event.input.display = False
        self.query_one("#processes", DataTable).focus()
        if not text:
            self.process_filter = None
        else:
            try:
                self.process_filter = re.compile(text)
            except re.error as error:
                self.message = f"not a regular expression: {error}"
                self._render()
                return
        self.message = ""
        self._render()

    def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
        """Enter on the process list opens the filter, as in Glances."""
        self.action_filter()

    def action_erase_filter(self) -> None:
        """Drop the filter (Glances's E)."""
        self.process_filter = None
        self._render()

    def action_kill(self) -> None:
        """Kill the selected process, after asking."""
        if not self.can_kill:
            self.message = "k kills processes of this machine only (this view shows a server's)"
            self._render()
            return
        table = self.query_one("#processes", DataTable)
        if not self.shown_pids or not 0 <= table.cursor_row < len(self.shown_pids):
            return
        pid = self.shown_pids[table.cursor_row]
        process = next((p for p in self.snapshot.get("processlist") or [] if p.get("pid") == pid), {})
        name = clean(process.get("name") or "?", 60)

        def answered(kill: bool | None) -> None:
            if not kill:
                self.message = f"kept {name} ({pid})"
            else:
                import psutil

                try:
                    psutil.Process(pid).terminate()
                    self.message = f"sent SIGTERM to {name} ({pid})"
                except psutil.Error as error:
                    self.message = f"could not kill {name} ({pid}): {type(error).__name__}"
            self._render()

        self.push_screen(ConfirmKill(f"Kill process {pid} ({name})?"), answered)

    # ---- rendering ------------------------------------------------------------------------------

    def _decorations(self, plugin: str, value: Any) -> dict[str, str]:
        return self.limits.decorations(plugin, value, value) if isinstance(value, dict) else {}

    def _render(self) -> None:
        snapshot = self.snapshot
        self._render_header(snapshot)
        summary_shown = not self.all_hidden
        self.query_one("#summary").display = summary_shown
        self.query_one("#panels").display = summary_shown and len(self.hidden) < 4
        self.query_one("#alerts").display = summary_shown and "alerts" not in self.hidden
        self._render_summary(snapshot)
        self._render_panels(snapshot)
        self._render_alerts(snapshot)
        self._render_processes(snapshot)

    def _render_header(self, snapshot: dict[str, Any]) -> None:
        system = snapshot.get("system") or {}
        now = snapshot.get("now")
        when = now.get("iso") if isinstance(now, dict) else now
        header = Text(no_wrap=True, overflow="ellipsis")
        header.append(clean(system.get("hostname", "?"), 60), style="bold")
        header.append(f"  uptime {clean(snapshot.get('uptime', 'N/A'), 40)}  {clean(when or '', 40)}  ")
        header.append(f"({clean(getattr(self.source, 'description', ''), 80)}; h help, q quit)", style="dim")
        count = snapshot.get("processcount") or {}
        header.append(f"\nTASKS {count.get('total', '?')} ({count.get('thread', '?')} thr), "
                      f"{count.get('running', '?')} run, {count.get('sleeping', '?')} slp")
        if self.problem:
            header.append(f"\n{clean(self.problem, 500)}", style="bold red")
        self.query_one("#header", Static).update(header)

    def _render_summary(self, snapshot: dict[str, Any]) -> None:
        cpu, mem = snapshot.get("cpu") or {}, snapshot.get("mem") or {}
        swap, load = snapshot.get("memswap") or {}, snapshot.get("load") or {}
        cpu_text = Text()
        decorated = self._decorations("cpu", cpu)
        cpu_text.append(f"CPU  {_percent(cpu.get('total'))}\n", style=f"bold {_style(decorated.get('total'))}")
        if self.percpu:
            for entry in snapshot.get("percpu") or []:
                level = self.limits.decorations("percpu", entry).get("user")
                cpu_text.append(f"cpu{entry.get('cpu_number')} {_bar(entry.get('total'), 10)} "
                                f"{_percent(entry.get('total'))}\n", style=_style(level))
        else:
            cpu_text.append(_bar(cpu.get("total")) + "\n", style=_style(decorated.get("total")))
            for name in ("user", "system", "iowait"):
                cpu_text.append(f"{name:<8}{_percent(cpu.get(name)):>8}\n", style=_style(decorated.get(name)))
        cpu_text.rstrip()
        self.query_one("#summary-cpu", Static).update(cpu_text)
        mem_decorated = self._decorations("mem", mem)
        mem_text = Text(f"MEM  {_percent(mem.get('percent'))}\n", style=f"bold {_style(mem_decorated.get('percent'))}")
        mem_text.append(_bar(mem.get("percent")) + "\n", style=_style(mem_decorated.get("percent")))
        for name, label in (("total", "total"), ("used", "used"), ("available", "avail")):
            mem_text.append(f"{label:<8}{_size(mem.get(name)):>8}\n")
        mem_text.rstrip()
        self.query_one("#summary-mem", Static).update(mem_text)
        swap_decorated = self._decorations("memswap", swap)
        swap_text = Text(f"SWAP {_percent(swap.get('percent'))}\n",
                         style=f"bold {_style(swap_decorated.get('percent'))}")
        swap_text.append(_bar(swap.get("percent")) + "\n", style=_style(swap_decorated.get("percent")))
        for name in ("total", "used"):
            swap_text.append(f"{name:<8}{_size(swap.get(name)):>8}\n")
        swap_text.rstrip()
        self.query_one("#summary-memswap", Static).update(swap_text)
        load_decorated = self._decorations("load", load)
        load_text = Text(f"LOAD {load.get('cpucore', '?')}-core\n", style="bold")
        for name, label in (("min1", "1 min"), ("min5", "5 min"), ("min15", "15 min")):
            load_text.append(f"{label:<8}{load.get(name, 'N/A'):>8}\n", style=_style(load_decorated.get(name)))
        load_text.rstrip()
        self.query_one("#summary-load", Static).update(load_text)

    def _render_panels(self, snapshot: dict[str, Any]) -> None:
        def panel(name: str, title: str, rows: list[tuple[str, str, str]]) -> None:
            widget = self.query_one(f"#panel-{name}", Static)
            widget.display = name not in self.hidden
            text = Text(title + "\n", style="bold", no_wrap=True, overflow="ellipsis")
            for label, value, style in rows[:_SIDE_ROWS]:
                shown = clean(label, 40)
                shown = shown if len(shown) <= 6 else shown[:5] + "\u2026"
                text.append(f"{shown:<6}{value}\n", style=style)
            text.rstrip()
            widget.update(text)

        network = []
        for entry in snapshot.get("network") or []:
            levels = self.limits.decorations("network", entry)
            worst = max((levels.get("bytes_recv_rate_per_sec"), levels.get("bytes_sent_rate_per_sec")),
                        key=lambda level: ("OK", "CAREFUL", "WARNING", "CRITICAL").index(level.replace("_LOG", ""))
                        if level and level.replace("_LOG", "") in ("OK", "CAREFUL", "WARNING", "CRITICAL") else -1)
            network.append((entry.get("interface_name"), f"{_rate(entry.get('bytes_recv_rate_per_sec')):>6}"
                            f"{_rate(entry.get('bytes_sent_rate_per_sec')):>6}", _style(worst)))
        panel("network", "NETWORK Rx/s  Tx/s", network)
        panel("diskio", "DISK I/O R/s   W/s",
              [(entry.get("disk_name"), f"{_rate(entry.get('read_bytes_rate_per_sec')):>6}"
                f"{_rate(entry.get('write_bytes_rate_per_sec')):>6}", "") for entry in snapshot.get("diskio") or []])
        panel("fs", "FILE SYS Used  Size",
              [(entry.get("mnt_point"), f"{_size(entry.get('used')):>6}{_size(entry.get('size')):>6}",
                _style(self.limits.decorations("fs", entry).get("percent"))) for entry in snapshot.get("fs") or []])
        sensors = [(entry.get("label"), f"{entry.get('value'):>10}{entry.get('unit') or ''}",
                    _style(self.limits.decorations("sensors", entry).get("value")))
                   for entry in snapshot.get("sensors") or []]
        panel("sensors", "SENSORS", sensors or [("none", "", "dim")])

    def _render_alerts(self, snapshot: dict[str, Any]) -> None:
        events = snapshot.get("alert") or []
        text = Text(no_wrap=True, overflow="ellipsis")
        if not events:
            text.append("No warning or critical alert detected", style="dim")
        for event in events[:3]:
            ongoing = event.get("end") == -1
            text.append(f"{'ongoing' if ongoing else 'ended'} {clean(event.get('state'), 20)} "
                        f"{clean(event.get('type'), 40)} (max {event.get('max')}, avg {event.get('avg')})  ",
                        style=_style(event.get("state")) if ongoing else "dim")
        self.query_one("#alerts", Static).update(text)

    def sorted_processes(self) -> list[dict[str, Any]]:
        """The processes as the table shows them: filtered, then sorted by the chosen key."""
        processes = [p for p in self.snapshot.get("processlist") or [] if isinstance(p, dict)]
        if self.process_filter is not None:
            processes = [p for p in processes if self.process_filter.search(
                f"{p.get('name') or ''} {' '.join(str(arg) for arg in p.get('cmdline') or [])}")]
        key = auto_sort(self.snapshot) if self.sort_key == "auto" else self.sort_key
        _, function, descending = SORTS[key]
        return sorted(processes, key=function, reverse=descending)

    def _render_processes(self, snapshot: dict[str, Any]) -> None:
        table = self.query_one("#processes", DataTable)
        selected = self.shown_pids[table.cursor_row] if 0 <= table.cursor_row < len(self.shown_pids) else None
        processes = self.sorted_processes()
        table.clear()
        for process in processes:
            memory = process.get("memory_info") or {}
            command = " ".join(str(arg) for arg in process.get("cmdline") or []) or f"[{process.get('name') or '?'}]"
            levels = self.limits.decorations("processlist", process)
            seconds = _cpu_time(process)
            table.add_row(
                Text(_percent(process.get("cpu_percent"))[:-1], style=_style(levels.get("cpu_percent")),
                     justify="right"),
                Text(f"{process.get('memory_percent') or 0:.1f}", style=_style(levels.get("memory_percent")),
                     justify="right"),
                Text(_size(memory.get("rss")), justify="right"), Text(str(process.get("pid")), justify="right"),
                Text(clean(process.get("username") or "?", 8)), Text(clean(process.get("status") or "?", 1)),
                Text(f"{int(seconds // 60)}:{seconds % 60:05.2f}", justify="right"),
                Text(_rate(_io_rate(process)) if process.get("io_counters") else "?", justify="right"),
                Text(clean(command)),
            )
        self.shown_pids = [process.get("pid") for process in processes]
        if selected in self.shown_pids:
            table.move_cursor(row=self.shown_pids.index(selected), animate=False)
        key = auto_sort(snapshot) if self.sort_key == "auto" else self.sort_key
        footer = Text(f"{len(processes)} processes sorted {'automatically ' if self.sort_key == 'auto' else ''}"
                      f"by {SORTS[key][0]}")
        if self.process_filter is not None:
            footer.append(f"  filter: {clean(self.process_filter.pattern, 60)}", style="bold")
        if self.message:
            footer.append(f"  {clean(self.message, 200)}", style="bold yellow")
        self.query_one("#footer", Static).update(footer)

    def process_rows(self) -> list[tuple[str, ...]]:
        """The process table as displayed, one tuple of cell texts per row (for tests)."""
        table = self.query_one("#processes", DataTable)
        return [tuple(str(cell) for cell in table.get_row_at(index)) for index in range(table.row_count)]


def show(source: Source, interval: float, stop_after: int | None, on_snapshot: Any = None, config: Any = None) -> int:
    """Run the full-screen view until q, Ctrl-C or ``stop_after`` refreshes; return the exit code."""
    import sys

    if not sys.stdout.isatty():
        raise UsageError("the terminal view needs a terminal: use --stdout, --stdout-csv or --stdout-json "
                         "to print stats into a pipe or file")
    from .source import LocalSource
    from .thresholds import Limits

    view = SysView(source, interval, stop_after, limits=Limits(config), on_snapshot=on_snapshot,
                   can_kill=isinstance(source, LocalSource))
    try:
        view.run()
    except KeyboardInterrupt:
        pass
    finally:
        view._stop.set()
    if view.failure:
        from ..errors import MemprofError

        raise MemprofError(view.failure)
    return 0
