"""``memprof sys``: system statistics in the manner of Glances (printers, terminal view, web, client/server).

The module is called ``system`` rather than ``sys``: a submodule named ``sys`` would become the attribute
``sys`` of the ``cli`` package and hide the standard module that the dispatcher there uses.
"""

from __future__ import annotations

import argparse
import getpass
import math
import os
import sys
from pathlib import Path

from ..errors import UsageError

PASSWORD_VARIABLE = "MEMPROF_SYS_PASSWORD"
DEFAULT_USERNAME = "memprof"


def register(subparsers: argparse._SubParsersAction) -> None:
    """Add the ``sys`` subcommand."""
    import textwrap

    from ..sysstats.plugins import PLUGINS
    from ..sysstats.source import DEFAULT_SERVER_PORT, DEFAULT_WEB_PORT

    plugin_names = "\n".join(textwrap.wrap(f"ITEMS are plugins ({', '.join(PLUGINS)})", 100))
    parser = subparsers.add_parser(
        "sys", help="system statistics (cpu, memory, swap, load, processes...), Glances-style",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Show system statistics. Without an output option: a full-screen terminal view (q quits).\n"
        f"{plugin_names}\nor dotted fields (cpu.user, mem.used, network.eth0.bytes_recv).",
        epilog="examples:\n"
        "  memprof sys --stdout cpu.user,mem.used,load\n"
        "  memprof sys --stdout-csv now,mem.used -t 1 > mem.csv\n"
        "  memprof sys -w                      (page and API on http://127.0.0.1:61208/)\n"
        "  memprof sys -s                      (then, elsewhere: memprof sys -c HOST)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--stdout", metavar="ITEMS",
                        help="print 'item: value' lines at each refresh (comma-separated plugins or fields)")
    output.add_argument("--stdout-csv", metavar="ITEMS",
                        help="print CSV: a header, then a row per refresh; columns fixed by the header, N/A "
                        "for a value missing later")
    output.add_argument("--stdout-json", metavar="ITEMS",
                        help="print one JSON object per refresh and line, with a schema_version key")
    mode = parser.add_mutually_exclusive_group()
    mode.add_argument("-w", "--webserver", action="store_true",
                      help=f"serve the REST API (/api/4/...) and a self-refreshing page at / (port {DEFAULT_WEB_PORT})")
    mode.add_argument("-s", "--server", action="store_true",
                      help=f"serve the REST API only, for 'memprof sys -c' clients (port {DEFAULT_SERVER_PORT})")
    mode.add_argument("-c", "--client", metavar="HOST[:PORT]",
                      help=f"show the stats of a 'memprof sys -s' or '-w' server (port {DEFAULT_SERVER_PORT} "
                      "unless given); retries while it is away")
    mode.add_argument("--browser", action="store_true",
                      help="list the servers of [serverlist] in memprof.conf with their status")
    parser.add_argument("--export", action="append", metavar="NAMES",
                        help="export every refresh: csv (with --export-csv-file), json (--export-json-file), "
                        "prometheus (/metrics on the server, or on [prometheus] host:port, default 127.0.0.1:9091); "
                        "comma-separated or repeated")
    parser.add_argument("--export-csv-file", metavar="FILE", help="file for --export csv")
    parser.add_argument("--export-json-file", metavar="FILE", help="file for --export json (one object per line)")
    parser.add_argument("-q", "--quiet", action="store_true",
                        help="no view and no printing: only the exports, every -t (Glances's --quiet)")
    parser.add_argument("-t", "--time", default="2", metavar="SECONDS",
                        help="refresh interval in seconds (default 2)")
    parser.add_argument("--stop-after", default=None, metavar="N",
                        help="exit after N refreshes (a client that never got data then exits 1)")
    parser.add_argument("--bind", default="127.0.0.1", metavar="ADDR",
                        help="address the server listens on (default 127.0.0.1: this machine only); with --browser, "
                        "where zeroconf looks for announced servers (0.0.0.0: every network)")
    parser.add_argument("--announce", action="store_true",
                        help="with -s or -w: announce the server by zeroconf as Glances's are (_glances._tcp), "
                        "on the network of --bind only")
    parser.add_argument("-p", "--port", default=None, metavar="PORT",
                        help=f"port to serve on (default {DEFAULT_WEB_PORT} with -w, {DEFAULT_SERVER_PORT} with -s; "
                        "0 picks a free one), or with -c the server's port")
    parser.add_argument("--password", action="store_true",
                        help=f"require (server) or send (client) a password: taken from ${PASSWORD_VARIABLE} "
                        "when set, else asked on the terminal")
    parser.add_argument("--password-file", metavar="FILE",
                        help="like --password, with the password on the first line of FILE")
    parser.add_argument("--username", default=DEFAULT_USERNAME,
                        help=f"user name for the password (default {DEFAULT_USERNAME})")
    parser.add_argument("-C", "--config", metavar="FILE",
                        help="config file in glances.conf's layout: thresholds, hidden interfaces and disks, "
                        "[folders], [ports], [amp_*], [serverlist] (default: ~/.config/memprof/memprof.conf, "
                        "/etc/memprof/memprof.conf, then Glances's glances.conf in the same places)")
    parser.set_defaults(func=run)


def _interval(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise UsageError(f"-t/--time: expected a number of seconds, got {text!r}") from None
    if not math.isfinite(value) or value <= 0:
        raise UsageError(f"-t/--time: the interval must be more than 0 seconds, got {text!r}")
    return value


def _stop_after(text: str | None) -> int | None:
    if text is None:
        return None
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--stop-after: expected a whole number of refreshes, got {text!r}") from None
    if value < 1:
        raise UsageError(f"--stop-after: expected 1 or more refreshes, got {value}")
    return value


def _port(text: str | None, default: int) -> int:
    if text is None:
        return default
    try:
        value = int(text)
    except ValueError:
        raise UsageError(f"--port: expected a number, got {text!r}") from None
    if not 0 <= value < 65536:
        raise UsageError(f"--port: expected 0 to 65535, got {value}")
    return value


def _password(args: argparse.Namespace, confirm: bool) -> str | None:
    """The password asked for, from the file, the environment variable or the terminal; None if not asked."""
    if args.password_file:
        try:
            lines = Path(args.password_file).read_text(encoding="utf-8").splitlines()
        except OSError as error:
            raise UsageError(f"--password-file {args.password_file}: {error.strerror or error}") from None
        if not lines or not lines[0]:
            raise UsageError(f"--password-file {args.password_file}: the first line is empty")
        return lines[0]
    if not args.password:
        return None
    if os.environ.get(PASSWORD_VARIABLE):
        return os.environ[PASSWORD_VARIABLE]
    if not sys.stdin.isatty():
        raise UsageError(f"--password: no terminal to ask on; set {PASSWORD_VARIABLE} or use --password-file FILE")
    password = getpass.getpass("memprof sys password: ")
    if not password:
        raise UsageError("--password: the password is empty")
    if confirm and getpass.getpass("again: ") != password:
        raise UsageError("--password: the two passwords differ")
    return password


def run(args: argparse.Namespace) -> int:
    """Run ``memprof sys``."""
    from ..sysstats import selection
    from ..sysstats import source as sources

    interval = _interval(args.time)
    stop_after = _stop_after(args.stop_after)
    printer_name = next((name for name in ("stdout", "stdout_csv", "stdout_json")
                         if getattr(args, name) is not None), None)
    if (args.webserver or args.server or args.browser) and printer_name:
        raise UsageError(f"--{printer_name.replace('_', '-')} prints stats here; it does not go with "
                         f"{'-w' if args.webserver else '-s' if args.server else '--browser'}")
    if args.port is not None and not (args.webserver or args.server or args.client):
        raise UsageError("--port goes with -w, -s or -c")
    if args.announce and not (args.webserver or args.server):
        raise UsageError("--announce goes with -s or -w")
    # Checked before any password prompt or connection: a typo should cost nothing.
    selectors = selection.parse_list(getattr(args, printer_name)) if printer_name else []
    from ..sysstats.config import SysConfig

    config = SysConfig.load(args.config)
    from ..sysstats import exports as export_module

    export_names = export_module.parse_exports(args.export, args.export_csv_file, args.export_json_file)
    if args.quiet and (printer_name or args.browser):
        raise UsageError("-q/--quiet shows nothing: it does not go with --stdout* or --browser")
    if args.quiet and not export_names:
        raise UsageError("-q/--quiet shows nothing: give it an --export")
    writers = [export_module.FileExport(name, args.export_csv_file if name == "csv" else args.export_json_file)
               for name in export_names if name in ("csv", "json")]
    if args.webserver or args.server:
        from ..sysstats import web

        default = sources.DEFAULT_WEB_PORT if args.webserver else sources.DEFAULT_SERVER_PORT
        shown_args = {name: value for name, value in vars(args).items()
                      if name not in ("func", "password", "password_file") and not callable(value)}
        return web.serve(args.bind, _port(args.port, default), interval, page=args.webserver,
                         username=args.username, password=_password(args, confirm=True), stop_after=stop_after,
                         args=shown_args, config=config, exports=writers, metrics="prometheus" in export_names,
                         announce=args.announce)
    if args.browser:
        from ..sysstats import browser

        password = _password(args, confirm=False)
        return browser.show(config, args.username if password else None, password, bind=args.bind,
                            interval=interval)
    if args.client:
        host, port = sources.parse_address(args.client, sources.DEFAULT_SERVER_PORT)
        if args.port is not None:
            port = _port(args.port, port)
        password = _password(args, confirm=False)
        authorization = sources.basic_auth_header(args.username, password) if password else None
        source = sources.RemoteSource(host, port, authorization)
    else:
        source = None
    from ..sysstats import terminal

    shown = selection.plugins_needed(selectors) if printer_name else [] if args.quiet else list(terminal.PLUGINS_SHOWN)
    if export_names:
        shown = list(dict.fromkeys([*shown, *export_module.exported_plugins()]))
    source = source or sources.LocalSource(shown, config)
    latest: dict = {}

    def feed(snapshot: dict) -> None:
        latest.clear()
        latest.update(snapshot)
        for writer in writers:
            writer(snapshot)

    if "prometheus" in export_names:
        metrics = export_module.start_prometheus_server(lambda: dict(latest), config)
        host, port = metrics.bound
        print(f"memprof: Prometheus metrics on http://{host}:{port}/metrics", file=sys.stderr, flush=True)
    try:
        if printer_name or args.quiet:
            return _print(printer_name, selectors, source, interval, stop_after, feed)
        return terminal.show(source, interval, stop_after, on_snapshot=feed, config=config)
    finally:
        for writer in writers:
            writer.close()


def _print(printer_name: str | None, selectors: list, source, interval: float, stop_after: int | None,
           feed=None) -> int:
    from ..sysstats.printers import PRINTERS
    from ..sysstats.runner import Refreshes

    printer = PRINTERS[printer_name](selectors, sys.stdout) if printer_name else None
    try:
        for snapshot in Refreshes(source, interval, stop_after):
            if feed is not None:
                feed(snapshot)
            if printer is not None:
                printer.refresh(snapshot)
    except KeyboardInterrupt:
        # Without --stop-after, Ctrl-C is how a printer is meant to stop: every line written is whole.
        pass
    return 0
