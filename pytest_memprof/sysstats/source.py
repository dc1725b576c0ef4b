"""Where snapshots come from: this machine's collectors, or a ``memprof sys -s`` / ``-w`` server over HTTP."""

from __future__ import annotations

import base64
import time
from collections.abc import Iterable
from typing import Any

import psutil

from ..errors import UsageError
from .fetch import SourceUnavailable, decode_json, get_json
from .plugins import PLUGINS
from .registry import LIST, Plugin

DEFAULT_SERVER_PORT = 61209
DEFAULT_WEB_PORT = 61208
# Rates and CPU percentages measured over less than this are mostly noise: the first sample waits for it.
_SETTLE_SECONDS = 0.1


# What reading /proc or /sys can raise: permissions, files missing in containers, psutil's own errors.
_SOURCE_ERRORS = (OSError, RuntimeError, psutil.Error)


class LocalSource:
    """Samples this machine through the collectors of the named plugins (all by default)."""

    def __init__(self, names: Iterable[str] | None = None, config: Any = None) -> None:
        from .registry import PluginContext

        self.context = PluginContext(config)
        self.errors: dict[str, str] = {}
        self.disabled: dict[str, str] = {}
        self.collectors: dict[str, Plugin | None] = {}
        self.shown = list(names or PLUGINS)
        wanted = list(self.shown)
        if "alert" in wanted:
            # The log watches these figures: they are collected with it even when only the log is shown.
            from .thresholds import RULES

            wanted += [rule.plugin for rule in RULES if rule.event and rule.plugin not in wanted]
            wanted.append("processlist")  # an event names the processes that used the most when it began
            wanted.append(wanted.pop(wanted.index("alert")))
        for name in dict.fromkeys(wanted):
            try:
                collector = PLUGINS[name](self.context)  # some take a first reading to measure rates from
            except _SOURCE_ERRORS as error:
                self.collectors[name] = None
                self.errors[name] = f"{type(error).__name__}: {error}"
                continue
            self.collectors[name] = collector
            if collector.disabled:
                self.disabled[name] = collector.disabled
        if "alert" in self.collectors:
            from .thresholds import EventLog, Limits

            self.context.events = EventLog(Limits(self.context.config))
        self._created = time.monotonic()
        self.description = "this machine"

    def sample(self) -> dict[str, Any]:
        """Collect every plugin once and return ``{plugin: value}``; a plugin that fails gives None."""
        wait = _SETTLE_SECONDS - (time.monotonic() - self._created)
        if wait > 0:
            time.sleep(wait)
        self.context.sample_number += 1
        snapshot: dict[str, Any] = {}
        # The alert log reads the other plugins' figures of this same sample: it is collected last.
        for name in sorted(self.collectors, key=lambda name: name == "alert"):
            collector = self.collectors[name]
            if collector is None:
                snapshot[name] = None
                continue
            if name == "alert" and self.context.events is not None:
                self.context.events.update(snapshot)
            try:
                value = collector.collect()
            except _SOURCE_ERRORS as error:
                # One unreadable source (no /proc/diskstats in a container, say) must not blank the others;
                # printers show N/A for it and the reason is kept for whoever asks.
                snapshot[name] = None
                self.errors[name] = f"{type(error).__name__}: {error}"
                continue
            if collector.shape == LIST and isinstance(value, list):
                for entry in value:
                    entry.setdefault("key", collector.key)  # Glances's entries name their key field
            snapshot[name] = value
        return {name: snapshot[name] for name in self.shown}


def parse_address(text: str, default_port: int) -> tuple[str, int]:
    """``HOST[:PORT]`` (or ``[v6]:PORT``) as (host, port); a bad port is a usage error."""
    host, port_text = text, ""
    if text.startswith("["):
        host, _, rest = text[1:].partition("]")
        port_text = rest[1:] if rest.startswith(":") else ""
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not host:
        raise UsageError(f"no host in {text!r}: expected HOST[:PORT]")
    if not port_text:
        return host, default_port
    try:
        port = int(port_text)
    except ValueError:
        raise UsageError(f"bad port in {text!r}: expected HOST[:PORT] with a number") from None
    if not 0 < port < 65536:
        raise UsageError(f"bad port {port} in {text!r}: expected 1 to 65535")
    return host, port


def basic_auth_header(username: str, password: str) -> str:
    """The value of an ``Authorization`` header for HTTP Basic authentication."""
    token = base64.b64encode(f"{username}:{password}".encode()).decode("ascii")
    return f"Basic {token}"


class RemoteSource:
    """Samples a server: a memprof or Glances web server's ``/api/4/all``, or a Glances ``-s`` over XML-RPC.

    The protocol is found on the first sample: REST first; a server that refuses GET (Glances's XML-RPC
    server answers 501) is asked over XML-RPC, and the choice is kept.
    """

    def __init__(self, host: str, port: int, authorization: str | None = None, timeout: float = 5.0) -> None:
        self.host, self.port = host, port
        self.authorization = authorization
        self.timeout = timeout
        shown = f"[{host}]" if ":" in host else host
        self.description = f"{shown}:{port}"
        self.protocol: str | None = None  # "rest" or "xmlrpc" once known

    def _rest(self) -> Any:
        return get_json(self.host, self.port, "/api/4/all", self.authorization, self.timeout)

    def _xmlrpc(self) -> Any:
        from . import xmlrpc

        if self.protocol is None:
            xmlrpc.call(self.host, self.port, "init", authorization=self.authorization, timeout=self.timeout)
        text = xmlrpc.call(self.host, self.port, "getAll", authorization=self.authorization, timeout=self.timeout)
        if not isinstance(text, str):
            raise SourceUnavailable("the XML-RPC getAll reply is not Glances's JSON text")
        return decode_json(text.encode("utf-8"), "the XML-RPC getAll reply")

    def sample(self) -> dict[str, Any]:
        """Fetch every plugin's value from the server."""
        if self.protocol == "xmlrpc":
            snapshot = self._xmlrpc()
        else:
            try:
                snapshot = self._rest()
            except SourceUnavailable as error:
                if self.protocol == "rest" or error.status not in (404, 405, 501):
                    raise
                snapshot = self._xmlrpc()
                self.protocol = "xmlrpc"
            else:
                self.protocol = "rest"
        if not isinstance(snapshot, dict):
            raise SourceUnavailable("the server's stats are not a JSON object")
        return snapshot
