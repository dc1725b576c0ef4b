"""``memprof sys --browser``: the servers of ``[serverlist]`` and those announced by zeroconf, with their status.

In a terminal it is interactive, as Glances's browser is: arrows choose a server, Enter opens its
full-screen view, q in that view comes back to the list, q in the list quits. Into a pipe it prints the
list once. A server is ONLINE (with its cpu, mem and load), PROTECTED (it wants a password) or OFFLINE.
"""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor
from typing import Any, ClassVar

from ..errors import UsageError
from .config import ServerEntry, SysConfig, config_paths, serverlist
from .fetch import SourceUnavailable
from .source import RemoteSource, basic_auth_header


def probe(server: ServerEntry, authorization: str | None, timeout: float = 2.0) -> dict[str, Any]:
    """One server's status: ONLINE with a few figures, PROTECTED when it wants a password, else OFFLINE."""
    source = RemoteSource(server.name, server.port, authorization, timeout)
    row: dict[str, Any] = {"alias": server.alias, "address": source.description, "status": "OFFLINE",
                           "detail": "", "source": source}
    try:
        stats = source.sample()
    except SourceUnavailable as error:
        row["status"] = "PROTECTED" if error.status == 401 else "OFFLINE"
        row["detail"] = str(error)
        return row
    cpu, mem, load = (stats.get(name) if isinstance(stats.get(name), dict) else {} for name in ("cpu", "mem", "load"))
    row["status"] = "ONLINE"
    row["detail"] = f"cpu {cpu.get('total')}%  mem {mem.get('percent')}%  load {load.get('min1')}"
    return row


def servers(config: SysConfig, bind: str) -> tuple[list[ServerEntry], str]:
    """The configured servers then the announced ones (not twice), and a note when discovery could not run."""
    listed = serverlist(config)
    note = ""
    try:
        from .discovery import discover

        found = discover(bind)
    except UsageError as error:  # zeroconf not installed
        found, note = [], f"no discovery: {error}"
    except OSError as error:  # no interface with that address, multicast refused...
        found, note = [], f"no discovery on {bind}: {error.strerror or error}"
    known = {(entry.name, entry.port) for entry in listed}
    for announced in found:
        if (announced.address, announced.port) not in known:
            listed.append(ServerEntry(announced.address, announced.port, f"{announced.name} (announced)"))
            known.add((announced.address, announced.port))
    return listed, note


def probe_all(entries: list[ServerEntry], authorization: str | None) -> list[dict[str, Any]]:
    """Every server's status, probed in parallel."""
    with ThreadPoolExecutor(max_workers=min(8, len(entries))) as pool:
        return list(pool.map(lambda server: probe(server, authorization), entries))


def _print(rows: list[dict[str, Any]], title: str) -> None:
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    from .printers import visible

    table = Table(title=title)
    for column in ("name", "address", "status", ""):
        table.add_column(column)
    colour = {"ONLINE": "green", "PROTECTED": "yellow", "OFFLINE": "red"}
    for row in rows:
        # Names and messages come from the config file and the network: shown as text, never as markup.
        table.add_row(escape(visible(row["alias"])), escape(visible(row["address"])),
                      f"[{colour[row['status']]}]{row['status']}[/]", escape(visible(row["detail"])))
    Console(soft_wrap=True).print(table)


def _choose(entries: list[ServerEntry], authorization: str | None, title: str) -> ServerEntry | None:
    """The interactive list; returns the server chosen with Enter, or None for q."""
    from rich.text import Text
    from textual.app import App, ComposeResult
    from textual.binding import Binding, BindingType
    from textual.widgets import DataTable, Static

    from .printers import visible

    class BrowserApp(App):
        """Glances's server browser: choose a server, open it."""

        TITLE = "memprof sys servers"
        CSS = "#title { height: auto; padding: 0 1; background: $boost; } #servers { height: 1fr; }"
        BINDINGS: ClassVar[list[BindingType]] = [Binding("q", "quit_browser", "quit"),
                                                 Binding("escape", "quit_browser", "quit", show=False)]

        def __init__(self) -> None:
            super().__init__()
            self.chosen: ServerEntry | None = None
            self.rows: list[dict[str, Any]] = []

        def compose(self) -> ComposeResult:
            yield Static(Text(f"{visible(title)}\n\u2191\u2193 choose, Enter opens, q quits"), id="title")
            yield DataTable(id="servers", cursor_type="row")

        def on_mount(self) -> None:
            table = self.query_one("#servers", DataTable)
            for column in ("name", "address", "status", "cpu / mem / load"):
                table.add_column(column)
            table.focus()
            self.run_worker(self._probe, thread=True)
            self.set_interval(3.0, lambda: self.run_worker(self._probe, thread=True))

        def _probe(self) -> None:
            rows = probe_all(entries, authorization)
            self.call_from_thread(self._show, rows)

        def _show(self, rows: list[dict[str, Any]]) -> None:
            self.rows = rows
            table = self.query_one("#servers", DataTable)
            cursor = table.cursor_row
            table.clear()
            colour = {"ONLINE": "green", "PROTECTED": "yellow", "OFFLINE": "red"}
            for row in rows:
                table.add_row(Text(visible(row["alias"])), Text(visible(row["address"])),
                              Text(row["status"], style=colour[row["status"]]), Text(visible(row["detail"])))
            if 0 <= cursor < len(rows):
                table.move_cursor(row=cursor, animate=False)

        def on_data_table_row_selected(self, event: DataTable.RowSelected) -> None:
            self.chosen = entries[event.cursor_row]
            self.exit()

        def action_quit_browser(self) -> None:
            self.exit()

    app = BrowserApp()
    app.run()
    return app.chosen


def show(config: SysConfig, username: str | None, password: str | None, bind: str = "127.0.0.1",
         interval: float = 2.0, interactive: bool | None = None) -> int:
    """List the servers (interactive in a terminal); no server at all is a usage error."""
    entries, note = servers(config, bind)
    if not entries:
        if config.path is None:
            places = " or ".join(str(place) for place in config_paths())
            raise UsageError(f"--browser: no config with a [serverlist] in {places} and none announced on {bind}"
                             f"{' (' + note + ')' if note else ''}; give one with -C FILE")
        raise UsageError(f"--browser: {config.path} has no [serverlist] entries (server_1_name=HOST, "
                         f"server_1_port=PORT) and none announced on {bind}")
    authorization = basic_auth_header(username, password) if username and password else None
    title = f"memprof sys servers ({config.path or 'no config file'}{'; ' + note if note else ''})"
    if interactive is None:
        interactive = sys.stdin.isatty() and sys.stdout.isatty()
    if not interactive:
        _print(probe_all(entries, authorization), title)
        return 0
    from . import terminal

    while True:
        chosen = _choose(entries, authorization, title)
        if chosen is None:
            return 0
        # As in Glances: the server's view, and q there comes back to the list.
        source = RemoteSource(chosen.name, chosen.port, authorization)
        from .thresholds import Limits

        view = terminal.SysView(source, interval, None, limits=Limits(config), can_kill=False)
        view.run()
