"""The REST API's routes, as Glances's v4 names them, answered from a StatsStore: pure functions, no I/O.

``route(path, context)`` returns (HTTP status, JSON-ready body); the web server only moves bytes. The
OpenAPI document is built from the same route table and the plugins' declarations, so it cannot drift.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any, Callable
from urllib.parse import unquote

from .. import __version__
from .plugins import PLUGINS
from .printers import SCHEMA_KEY, SCHEMA_VERSION
from .registry import DICT, LIST, VALUE, describe
from .store import StatsStore

API = "/api/4"


@dataclass
class Context:
    """What the routes read: the store, the thresholds, the config and the server's own arguments."""

    store: StatsStore
    limits: Any = None  # thresholds.Limits; None: no thresholds (every view DEFAULT)
    config: dict[str, dict[str, str]] = field(default_factory=dict)
    args: dict[str, Any] = field(default_factory=dict)
    servers: list[dict[str, Any]] = field(default_factory=list)


def _error(status: int, message: str, **extra: Any) -> tuple[int, Any]:
    return status, {"error": message, **extra}


def _unknown_plugin(name: str) -> tuple[int, Any]:
    return _error(HTTPStatus.NOT_FOUND, f"unknown plugin {name!r}", plugins=list(PLUGINS))


def _nb(text: str) -> int | None:
    return int(text) if text.isdigit() else None


def views_of(context: Context, name: str, value: Any) -> Any:
    """A plugin's views: decorated by the thresholds, or all DEFAULT without them."""
    if context.limits is not None:
        return context.limits.views(name, value)
    plugin = PLUGINS[name]
    default = {"decoration": "DEFAULT", "optional": False, "additional": False, "splittable": False,
               "hidden": False}
    if plugin.shape == LIST:
        return {str(entry.get(plugin.key)): {f: dict(default) for f in entry} for entry in value or []}
    if isinstance(value, dict):
        return {f: dict(default) for f in value}
    return {}


def plugin_limits(context: Context, name: str) -> dict[str, Any]:
    """A plugin's thresholds in Glances's /limits form."""
    return context.limits.for_plugin(name) if context.limits is not None else {}


def _status(context: Context) -> dict[str, Any]:
    return {"status": "ok", "version": __version__, SCHEMA_KEY: SCHEMA_VERSION,
            "refresh_seconds": context.store.min_age, "refreshes": context.store.refreshes,
            "plugin_errors": dict(context.store.errors),
            "plugin_disabled": dict(getattr(context.store.source, "disabled", {}))}


def _top_level(context: Context) -> dict[str, Callable[[list[str]], tuple[int, Any] | None]]:
    def one(value_of: Callable[[], Any]) -> Callable[[list[str]], tuple[int, Any] | None]:
        return lambda rest: (HTTPStatus.OK, value_of()) if not rest else None

    def section(table: Callable[[], dict[str, Any]], what: str) -> Callable[[list[str]], tuple[int, Any] | None]:
        def answer(rest: list[str]) -> tuple[int, Any] | None:
            value: Any = table()
            for depth, part in enumerate(rest[:2]):
                if not isinstance(value, dict) or part not in value:
                    names = list(value) if isinstance(value, dict) else []
                    return _error(HTTPStatus.NOT_FOUND, f"no {what} {'/'.join(rest[:depth + 1])!r}", names=names)
                value = value[part]
            return (HTTPStatus.OK, value) if len(rest) <= 2 else None
        return answer

    return {
        "status": one(lambda: _status(context)),
        "pluginslist": one(lambda: list(PLUGINS)),
        "fields": one(lambda: {name: describe(plugin) for name, plugin in PLUGINS.items()}),
        "serverslist": one(lambda: context.servers),
        "config": section(lambda: context.config, "config section or item"),
        "args": section(lambda: context.args, "argument"),
    }


def _all(context: Context, rest: list[str]) -> tuple[int, Any] | None:
    if not rest:
        return HTTPStatus.OK, context.store.snapshot()
    if rest == ["limits"]:
        return HTTPStatus.OK, {name: plugin_limits(context, name) for name in PLUGINS}
    if rest == ["views"]:
        snapshot = context.store.snapshot()
        return HTTPStatus.OK, {name: views_of(context, name, snapshot.get(name)) for name in PLUGINS}
    return None


def _plugin_route(context: Context, name: str, rest: list[str]) -> tuple[int, Any] | None:
    plugin = PLUGINS[name]
    if not rest:
        return HTTPStatus.OK, context.store.snapshot().get(name)
    head, tail = rest[0], rest[1:]
    if head == "history" and len(tail) <= 1:
        nb = _nb(tail[0]) if tail else 0
        if nb is None:
            return _error(HTTPStatus.BAD_REQUEST, f"history/{tail[0]}: expected a number of points")
        context.store.snapshot()
        return HTTPStatus.OK, context.store.history(name, nb=nb)
    if head == "limits" and not tail:
        return HTTPStatus.OK, plugin_limits(context, name)
    if head == "views" and not tail:
        return HTTPStatus.OK, views_of(context, name, context.store.snapshot().get(name))
    if head == "top" and len(tail) == 1 and plugin.shape == LIST:
        nb = _nb(tail[0])
        if nb is None:
            return _error(HTTPStatus.BAD_REQUEST, f"top/{tail[0]}: expected a number of entries")
        value = context.store.snapshot().get(name) or []
        return HTTPStatus.OK, value[:nb] if nb else value
    if head == "fields" and not tail:
        return HTTPStatus.OK, describe(plugin)
    declared = plugin.field(head)
    if declared is None or plugin.shape == VALUE:
        names = plugin.field_names()
        return _error(HTTPStatus.NOT_FOUND, f"unknown field {name}.{head}", fields=names)
    return _item_route(context, name, head, tail)


def _item_route(context: Context, name: str, item: str, tail: list[str]) -> tuple[int, Any] | None:
    plugin = PLUGINS[name]
    declared = plugin.field(item)
    if tail == ["description"]:
        return HTTPStatus.OK, declared.description
    if tail == ["unit"]:
        return HTTPStatus.OK, declared.unit
    if tail and tail[0] == "history" and len(tail) <= 2:
        nb = _nb(tail[1]) if len(tail) == 2 else 0
        if nb is None:
            return _error(HTTPStatus.BAD_REQUEST, f"history/{tail[1]}: expected a number of points")
        context.store.snapshot()
        return HTTPStatus.OK, context.store.history(name, item, nb=nb)
    value = context.store.snapshot().get(name)
    if tail == ["views"]:
        views = views_of(context, name, value)
        if plugin.shape == LIST:
            return HTTPStatus.OK, {key: entry.get(item) for key, entry in views.items()}
        return HTTPStatus.OK, views.get(item)
    if not tail:
        if plugin.shape == DICT:
            return HTTPStatus.OK, {item: (value or {}).get(item)}
        return HTTPStatus.OK, {item: [entry.get(item) for entry in value or []]}
    if plugin.shape != LIST:
        return None
    if tail[0] == "value" and len(tail) >= 2:
        wanted = "/".join(tail[1:])  # a mount point holds slashes: /fs/mnt_point/value//home
        return HTTPStatus.OK, {wanted: [entry for entry in value or [] if str(entry.get(item)) == wanted]}
    if len(tail) == 1 or (len(tail) == 2 and tail[1] == "views"):
        key = tail[0]
        entry = next((entry for entry in value or [] if str(entry.get(plugin.key)) == key), None)
        if entry is None:
            keys = [str(entry.get(plugin.key)) for entry in value or []]
            return _error(HTTPStatus.NOT_FOUND, f"no {plugin.key} {key!r} in {name}", keys=keys)
        if len(tail) == 2:
            return HTTPStatus.OK, views_of(context, name, [entry]).get(key, {}).get(item)
        return HTTPStatus.OK, {item: entry.get(item)}
    return None


def route(path: str, context: Context) -> tuple[int, Any]:
    """(HTTP status, JSON-ready body) for a path under /api/4."""
    parts = [unquote(part) for part in path[len(API):].strip("/").split("/") if part]
    if not parts:
        return HTTPStatus.OK, {"api": 4, "routes": [template for template, _ in ROUTES]}
    head, rest = parts[0], parts[1:]
    answer: tuple[int, Any] | None
    top = _top_level(context)
    if head in top:
        answer = top[head](rest)
    elif head == "all":
        answer = _all(context, rest)
    elif head in PLUGINS:
        answer = _plugin_route(context, head, rest)
    else:
        return _unknown_plugin(head)
    return answer if answer is not None else _error(HTTPStatus.NOT_FOUND, f"no such route: {path}")


# (path template, what it answers): the OpenAPI document and the index of /api/4 come from this list.
ROUTES: list[tuple[str, str]] = [
    ("/status", "Server status and version."),
    ("/pluginslist", "Names of the plugins."),
    ("/all", "Every plugin's latest value."),
    ("/all/limits", "Every plugin's thresholds."),
    ("/all/views", "Every plugin's views (decoration of each value by the thresholds)."),
    ("/fields", "Every plugin's declared fields with meaning and unit (memprof's own)."),
    ("/config", "The configuration file, by section."),
    ("/config/{section}", "One section of the configuration."),
    ("/config/{section}/{item}", "One item of a configuration section."),
    ("/args", "The server's command-line arguments."),
    ("/args/{item}", "One command-line argument."),
    ("/help", "The help plugin: versions, config file and the terminal view's hotkeys."),
    ("/serverslist", "Servers of the configuration's [serverlist]."),
    ("/{plugin}", "One plugin's latest value."),
    ("/{plugin}/history", "The plugin's history: {series: [[time, value], ...]}."),
    ("/{plugin}/history/{nb}", "The last nb points of the plugin's history."),
    ("/{plugin}/top/{nb}", "The first nb entries of a list plugin."),
    ("/{plugin}/limits", "The plugin's thresholds."),
    ("/{plugin}/views", "The plugin's views."),
    ("/{plugin}/fields", "The plugin's declaration (memprof's own)."),
    ("/{plugin}/{item}", "One field: a value, or a list of values for a list plugin."),
    ("/{plugin}/{item}/description", "What a field means."),
    ("/{plugin}/{item}/unit", "A field's unit."),
    ("/{plugin}/{item}/history", "One field's history: [[time, value], ...]."),
    ("/{plugin}/{item}/history/{nb}", "The last nb points of one field's history."),
    ("/{plugin}/{item}/views", "One field's views."),
    ("/{plugin}/{item}/value/{value}", "Entries of a list plugin whose field has this value."),
    ("/{plugin}/{item}/{key}", "One field of the list entry named key (an interface, a mount point, a pid)."),
]


def openapi() -> dict[str, Any]:
    """The OpenAPI 3.0 document of the API, from ROUTES and the plugins' declarations."""
    error = {"type": "object", "properties": {"error": {"type": "string"}}, "required": ["error"]}
    parameters = {
        "plugin": {"type": "string", "enum": list(PLUGINS)},
        "item": {"type": "string"},
        "nb": {"type": "integer", "minimum": 0, "maximum": 100000},
        "section": {"type": "string"},
        "key": {"type": "string"},
        "value": {"type": "string"},
    }
    paths: dict[str, Any] = {}
    for template, summary in ROUTES:
        names = [part[1:-1] for part in template.split("/") if part.startswith("{")]
        responses: dict[str, Any] = {
            "200": {"description": "OK", "content": {"application/json": {"schema": {}}}},
            "401": {"description": "A password is needed or was refused.",
                    "content": {"application/json": {"schema": error}}},
        }
        if names:
            responses["404"] = {"description": "Unknown plugin, field, entry or route.",
                                "content": {"application/json": {"schema": error}}}
            responses["400"] = {"description": "A malformed number.",
                                "content": {"application/json": {"schema": error}}}
        paths[API + template] = {"get": {
            "summary": summary,
            "operationId": "get" + "".join(part.strip("{}").title() for part in template.split("/") if part),
            "parameters": [{"name": name, "in": "path", "required": True, "schema": parameters[name]}
                           for name in names],
            "responses": responses,
        }}
    return {
        "openapi": "3.0.3",
        "info": {"title": "memprof sys", "version": __version__,
                 "description": "System statistics in Glances's REST API v4 layout."},
        "paths": paths,
        "components": {"securitySchemes": {"basic": {"type": "http", "scheme": "basic"}}},
    }
