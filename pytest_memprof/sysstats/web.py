"""``memprof sys -w`` / ``-s``: one server, uvicorn running a Starlette app.

``-w`` serves the page at ``/`` and the REST API (``/api/4/...``); ``-s`` serves the API and Glances's
XML-RPC protocol at ``/RPC2``, so ``glances -c`` reads us. Both are the same app on the same ASGI server
(as Glances's own web server is), which gives what the hand-written server lacked: idle and slow
connections closed after a time-out, request bodies consumed by the HTTP parser, malformed requests
answered with a proper 400, no traceback when a client goes away, and no thread per connection.

Kept from before, and better than Glances: 127.0.0.1 by default, no CORS header at all, a CSP and
``nosniff`` on every answer, and the password checked before anything else is looked at.
"""

from __future__ import annotations

import asyncio
import errno
import hashlib
import hmac
import ipaddress
import json
import logging
import secrets
import signal
import socket
import sys
import threading
from pathlib import Path
from typing import Any

from ..errors import UsageError
from .api import API, Context, openapi, route
from .store import StatsStore

_STATIC = Path(__file__).with_name("static")
# The page's own files; nothing else on disk is ever served.
_PAGE_FILES = {"/": ("index.html", "text/html"), "/static/sys.js": ("sys.js", "text/javascript"),
               "/static/sys.css": ("sys.css", "text/css"), "/static/favicon.svg": ("favicon.svg", "image/svg+xml"),
               "/favicon.ico": ("favicon.svg", "image/svg+xml")}
_SECURITY_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"cache-control", b"no-store"),
    (b"content-security-policy",
     b"default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; frame-ancestors 'none'"),
    (b"referrer-policy", b"no-referrer"),
]
# A connection that has not sent a whole request (or the next one) within this many seconds is closed.
IDLE_TIMEOUT = 5.0
# An XML-RPC call is a method name and a plugin name: anything near this is not one.
MAX_RPC_BODY = 64 << 10
# The Glances major version our XML-RPC speaks: its client refuses a server of another major version.
GLANCES_PROTOCOL_VERSION = "4.0.0"


class Credentials:
    """A user name and password kept only as a salted hash; checks an Authorization header in constant time."""

    def __init__(self, username: str, password: str) -> None:
        from .source import basic_auth_header

        self._salt = secrets.token_bytes(16)
        self._digest = self._hash(basic_auth_header(username, password))

    def _hash(self, header: str) -> bytes:
        return hashlib.sha256(self._salt + header.encode("utf-8", "replace")).digest()

    def accepts(self, header: str | None) -> bool:
        """Whether an ``Authorization`` header carries the right user name and password."""
        return bool(header) and hmac.compare_digest(self._hash(header.strip()), self._digest)


def _json_bytes(value: Any) -> bytes:
    """Compact JSON (bytes): what every API answer is."""
    return json.dumps(value, default=str, separators=(",", ":")).encode("utf-8")


class SysApp:
    """The ASGI application: a Starlette router, behind our check of the password and our security headers."""

    def __init__(self, context: Context, *, page: bool, xmlrpc: bool, credentials: Credentials | None,
                 metrics: Any = None) -> None:
        from starlette.applications import Starlette
        from starlette.routing import Route

        self.context = context
        self.page = page
        self.xmlrpc = xmlrpc
        self.credentials = credentials
        self._openapi = _json_bytes(openapi())
        self._all_cache: tuple[int, bytes] = (-1, b"")
        # One worker thread answers every route that may sample: sampling is serialised by the store anyway,
        # and a pool of threads would each grow its own malloc arena (RSS) for no gain.
        self._executor: Any = None
        routes = [Route("/openapi.json", self._openapi_route), Route(API + "/openapi.json", self._openapi_route),
                  Route(API, self._api), Route(API + "/{rest:path}", self._api)]
        if xmlrpc:
            routes.append(Route("/RPC2", self._rpc, methods=["POST"]))
        if page:
            routes += [Route(path, self._page) for path in _PAGE_FILES]
        if metrics is not None:
            self._metrics_config = metrics
            routes.append(Route("/metrics", self._metrics))
        self.router = Starlette(routes=routes, exception_handlers={404: self._not_found, 405: self._not_allowed})

    async def _in_sampler(self, function: Any, *args: Any) -> Any:
        """Run ``function(*args)`` on the sampler thread, off the event loop."""
        if self._executor is None:
            from concurrent.futures import ThreadPoolExecutor

            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="memprof-sys-sampler")
        return await asyncio.get_running_loop().run_in_executor(self._executor, function, *args)

    @staticmethod
    def _json(status: int, value: Any, headers: dict[str, str] | None = None) -> Any:
        from starlette.responses import Response

        return Response(_json_bytes(value), status, headers, media_type="application/json")

    async def _not_found(self, request: Any, error: Any) -> Any:
        return self._json(404, {"error": f"no such route: {request.url.path[:200]}", "api": API})

    async def _not_allowed(self, request: Any, error: Any) -> Any:
        allowed = "GET, HEAD" + (", POST" if self.xmlrpc else "")
        hint = " (XML-RPC: POST /RPC2)" if self.xmlrpc else ""
        return self._json(405, {"error": f"{request.method} is not served here: the API is read-only, use GET{hint}"},
                          {"Allow": allowed})

    async def _openapi_route(self, request: Any) -> Any:
        from starlette.responses import Response

        return Response(self._openapi, media_type="application/json")

    async def _api(self, request: Any) -> Any:
        from starlette.responses import Response

        # The raw path, so that an entry key with an encoded slash (/fs/used/%2Fhome) stays one part.
        path = request.scope.get("raw_path", b"").decode("latin-1").split("?", 1)[0] or request.url.path
        store = self.context.store
        if path == API + "/all" and store.fresh() and self._all_cache[0] == store.refreshes:
            # The most asked route, while the snapshot is current: its bytes once per refresh, not per request.
            return Response(self._all_cache[1], media_type="application/json")
        try:
            # Sampling reads /proc for every process: off the event loop, so other connections keep moving.
            status, body = await self._in_sampler(route, path, self.context)
        except Exception as error:  # a collector's bug must not look like a dead server to every client
            status, body = 500, {"error": f"internal error: {type(error).__name__}: {str(error)[:200]}"}
        encoded = _json_bytes(body)
        if path == API + "/all" and status == 200:
            self._all_cache = (store.refreshes, encoded)
        return Response(encoded, int(status), media_type="application/json")

    async def _metrics(self, request: Any) -> Any:
        from starlette.responses import Response

        from .exports import prometheus_text

        snapshot = await self._in_sampler(self.context.store.snapshot)
        return Response(prometheus_text(snapshot, self._metrics_config), media_type="text/plain; version=0.0.4")

    async def _page(self, request: Any) -> Any:
        from starlette.responses import Response

        name, content_type = _PAGE_FILES[request.url.path]
        body = (_STATIC / name).read_bytes()
        if name == "index.html":
            # The refresh interval is the only value the server writes into the page, and it is a number.
            body = body.replace(b"{{interval_ms}}", str(round(self.context.store.min_age * 1000)).encode())
        return Response(body, media_type=content_type)

    async def _rpc(self, request: Any) -> Any:
        from starlette.responses import Response

        from . import xmlrpc

        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > MAX_RPC_BODY:
                return self._json(413, {"error": f"an XML-RPC call here is at most {MAX_RPC_BODY} bytes"})
            chunks.append(chunk)
        body = await self._in_sampler(xmlrpc.answer, b"".join(chunks), self.context)
        return Response(body, media_type="text/xml")

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return  # no lifespan or websocket: the server runs with lifespan="off"

        async def send_with_headers(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                message = {**message, "headers": [*message.get("headers", []), *_SECURITY_HEADERS]}
            await send(message)

        if scope.get("http_version") not in ("1.0", "1.1"):
            response = self._json(505, {"error": "HTTP/1.0 and HTTP/1.1 only"}, {"Connection": "close"})
            await response(scope, receive, send_with_headers)
            return
        if self.credentials is not None:
            header = next((value.decode("latin-1") for name, value in scope["headers"] if name == b"authorization"),
                          None)
            if not self.credentials.accepts(header):
                # No password sent: say one is needed; a wrong one: say it was refused. Nothing else is looked at.
                message = "the password was refused" if header else "this server needs a password (HTTP Basic)"
                response = self._json(401, {"error": message},
                                      {"WWW-Authenticate": 'Basic realm="memprof sys", charset="UTF-8"'})
                await response(scope, receive, send_with_headers)
                return
        await self.router(scope, receive, send_with_headers)


def _is_loopback(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def bind_socket(bind: str, port: int) -> socket.socket:
    """A listening socket; a port in use or a bad address is a one-line usage error."""
    try:
        infos = socket.getaddrinfo(bind, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except socket.gaierror:
        raise UsageError(f"cannot listen on {bind}:{port}: not an address of this machine") from None
    family, kind, proto, _, address = infos[0]
    listener = socket.socket(family, kind, proto)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        listener.bind(address)
        listener.listen(128)
    except OSError as error:
        listener.close()
        if error.errno == errno.EADDRINUSE:
            raise UsageError(f"port {port} on {bind} is in use: pick another with --port") from None
        if error.errno in (errno.EACCES, errno.EPERM):
            raise UsageError(f"port {port} on {bind}: permission denied (ports below 1024 need root)") from None
        raise UsageError(f"cannot listen on {bind}:{port}: {error.strerror or error}") from None
    listener.setblocking(False)
    return listener


def _protocol_class() -> type:
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Protocol(H11Protocol):
        """uvicorn's h11 protocol, plus a deadline for a connection that has not sent a whole request.

        uvicorn times out idle keep-alive connections only after a first response: a socket that connects
        and says nothing, or sends its headers a byte at a time, would otherwise stay open for ever.
        """

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self._arm_deadline()

        def on_response_complete(self) -> None:
            super().on_response_complete()
            self._arm_deadline()

        def connection_lost(self, exc: Exception | None) -> None:
            super().connection_lost(exc)
            self._disarm()  # a pending timer would keep the closed connection and its buffers alive

        def _disarm(self) -> None:
            timer = getattr(self, "_deadline", None)
            if timer is not None:
                timer.cancel()
                self._deadline = None

        def _arm_deadline(self) -> None:
            self._disarm()
            self._deadline = self.loop.call_later(self.timeout_keep_alive, self._check_deadline)

        def _check_deadline(self) -> None:
            self._deadline = None
            if self.transport.is_closing():
                return
            if self.cycle is not None and not self.cycle.response_complete:
                return  # a request is being answered: its handler is the one to finish it
            self.transport.close()

    return Protocol


def make_app(store: StatsStore, *, page: bool, xmlrpc: bool, password: str | None, username: str = "memprof",
             config: Any = None, args: dict[str, Any] | None = None, limits: Any = None,
             metrics: bool = False) -> SysApp:
    """The ASGI app over a store (no socket): what the server runs and what in-process tests call."""
    from .config import SysConfig, serverlist
    from .thresholds import Limits

    config = config if config is not None else SysConfig()
    limits = limits if limits is not None else Limits(config)
    servers = [{"name": server.name, "port": server.port, "alias": server.alias} for server in serverlist(config)]
    context = Context(store=store, limits=limits, config=config.as_dict(), args=args or {}, servers=servers)
    credentials = Credentials(username, password) if password else None
    return SysApp(context, page=page, xmlrpc=xmlrpc, credentials=credentials, metrics=config if metrics else None)


def _server_class() -> type:
    import contextlib

    import uvicorn

    class Server(uvicorn.Server):
        """uvicorn's server, stopping on SIGINT/SIGTERM with exit code 0 (uvicorn re-raises the signal after)."""

        @contextlib.contextmanager
        def capture_signals(self):  # type: ignore[override]
            if threading.current_thread() is not threading.main_thread():
                yield
                return
            previous = {number: signal.signal(number, self._stop) for number in (signal.SIGINT, signal.SIGTERM)}
            try:
                yield
            finally:
                for number, handler in previous.items():
                    signal.signal(number, handler)

        def _stop(self, number: int, frame: Any) -> None:
            self.should_exit = True

    return Server


def serve(bind: str, port: int, interval: float, *, page: bool, username: str = "memprof",
          password: str | None = None, stop_after: int | None = None, config: Any = None,
          args: dict[str, Any] | None = None, limits: Any = None, store: StatsStore | None = None,
          exports: list[Any] | None = None, metrics: bool = False, announce: bool = False) -> int:
    """Serve until Ctrl-C or SIGTERM (or, with ``stop_after``, that many intervals); return the exit code."""
    import uvicorn

    listener = bind_socket(bind, port)
    host, bound_port = listener.getsockname()[:2]
    if store is None:
        from .source import LocalSource

        store = StatsStore(interval, source=LocalSource(config=config))
    app = make_app(store, page=page, xmlrpc=not page, password=password, username=username, config=config,
                   args=args, limits=limits, metrics=metrics)
    store.listeners.extend(exports or [])
    shown = f"[{host}]" if ":" in host else host
    what = "web page and API" if page else "API and Glances XML-RPC (/RPC2)"
    auth = ", password required" if password else ""
    print(f"memprof: sys {what} on http://{shown}:{bound_port}/{'' if page else 'api/4/'} "
          f"(samples at most every {interval:g} s, when asked{auth}; Ctrl-C stops)", flush=True)
    if not password and not _is_loopback(host):
        print(f"memprof: warning: {shown} is reachable from other machines and no --password is set: "
              "anyone who can reach it sees this machine's processes and command lines", file=sys.stderr, flush=True)
    # uvicorn logs every bad request and disconnect at INFO/WARNING: a server in a terminal stays quiet.
    logging.getLogger("uvicorn.error").setLevel(logging.CRITICAL)
    config_object = uvicorn.Config(app, http=_protocol_class(), lifespan="off", access_log=False,
                                   log_level="critical", server_header=False, date_header=False,
                                   timeout_keep_alive=int(IDLE_TIMEOUT), timeout_graceful_shutdown=1,
                                   limit_concurrency=200, h11_max_incomplete_event_size=16 << 10)
    server = _server_class()(config_object)

    async def run() -> None:
        if stop_after is not None:
            async def stop_later() -> None:
                await asyncio.sleep(stop_after * interval)
                server.should_exit = True
            asyncio.get_running_loop().create_task(stop_later())
        if exports:
            async def sample_for_exports() -> None:
                # An export asks for a sample every interval, as a client would.
                while not server.should_exit:
                    await app._in_sampler(store.snapshot)
                    await asyncio.sleep(interval)
            asyncio.get_running_loop().create_task(sample_for_exports())
        await server.serve(sockets=[listener])

    announcement = None
    if announce:
        from .discovery import announce as announce_server

        announcement = announce_server(host, bound_port, "rest" if page else "rpc")
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        pass
    finally:
        listener.close()
        if announcement is not None:
            announcement.close()
    sys.stdout.flush()
    return 0


__all__ = ["Credentials", "SysApp", "bind_socket", "make_app", "serve"]
