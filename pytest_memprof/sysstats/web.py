"""``memprof sys -w`` / ``-s``: the REST API (``/api/4/...``) and, with ``-w``, a self-refreshing page at ``/``.

Built on the standard library's ThreadingHTTPServer: the API is a handful of GET routes answering JSON
from one shared snapshot, which needs no framework and adds no dependency to a pytest plugin. A sampler
thread refreshes the snapshot every interval, so rates are measured over the interval however often
clients ask, and many clients cost one collection.
"""

from __future__ import annotations

import errno
import hashlib
import hmac
import ipaddress
import json
import secrets
import signal
import socket
import sys
import threading
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from .. import __version__
from ..errors import UsageError
from .plugins import PLUGINS
from .printers import SCHEMA_KEY, SCHEMA_VERSION
from .registry import DICT, LIST, describe
from .source import LocalSource, basic_auth_header

API = "/api/4"
_STATIC = Path(__file__).with_name("static")
# The page's own files; nothing else on disk is ever served.
_PAGE_FILES = {"/": ("index.html", "text/html"), "/static/sys.js": ("sys.js", "text/javascript"),
               "/static/sys.css": ("sys.css", "text/css"), "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
               "/favicon.ico": ("favicon.svg", "image/svg+xml")}
_SECURITY_HEADERS = {
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; style-src 'self'; frame-ancestors 'none'",
    "Referrer-Policy": "no-referrer",
}


class Credentials:
    """A user name and password kept only as a salted hash; checks an Authorization header in constant time."""

    def __init__(self, username: str, password: str) -> None:
        self._salt = secrets.token_bytes(16)
        self._digest = self._hash(basic_auth_header(username, password))

    def _hash(self, header: str) -> bytes:
        return hashlib.sha256(self._salt + header.encode("utf-8", "replace")).digest()

    def accepts(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the right user name and password."""
        return bool(header) and hmac.compare_digest(self._hash(header.strip()), self._digest)


class StatsCache:
    """The latest snapshot of every plugin, refreshed by a daemon thread every ``interval`` seconds."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self.source = LocalSource()
        self._lock = threading.Lock()
        self._snapshot = self.source.sample()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="memprof-sys-sampler", daemon=True)
        self.refreshes = 1

    def start(self) -> None:
        """Start refreshing in the background."""
        self._thread.start()

    def stop(self) -> None:
        """Stop refreshing and wait for the thread."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            snapshot = self.source.sample()
            with self._lock:
                self._snapshot = snapshot
                self.refreshes += 1

    def snapshot(self) -> dict[str, Any]:
        """The latest snapshot (shared: do not modify)."""
        with self._lock:
            return self._snapshot


def route(path: str, snapshot: dict[str, Any], interval: float,
          errors: dict[str, str] | None = None) -> tuple[int, Any]:
    """(HTTP status, JSON-ready body) for an API path; no I/O, so it is testable on its own."""
    parts = [unquote(part) for part in path[len(API):].strip("/").split("/") if part]
    if not parts:
        return HTTPStatus.OK, {"api": 4, "routes": ["status", "pluginslist", "all", "fields", "<plugin>",
                                                    "<plugin>/<field>", "<plugin>/<field>/<value>"]}
    head, rest = parts[0], parts[1:]
    if head == "status" and not rest:
        return HTTPStatus.OK, {"status": "ok", "version": __version__, SCHEMA_KEY: SCHEMA_VERSION,
                               "refresh_seconds": interval, "plugin_errors": dict(errors or {})}
    if head == "pluginslist" and not rest:
        return HTTPStatus.OK, list(PLUGINS)
    if head == "all" and not rest:
        return HTTPStatus.OK, snapshot
    if head == "fields" and not rest:
        return HTTPStatus.OK, {name: describe(plugin) for name, plugin in PLUGINS.items()}
    plugin = PLUGINS.get(head)
    if plugin is None:
        return HTTPStatus.NOT_FOUND, {"error": f"unknown plugin {head!r}", "plugins": list(PLUGINS)}
    value = snapshot.get(head)
    if not rest:
        return HTTPStatus.OK, value
    field = rest[0]
    if plugin.field(field) is None:
        return HTTPStatus.NOT_FOUND, {"error": f"unknown field {head}.{field}", "fields": plugin.field_names()}
    if plugin.shape == DICT and len(rest) == 1:
        return HTTPStatus.OK, {field: (value or {}).get(field)}
    if plugin.shape == LIST and len(rest) == 1:
        return HTTPStatus.OK, {field: [entry.get(field) for entry in value or []]}
    if plugin.shape == LIST and len(rest) == 2:
        # Glances' item route: the entries whose field has this value (/api/4/network/interface_name/eth0).
        return HTTPStatus.OK, {rest[1]: [entry for entry in value or [] if str(entry.get(field)) == rest[1]]}
    return HTTPStatus.NOT_FOUND, {"error": f"no such route: {path}"}


class _Handler(BaseHTTPRequestHandler):
    server: _StatsServer
    server_version = f"memprof-sys/{__version__}"
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: Any) -> None:  # the base class names it format
        pass  # one line per request would drown the terminal; errors reach the client as JSON

    def _send(self, status: int, body: bytes, content_type: str, extra: dict[str, str] | None = None) -> None:
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        for name, value in {**_SECURITY_HEADERS, **(extra or {})}.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def _send_json(self, status: int, value: Any, extra: dict[str, str] | None = None) -> None:
        self._send(status, json.dumps(value, default=str).encode("utf-8"), "application/json", extra)

    def _authorized(self) -> bool:
        """True if no password is set or the request carries it; else answers 401 and returns False."""
        credentials = self.server.credentials
        if credentials is None or credentials.accepts(self.headers.get("Authorization")):
            return True
        self._send_json(HTTPStatus.UNAUTHORIZED, {"error": "authentication required"},
                        {"WWW-Authenticate": 'Basic realm="memprof sys", charset="UTF-8"'})
        return False

    def _not_allowed(self) -> None:
        if not self._authorized():
            return
        self._send_json(HTTPStatus.METHOD_NOT_ALLOWED, {"error": "the API is read-only: use GET"},
                        {"Allow": "GET, HEAD"})

    do_POST = do_PUT = do_PATCH = do_DELETE = _not_allowed

    def do_HEAD(self) -> None:
        self.do_GET()

    def do_GET(self) -> None:
        if not self._authorized():
            return
        path = urlsplit(self.path).path
        if path == API or path.startswith(API + "/"):
            cache = self.server.cache
            status, body = route(path, cache.snapshot(), cache.interval, cache.source.errors)
            self._send_json(status, body)
            return
        page = _PAGE_FILES.get(path) if self.server.page else None
        if page is None:
            self._send_json(HTTPStatus.NOT_FOUND, {"error": f"no such route: {path}", "api": API})
            return
        name, content_type = page
        body = (_STATIC / name).read_bytes()
        if name == "index.html":
            # The refresh interval is the only value the server writes into the page, and it is a number.
            body = body.replace(b"{{interval_ms}}", str(round(self.server.cache.interval * 1000)).encode())
        self._send(HTTPStatus.OK, body, content_type)


class _StatsServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, address: tuple[str, int], cache: StatsCache, page: bool,
                 credentials: Credentials | None) -> None:
        self.cache = cache
        self.page = page
        self.credentials = credentials
        if ":" in address[0]:
            self.address_family = socket.AF_INET6
        super().__init__(address, _Handler)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def make_server(bind: str, port: int, interval: float, *, page: bool, username: str = "memprof",
                password: str | None = None) -> _StatsServer:
    """A bound server (not yet serving); a port in use or a bad address is a one-line usage error."""
    cache = StatsCache(interval)
    credentials = Credentials(username, password) if password else None
    try:
        return _StatsServer((bind, port), cache, page, credentials)
    except OSError as error:
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {bind} is in use: pick another with --port") from None
        if error.errno in (errno.EACCES, errno.EPERM):
            raise UsageError(f"port {port} on {bind}: permission denied (ports below 1024 need root)") from None
        raise UsageError(f"cannot listen on {bind}:{port}: {error.strerror or error}") from None


def serve(bind: str, port: int, interval: float, *, page: bool, username: str = "memprof",
          password: str | None = None, stop_after: int | None = None) -> int:
    """Serve until Ctrl-C or SIGTERM (or, with ``stop_after``, that many refreshes); return the exit code."""
    server = make_server(bind, port, interval, page=page, username=username, password=password)
    host, bound_port = server.server_address[:2]
    shown = f"[{host}]" if ":" in host else host
    what = "web page and API" if page else "API"
    auth = ", password required" if password else ""
    print(f"memprof: sys {what} on http://{shown}:{bound_port}/{'' if page else 'api/4/'} "
          f"(every {interval:g} s{auth}; Ctrl-C stops)", flush=True)
    if not password and not _is_loopback(host):
        print(f"memprof: warning: {shown} is reachable from other machines and no --password is set: "
              "anyone who can reach it sees this machine's processes and command lines", file=sys.stderr, flush=True)
    stop = threading.Event()

    def on_signal(signum: int, frame: Any) -> None:
        stop.set()

    previous = signal.signal(signal.SIGTERM, on_signal) if threading.current_thread() is threading.main_thread() \
        else None
    server.cache.start()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.2}, daemon=True)
    thread.start()
    try:
        while not stop.wait(0.2):
            if stop_after is not None and server.cache.refreshes >= stop_after:
                break
    except KeyboardInterrupt:
        pass
    finally:
        server.shutdown()
        server.server_close()
        server.cache.stop()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)
    sys.stdout.flush()
    return 0


__all__ = ["Credentials", "StatsCache", "make_server", "route", "serve"]
