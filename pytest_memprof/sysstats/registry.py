"""What a system-stats plugin is: a name, a shape, and its fields declared once with description and unit.

Every printer (stdout, CSV, JSON, terminal, web) works from these declarations and never special-cases
a plugin. Names and meanings follow Glances, so its users find ``cpu.user``, ``mem.used`` and
``load.min1`` where they expect them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, ClassVar

# A plugin's value is one of three shapes.
VALUE = "value"  # one scalar (now, uptime)
DICT = "dict"  # one dict of declared fields (cpu, mem, load, ...)
LIST = "list"  # a list of dicts, each named by its `key` field (network by interface_name, ...)


@dataclass(frozen=True)
class Field:
    """One figure a plugin reports: its name, what it means and its unit."""

    name: str
    description: str
    unit: str
    # Sub-fields of a field whose value is itself a dict (processlist's memory_info).
    subfields: tuple[str, ...] = ()


def rate_fields(name: str, what: str, unit: str) -> tuple[Field, ...]:
    """Glances's three figures of a counter: since the last update, since boot (``_gauge``), per second."""
    return (Field(name, f"{what} since the previous update.", unit),
            Field(f"{name}_gauge", f"{what} since boot (the cumulative counter).", unit),
            Field(f"{name}_rate_per_sec", f"{what} per second, over the time since the previous update.",
                  f"{unit}/s"))


class PluginContext:
    """What collectors share: the config (thresholds, hidden names, lists of ports and folders) and one scan of
    the processes per sample, so processcount, processlist, programlist and amps read /proc once."""

    def __init__(self, config: Any = None) -> None:
        from .config import SysConfig

        self.config = config if config is not None else SysConfig()
        self.sample_number = 0
        self._processes: tuple[int, list[dict[str, Any]]] | None = None
        self.scanner: Any = None  # set by the processlist module on first use
        self.events: Any = None  # the alert log (thresholds.EventLog), set by the source

    def prime_processes(self) -> None:
        """Take the first scan now, so the first sample's per-process CPU is measured over a real interval."""
        if self.scanner is None:
            from .plugins.processes import ProcessScanner

            self.scanner = ProcessScanner()

    def processes(self) -> list[dict[str, Any]]:
        """Every process (Glances's keys), scanned once per sample."""
        if self._processes is None or self._processes[0] != self.sample_number:
            self.prime_processes()
            self._processes = (self.sample_number, self.scanner.scan())
        return self._processes[1]


class Plugin:
    """A collector: declares its fields in ``fields`` and returns fresh values from ``collect()``."""

    name: ClassVar[str] = ""
    description: ClassVar[str] = ""
    shape: ClassVar[str] = DICT
    # For LIST plugins: the field that names an entry (interface_name, mnt_point, pid, ...).
    key: ClassVar[str] = ""
    # For VALUE plugins, the unit of the value.
    unit: ClassVar[str] = ""
    fields: ClassVar[tuple[Field, ...]] = ()
    # Fields kept in the history (Glances's items_history_list), for /history and the charts.
    history: ClassVar[tuple[str, ...]] = ()

    # Why the plugin collects nothing here (no GPU, no container engine); None when it works.
    disabled: str | None = None

    def __init__(self, context: PluginContext | None = None) -> None:
        self._last_time: float | None = None
        self.context = context or PluginContext()

    def collect(self) -> Any:
        """Return the plugin's current value (a scalar, a dict or a list of dicts)."""
        raise NotImplementedError

    @classmethod
    def field_names(cls) -> list[str]:
        """The declared field names, in declaration order."""
        return [field.name for field in cls.fields]

    @classmethod
    def field(cls, name: str) -> Field | None:
        """The declared field called ``name``, or None."""
        return next((field for field in cls.fields if field.name == name), None)

    def _elapsed(self) -> float:
        """Seconds since the previous call (0.0 the first time): rates and Glances' time_since_update."""
        now = time.monotonic()
        elapsed = 0.0 if self._last_time is None else now - self._last_time
        self._last_time = now
        return elapsed


def entry_key(plugin: type[Plugin] | Plugin, entry: dict[str, Any]) -> str:
    """The name of one entry of a LIST plugin, as it appears in dotted selectors."""
    return str(entry.get(plugin.key))


def describe(plugin: type[Plugin] | Plugin) -> dict[str, Any]:
    """The declaration of a plugin as JSON-ready data (served at /api/4/<plugin>/fields)."""
    return {
        "name": plugin.name,
        "description": plugin.description,
        "shape": plugin.shape,
        **({"key": plugin.key} if plugin.key else {}),
        **({"unit": plugin.unit} if plugin.unit else {}),
        "fields": {
            field.name: {"description": field.description, "unit": field.unit,
                         **({"subfields": list(field.subfields)} if field.subfields else {})}
            for field in plugin.fields
        },
    }


def reference_markdown(plugins: list[type[Plugin]]) -> str:
    """The field reference of ``docs/sys-fields.md``, generated from the declarations (a test keeps it current)."""
    lines = ["# `memprof sys` plugins and fields", "",
             "Generated from the declarations in `pytest_memprof/sysstats/plugins.py`; names and meanings follow",
             "Glances. Select a field as `plugin.field` (`mem.used`); a list plugin's entries are named by its key",
             "(`network.eth0.bytes_recv`, `fs./.percent`, `processlist.1234.memory_info.rss`). Each entry of a list",
             "plugin also carries `key`, the name of its key field, as Glances's entries do. Counters have",
             "Glances's three forms: the field itself counts since the previous update, `_gauge` since boot,",
             "`_rate_per_sec` per second.", ""]
    for plugin in plugins:
        shape = {VALUE: "a single value", DICT: "a dict", LIST: f"a list, one entry per `{plugin.key}`"}[plugin.shape]
        lines += [f"## `{plugin.name}`", "", f"{plugin.description} ({shape}"
                  + (f", unit: {plugin.unit})" if plugin.unit else ")"), ""]
        if plugin.fields:
            lines += ["| field | unit | meaning |", "|---|---|---|"]
            for field in plugin.fields:
                lines.append(f"| `{field.name}` | {field.unit} | {field.description} |")
                lines += [f"| `{field.name}.{sub}` | {field.unit} | |" for sub in field.subfields]
            lines.append("")
    return "\n".join(lines)
