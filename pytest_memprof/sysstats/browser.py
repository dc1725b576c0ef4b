"""``memprof sys --browser``: the servers named in memprof.conf's ``[serverlist]``, each with its status."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from typing import Any

from ..errors import UsageError
from .config import ServerEntry, config_paths, find_config, read_serverlist
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


def show(config: str | None, username: str | None, password: str | None) -> int:
    """Print the server list with each server's status; no configured server is a usage error."""
    path = find_config(config)
    if path is None:
        places = " or ".join(str(place) for place in config_paths())
        raise UsageError(f"--browser: no memprof.conf with a [serverlist] in {places}; give one with -C FILE")
    servers = read_serverlist(path)
    if not servers:
        raise UsageError(f"--browser: {path} has no [serverlist] entries (server_1_name=HOST, server_1_port=PORT)")
    authorization = basic_auth_header(username, password) if username and password else None
    with ThreadPoolExecutor(max_workers=min(8, len(servers))) as pool:
        rows = list(pool.map(lambda server: probe(server, authorization), servers))
    from rich.console import Console
    from rich.markup import escape
    from rich.table import Table

    table = Table(title=f"memprof sys servers ({path})")
    for column in ("name", "address", "status", ""):
        table.add_column(column)
    colour = {"ONLINE": "green", "PROTECTED": "yellow", "OFFLINE": "red"}
    for row in rows:
        # Names and messages come from the config file and the network: shown as text, never as markup.
        table.add_row(escape(row["alias"]), escape(row["address"]),
                      f"[{colour[row['status']]}]{row['status']}[/]", escape(row["detail"]))
    Console(soft_wrap=True).print(table)
    return 0
