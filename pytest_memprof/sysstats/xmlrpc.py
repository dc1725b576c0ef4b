"""Glances's client/server protocol: XML-RPC at ``/RPC2`` whose methods return JSON text.

The methods and payloads are Glances's (``init`` gives the version, ``getAll`` every plugin as a JSON
string, ``getAllPlugins``, ``getAllLimits``, ``getAllViews``, ``getPlugin(name)``, ``getPluginView(name)``).
The standard library encodes and decodes the XML; the bytes are bounded before they reach it (64 KiB a
call on the server, the fetch cap on the client) and a document with a DTD is refused outright, since
XML-RPC never has one and entity tricks need one: what defusedxml guards against, without the dependency.
"""

from __future__ import annotations

import json
import xmlrpc.client
from typing import Any

from .fetch import SourceUnavailable, request
from .plugins import PLUGINS

_PATH = "/RPC2"


def _has_dtd(body: bytes) -> bool:
    return b"<!doctype" in body[:4096].lower() or b"<!entity" in body.lower()


def _fault(code: int, text: str) -> bytes:
    return xmlrpc.client.dumps(xmlrpc.client.Fault(code, text), methodresponse=True, allow_none=True).encode()


def answer(body: bytes, context: Any) -> bytes:
    """The XML-RPC response to one call's body (a fault for anything but Glances's methods)."""
    from .api import plugin_limits, views_of
    from .web import GLANCES_PROTOCOL_VERSION

    if _has_dtd(body):
        return _fault(400, "a document type declaration is not allowed")
    try:
        params, method = xmlrpc.client.loads(body)
    except Exception:  # expat's and xmlrpc's errors have no common base: every one means "not a call"
        return _fault(400, "not an XML-RPC call")
    store = context.store

    def plugin_name() -> str:
        if len(params) != 1 or params[0] not in PLUGINS:
            raise LookupError(f"{method} takes one plugin name: {', '.join(PLUGINS)}")
        return params[0]

    methods = {
        "init": lambda: GLANCES_PROTOCOL_VERSION,
        "getAll": lambda: json.dumps(store.snapshot(), default=str),
        "getAllPlugins": lambda: json.dumps(list(PLUGINS)),
        "getAllLimits": lambda: json.dumps({name: plugin_limits(context, name) for name in PLUGINS}),
        "getAllViews": lambda: json.dumps({name: views_of(context, name, store.snapshot().get(name))
                                           for name in PLUGINS}, default=str),
        "getPlugin": lambda: json.dumps(store.snapshot().get(plugin_name()), default=str),
        "getPluginView": lambda: json.dumps(views_of(context, (name := plugin_name()), store.snapshot().get(name)),
                                            default=str),
    }
    if method not in methods:
        return _fault(404, f"no method {method!r}: methods are {', '.join(methods)}")
    try:
        result = methods[method]()
    except LookupError as error:
        return _fault(404, str(error))
    return xmlrpc.client.dumps((result,), methodresponse=True, allow_none=True).encode()


def call(host: str, port: int, method: str, *params: Any, authorization: str | None = None,
         timeout: float = 5.0) -> Any:
    """Call one method of a Glances XML-RPC server; every failure is a one-line SourceUnavailable."""
    headers = {"Content-Type": "text/xml"}
    if authorization:
        headers["Authorization"] = authorization
    body = xmlrpc.client.dumps(params, method).encode()
    status, _, reply = request(host, port, "POST", _PATH, body=body, headers=headers, timeout=timeout)
    if status == 401:
        raise SourceUnavailable("the password was refused (HTTP 401)" if authorization else
                                "the server needs a password: give it with --password or --password-file", 401)
    if status != 200:
        raise SourceUnavailable(f"HTTP {status} for XML-RPC {method}", status)
    if _has_dtd(reply):
        raise SourceUnavailable("the XML-RPC reply has a document type declaration, which XML-RPC never needs")
    try:
        (result,), _ = xmlrpc.client.loads(reply)
    except xmlrpc.client.Fault as fault:
        raise SourceUnavailable(f"the server answered {method} with a fault ({fault.faultCode})") from None
    except Exception:  # malformed XML, or not one value: the reply is not what Glances sends
        raise SourceUnavailable(f"the reply to XML-RPC {method} is not XML-RPC") from None
    return result
