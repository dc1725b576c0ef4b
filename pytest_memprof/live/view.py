"""The live view (textual): status, heap and RSS over time, and the locations holding the most memory now.

The view only renders :class:`~pytest_memprof.live.stream.LiveState` values; a background thread
reads and decodes the stream (``LiveSession``) and posts a snapshot a few times a second.
"""

from __future__ import annotations

import asyncio
import signal
import threading
from typing import Callable, ClassVar

from rich.text import Text
from textual.app import App, ComposeResult
from textual.binding import Binding, BindingType
from textual.message import Message
from textual.widgets import DataTable, Footer, Sparkline, Static

from ..errors import MemprofError
from ..sizes import format_size
from ..terminal import printable
from .stream import LiveSession, LiveState, LocationRow

MAX_ROWS = 500
MAX_TEXT = 200


def clean(text: str, limit: int = MAX_TEXT) -> str:
    """``text`` from the tracked program, safe for a terminal: no control characters, bounded length."""
    # Control characters show as escapes (\x1b), as in every terminal view; other unprintable ones as U+FFFD.
    text = "".join(char if char.isprintable() else "\ufffd" for char in printable(text[: limit + 1]))
    return text if len(text) <= limit else text[: limit - 1] + "\u2026"


def clip_left(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, keeping its end (a path's file name and line matter most)."""
    return text if len(text) <= width else "\u2026" + text[len(text) - width + 1 :]


def clip_right(text: str, width: int) -> str:
    """``text`` in at most ``width`` characters, keeping its start."""
    return text if len(text) <= width else text[: width - 1] + "\u2026"


def thread_label(thread_id: int, name: str) -> str:
    """How a thread is shown: its name and OS id, or the id alone."""
    return f"{clean(name, 40)} ({thread_id})" if name else str(thread_id)


# (header, sort key, first sort is descending): numbers start largest first, text in alphabetical order.
COLUMNS: tuple[tuple[str, Callable[[LocationRow], object], bool], ...] = (
    ("Function", lambda row: row.function.lower(), False),
    ("Location", lambda row: (row.file, row.line), False),
    ("Thread", lambda row: (row.thread_name.lower(), row.thread_id), False),
    ("Bytes", lambda row: row.bytes, True),
    ("Allocations", lambda row: row.count, True),
)
BYTES_COLUMN = 3
# Fixed widths of the function, thread, bytes and count columns; the location takes the rest of the line.
FUNCTION_WIDTH, THREAD_WIDTH, NUMBER_WIDTH = 32, 22, 11
MIN_LOCATION_WIDTH = 24


class LiveView(App):
    """Watch a program's memory as it runs."""

    TITLE = "memprof live"
    CSS = """
    #status { height: auto; padding: 0 1; background: $boost; }
    #figures { height: 1; padding: 0 1; }
    .plot-label { height: 1; padding: 0 1; color: $text-muted; }
    Sparkline { height: 2; margin: 0 1; }
    #locations { height: 1fr; }
    """
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("q", "quit_view", "Quit"),
        Binding("p", "pause", "Pause"),
        Binding("t", "next_thread", "Thread"),
        Binding("s", "next_sort", "Sort"),
        Binding("r", "reverse_sort", "Reverse"),
        *(Binding(str(index + 1), f"sort_by({index})", header, show=False)
          for index, (header, _, _) in enumerate(COLUMNS)),
    ]

    class SnapshotReady(Message):
        """A new snapshot from the follower thread."""

        def __init__(self, snapshot: LiveState) -> None:
            super().__init__()
            self.snapshot = snapshot

    class StreamFailed(Message):
        """The stream cannot be read (not a capture, or one this memprof cannot read)."""

        def __init__(self, message: str) -> None:
            super().__init__()
            self.message = message

    def __init__(self, session: LiveSession, *, on_quit: Callable[[], object] | None = None,
                 refresh_s: float = 0.25, quit_on_signals: bool = False) -> None:
        super().__init__()
        self.session = session
        self.quit_on_signals = quit_on_signals
        self.on_quit = on_quit
        self.refresh_s = refresh_s
        self.snapshot: LiveState | None = None
        self.paused = False
        self.thread_filter: int | None = None
        self.sort_column = BYTES_COLUMN
        self.sort_descending = True
        self.failure: str | None = None
        self.shown_rows: list[LocationRow] = []
        self._columns_for: tuple[int, int, bool] | None = None  # (location width, sort column, descending)
        self._stop_following = threading.Event()
        self._quitting = False
        self._follower = threading.Thread(target=self._follow, name="memprof-live-follower", daemon=True)

    # ---- layout and the follower thread ---------------------------------------------------------

    def compose(self) -> ComposeResult:
        """The status line, the figures, two plots and the table."""
        yield Static(id="status")
        yield Static(id="figures")
        yield Static("heap (tracked bytes live)", classes="plot-label", id="heap-label")
        yield Sparkline([], id="heap")
        yield Static("RSS (resident set size)", classes="plot-label", id="rss-label")
        yield Sparkline([], id="rss")
        yield DataTable(id="locations", cursor_type="row", zebra_stripes=True)
        yield Footer()

    def on_mount(self) -> None:
        """Set up the table and start following the stream."""
        self._set_columns()
        self._render_status()
        if self.quit_on_signals:
            # A closed terminal (SIGHUP) or a kill (SIGTERM) quits as q does: the program is stopped, not orphaned.
            loop = asyncio.get_running_loop()
            for signum in (signal.SIGHUP, signal.SIGTERM):
                loop.add_signal_handler(signum, self.action_quit_view)
        self._follower.start()

    def _follow(self) -> None:
        try:
            while not self._stop_following.is_set():
                alive = self.session.pump(self.refresh_s)
                self.post_message(self.SnapshotReady(self.session.snapshot()))
                if not alive:
                    break
        except MemprofError as error:
            self.post_message(self.StreamFailed(str(error)))
        except OSError as error:  # the capture file became unreadable under us
            self.post_message(self.StreamFailed(f"cannot read {self.session.source.name}: {error.strerror or error}"))

    def on_live_view_snapshot_ready(self, message: SnapshotReady) -> None:
        """Show a new snapshot, unless paused."""
        self.snapshot = message.snapshot
        if not self.paused:
            self._render_all()

    def on_live_view_stream_failed(self, message: StreamFailed) -> None:
        """Say why the stream cannot be shown."""
        self.failure = message.message
        self._render_status()

    # ---- actions --------------------------------------------------------------------------------

    def action_quit_view(self) -> None:
        """Quit: stop following, stop the program if we own it, then exit."""
        if self._quitting:
            return
        self._quitting = True
        self._render_status()
        threading.Thread(target=self._close_then_exit, name="memprof-live-close", daemon=True).start()

    async def action_quit(self) -> None:
        """Ctrl+Q quits the same way as q (the program is stopped, not orphaned)."""
        self.action_quit_view()

    def _close_then_exit(self) -> None:
        self._stop_following.set()
        if self._follower.is_alive():
            self._follower.join(10)
        try:
            if self.on_quit is not None:
                self.on_quit()
        finally:
            self.session.close()
            self.call_from_thread(self.exit)

    def action_pause(self) -> None:
        """Freeze the display (the stream is still read, so resuming shows the present)."""
        self.paused = not self.paused
        self._render_all()

    def action_next_thread(self) -> None:
        """Show one thread after another, then all again."""
        threads = [thread.thread_id for thread in self.snapshot.threads] if self.snapshot else []
        if self.thread_filter is None or self.thread_filter not in threads:
            self.thread_filter = threads[0] if threads else None
        else:
            index = threads.index(self.thread_filter) + 1
            self.thread_filter = threads[index] if index < len(threads) else None
        self._render_all()

    def action_sort_by(self, column: int) -> None:
        """Sort by ``column``; choosing the current column again reverses the order."""
        if column == self.sort_column:
            self.sort_descending = not self.sort_descending
        else:
            self.sort_column = column
            self.sort_descending = COLUMNS[column][2]
        self._render_all()

    def action_next_sort(self) -> None:
        """Sort by the next column."""
        self.action_sort_by((self.sort_column + 1) % len(COLUMNS))

    def action_reverse_sort(self) -> None:
        """Reverse the order."""
        self.action_sort_by(self.sort_column)

    def on_data_table_header_selected(self, event: DataTable.HeaderSelected) -> None:
        """A click on a column header sorts by that column."""
        self.action_sort_by(event.column_index)

    # ---- rendering ------------------------------------------------------------------------------

    def _render_all(self) -> None:
        self._render_status()
        snapshot = self.snapshot
        if snapshot is None:
            return
        self.query_one("#figures", Static).update(Text(
            f"heap now {format_size(snapshot.heap_bytes)}  ·  peak {format_size(snapshot.peak_bytes)}  ·  "
            f"RSS {format_size(snapshot.rss_bytes)}  ·  {snapshot.elapsed_s:.1f} s  ·  "
            f"{len(snapshot.rows)} locations hold memory"
        ))
        self.query_one("#heap", Sparkline).data = list(snapshot.heap_series)
        self.query_one("#rss", Sparkline).data = list(snapshot.rss_series)
        self._render_table(snapshot)

    def _render_status(self) -> None:
        snapshot = self.snapshot
        status = Text()
        if snapshot is None or not snapshot.started:
            program = clean(snapshot.program) + "  " if snapshot and snapshot.program else ""
            status.append(f"{program}waiting for {clean(self.session.source.name)}")
        else:
            status.append(clean(snapshot.program or "?"), style="bold")
            status.append(f"  pid {snapshot.pid}  ")
            status.append(snapshot.state, style="green" if not snapshot.ended else "yellow")
        if self.failure:
            status.append(f"\n{clean(self.failure, 500)}", style="bold red")
        elif snapshot is not None and snapshot.problem:
            status.append(f"\n{clean(snapshot.problem, 500)}", style="red")
        if self.paused:
            status.append("  PAUSED", style="bold reverse")
        if self._quitting:
            status.append("  stopping…", style="bold")
        header, _, _ = COLUMNS[self.sort_column]
        status.append(f"\nsorted by {header.lower()} {'↓' if self.sort_descending else '↑'}  ·  thread: ")
        status.append(self._thread_filter_label())
        if snapshot is not None and snapshot.log_path:
            status.append(f"  ·  program output: {snapshot.log_path}")
        self.query_one("#status", Static).update(status)

    def _thread_filter_label(self) -> str:
        if self.thread_filter is None:
            return "all"
        names = {thread.thread_id: thread.name for thread in self.snapshot.threads} if self.snapshot else {}
        return thread_label(self.thread_filter, names.get(self.thread_filter, ""))

    def _location_width(self) -> int:
        # Each column has one cell of padding either side; keep room for the scroll bar and the borders.
        fixed = FUNCTION_WIDTH + THREAD_WIDTH + 2 * NUMBER_WIDTH + 2 * len(COLUMNS) + 8
        return max(MIN_LOCATION_WIDTH, self.size.width - fixed)

    def _set_columns(self) -> bool:
        """(Re)create the columns when the width or the sort changed; True if it did."""
        wanted = (self._location_width(), self.sort_column, self.sort_descending)
        if wanted == self._columns_for:
            return False
        self._columns_for = wanted
        table = self.query_one("#locations", DataTable)
        table.clear(columns=True)
        widths = (FUNCTION_WIDTH, wanted[0], THREAD_WIDTH, NUMBER_WIDTH, NUMBER_WIDTH)
        for index, ((header, _, _), width) in enumerate(zip(COLUMNS, widths)):
            arrow = (" \u2193" if self.sort_descending else " \u2191") if index == self.sort_column else ""
            label = Text(header + arrow, justify="right" if index >= BYTES_COLUMN else "left")
            table.add_column(label, width=width, key=header.lower())
        return True

    def on_resize(self) -> None:
        """Give the location column the width the terminal has."""
        if self.snapshot is not None and self._columns_for is not None:
            self._render_table(self.snapshot)

    def _render_table(self, snapshot: LiveState) -> None:
        rows = [row for row in snapshot.rows if self.thread_filter is None or row.thread_id == self.thread_filter]
        _, key, _ = COLUMNS[self.sort_column]
        rows.sort(key=key, reverse=self.sort_descending)
        rows = rows[:MAX_ROWS]
        table = self.query_one("#locations", DataTable)
        selected = self.shown_rows[table.cursor_row] if 0 <= table.cursor_row < len(self.shown_rows) else None
        if not self._set_columns():
            table.clear()
        location_width = self._columns_for[0] if self._columns_for else MIN_LOCATION_WIDTH
        for row in rows:
            # Text, not str: a str cell is read as markup, and these strings come from the program.
            table.add_row(
                Text(clip_right(clean(row.function), FUNCTION_WIDTH)),
                Text(clip_left(clean(row.location), location_width)),
                Text(clip_right(thread_label(row.thread_id, row.thread_name), THREAD_WIDTH)),
                Text(format_size(row.bytes), justify="right"),
                Text(str(row.count), justify="right"),
            )
        self.shown_rows = rows
        if selected is not None:
            for index, row in enumerate(rows):
                if (row.function, row.file, row.line, row.thread_id) == (
                        selected.function, selected.file, selected.line, selected.thread_id):
                    table.move_cursor(row=index, animate=False)
                    break

    def table_rows(self) -> list[tuple[str, ...]]:
        """The table as displayed, one tuple of cell texts per row (for tests and debugging)."""
        table = self.query_one("#locations", DataTable)
        return [tuple(str(cell) for cell in table.get_row_at(index)) for index in range(table.row_count)]
