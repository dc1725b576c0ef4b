"""Dotted selectors (``cpu.user``, ``load``, ``network.eth0.bytes_recv``) and how they read a snapshot.

A snapshot is ``{plugin name: value}`` as the collectors (or a remote server's ``/api/4/all``) return it.
Selectors are checked against the plugins' declarations, so a typo is a usage error listing what exists.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import UsageError
from .plugins import PLUGINS
from .registry import DICT, LIST, VALUE, Plugin, entry_key

Snapshot = dict[str, Any]
MISSING = object()


@dataclass(frozen=True)
class Selector:
    """One item asked for: a whole plugin, one of its fields, one entry of a list plugin, or both."""

    plugin: str
    entry: str | None = None  # a list plugin's entry key (interface name, mount point, pid)
    field: tuple[str, ...] = ()  # a field, or a field and one of its subfields

    @property
    def text(self) -> str:
        """The selector written back in dotted form."""
        return ".".join([self.plugin, *([self.entry] if self.entry is not None else []), *self.field])


def _field_paths(plugin: type[Plugin]) -> list[tuple[str, ...]]:
    paths: list[tuple[str, ...]] = []
    for field in plugin.fields:
        paths.append((field.name,))
        paths.extend((field.name, sub) for sub in field.subfields)
    return paths


def _unknown_field(plugin: type[Plugin], text: str) -> UsageError:
    names = ", ".join(".".join(path) for path in _field_paths(plugin))
    return UsageError(f"unknown field {text!r}: the fields of {plugin.name} are {names}")


def parse_one(text: str) -> Selector:
    """Parse one dotted selector, checking the plugin and field names against the declarations."""
    name, _, rest = text.strip().partition(".")
    plugin = PLUGINS.get(name)
    if plugin is None:
        raise UsageError(f"unknown plugin {name!r} in {text!r}: plugins are {', '.join(PLUGINS)}")
    if not rest:
        return Selector(name)
    if plugin.shape == VALUE:
        raise UsageError(f"{text!r}: {name} is a single value without fields")
    parts = tuple(rest.split("."))
    paths = _field_paths(plugin)
    if plugin.shape == DICT:
        if parts not in paths:
            raise _unknown_field(plugin, text)
        return Selector(name, None, parts)
    # A list plugin: FIELD, ENTRY, or ENTRY.FIELD; an entry key may itself hold dots (eth0.100).
    for path in sorted(paths, key=len, reverse=True):
        if parts == path:
            return Selector(name, None, path)
        if len(parts) > len(path) and parts[-len(path):] == path:
            return Selector(name, ".".join(parts[: -len(path)]), path)
    return Selector(name, rest, ())


def parse_list(text: str) -> list[Selector]:
    """Parse a comma-separated list of selectors; an empty list is a usage error."""
    items = [item.strip() for item in text.split(",") if item.strip()]
    if not items:
        raise UsageError("no plugin or field given: name some, e.g. cpu.user,mem.used,load")
    return [parse_one(item) for item in items]


def check_entries(selectors: list[Selector], snapshot: Snapshot) -> None:
    """Entries named in selectors must exist in the first snapshot; else a usage error naming those that do."""
    for selector in selectors:
        if selector.entry is None:
            continue
        value = snapshot.get(selector.plugin)
        if not isinstance(value, list):
            continue  # no data yet (a remote server without this plugin): shown as N/A, not an error
        plugin = PLUGINS[selector.plugin]
        keys = [entry_key(plugin, entry) for entry in value]
        if selector.entry not in keys:
            if not selector.field:
                fields = ", ".join(".".join(path) for path in _field_paths(plugin))
                raise UsageError(f"{selector.text!r}: {selector.entry!r} is neither a field of {plugin.name} "
                                 f"({fields}) nor one of its {plugin.key}s ({', '.join(keys) or 'none'})")
            raise UsageError(f"{selector.text!r}: no {plugin.key} {selector.entry!r}; "
                             f"{plugin.name} has {', '.join(keys) or 'none'}")


def plugins_needed(selectors: list[Selector]) -> list[str]:
    """Plugin names the selectors read, in first-mention order."""
    return list(dict.fromkeys(selector.plugin for selector in selectors))


def _entries(plugin: type[Plugin], value: Any) -> dict[str, dict[str, Any]]:
    return {entry_key(plugin, entry): entry for entry in value} if isinstance(value, list) else {}


def _dig(value: Any, path: tuple[str, ...]) -> Any:
    for part in path:
        if not isinstance(value, dict) or part not in value:
            return MISSING
        value = value[part]
    return value


def items(selector: Selector, snapshot: Snapshot) -> list[tuple[str, Any]]:
    """(dotted name, value) pairs for one selector: one for a scalar, dict or entry; one per entry for a list."""
    plugin = PLUGINS[selector.plugin]
    value = snapshot.get(selector.plugin, MISSING)
    if plugin.shape != LIST or value is MISSING:
        return [(selector.text, value if value is MISSING else _dig(value, selector.field))]
    entries = _entries(plugin, value)
    if selector.entry is not None:
        entry = entries.get(selector.entry, MISSING)
        return [(selector.text, entry if entry is MISSING else _dig(entry, selector.field))]
    return [(".".join([plugin.name, key, *selector.field]), _dig(entry, selector.field))
            for key, entry in entries.items()]


@dataclass(frozen=True)
class Column:
    """One CSV column: its header and where its value lives."""

    header: str
    plugin: str
    entry: str | None
    path: tuple[str, ...]

    def read(self, snapshot: Snapshot) -> Any:
        """This column's value in a snapshot, or MISSING."""
        plugin = PLUGINS[self.plugin]
        value = snapshot.get(self.plugin, MISSING)
        if value is MISSING:
            return MISSING
        if plugin.shape == LIST:
            value = _entries(plugin, value).get(self.entry, MISSING)
            if value is MISSING:
                return MISSING
        return _dig(value, self.path)


def _leaf_paths(plugin: type[Plugin], field: tuple[str, ...]) -> list[tuple[str, ...]]:
    if field:
        declared = plugin.field(field[0])
        if len(field) == 1 and declared is not None and declared.subfields:
            return [(field[0], sub) for sub in declared.subfields]
        return [field]
    return [path for path in _field_paths(plugin) if not (len(path) == 1 and plugin.field(path[0]).subfields)]


def columns(selectors: list[Selector], snapshot: Snapshot) -> list[Column]:
    """The CSV columns, fixed from the declarations and the list entries present in ``snapshot``."""
    result: list[Column] = []
    for selector in selectors:
        plugin = PLUGINS[selector.plugin]
        if plugin.shape == VALUE:
            result.append(Column(plugin.name, plugin.name, None, ()))
            continue
        if plugin.shape == DICT:
            keys: list[str | None] = [None]
        elif selector.entry is not None:
            keys = [selector.entry]
        else:
            keys = list(_entries(plugin, snapshot.get(plugin.name)))
        for key in keys:
            for path in _leaf_paths(plugin, selector.field):
                header = ".".join([plugin.name, *([key] if key is not None else []), *path])
                result.append(Column(header, plugin.name, key, path))
    return list(dict.fromkeys(result))


def nested(selectors: list[Selector], snapshot: Snapshot) -> dict[str, Any]:
    """The selected values as one JSON-ready object: ``{"cpu": {"user": 3.1}, "load": {...}}``."""
    result: dict[str, Any] = {}
    for selector in selectors:
        plugin = PLUGINS[selector.plugin]
        value = snapshot.get(selector.plugin)
        if selector.entry is None and not selector.field:
            result[selector.plugin] = value
            continue
        target = result.setdefault(selector.plugin, {})
        if not isinstance(target, dict):
            continue  # the whole plugin was asked for already
        if plugin.shape == DICT:
            picked = _dig(value, selector.field)
            _put(target, selector.field, None if picked is MISSING else picked)
            continue
        entries = _entries(plugin, value)
        keys = [selector.entry] if selector.entry is not None else list(entries)
        for key in keys:
            entry = entries.get(key)
            picked = _dig(entry, selector.field) if entry is not None else MISSING
            if selector.field:
                _put(target.setdefault(key, {}), selector.field, None if picked is MISSING else picked)
            else:
                target[key] = entry
    return result


def _put(target: dict[str, Any], path: tuple[str, ...], value: Any) -> None:
    for part in path[:-1]:
        target = target.setdefault(part, {})
    target[path[-1]] = value
