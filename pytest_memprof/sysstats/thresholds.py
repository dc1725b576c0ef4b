"""Thresholds, views and the alert log, in Glances's form.

A threshold is written as Glances writes it, ``[cpu] user_careful=50`` / ``_warning`` / ``_critical``
(``[load] careful=0.7`` for a plugin's main figure), with ``_log=True`` to record the crossings in the
event log. A value at or above a threshold is CAREFUL, WARNING or CRITICAL, else OK; a field without one
is DEFAULT. Views (``/api/4/{plugin}/views``) carry that decoration per field, and every view colours
values by it. The event log (the ``alert`` plugin) keeps Glances's events: one begins when a logged value
reaches WARNING, lasts while it stays there, and records its begin, end, worst state, min, max and average.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .registry import LIST

LEVELS = ("CAREFUL", "WARNING", "CRITICAL")
_RANK = {"DEFAULT": -1, "OK": 0, "CAREFUL": 1, "WARNING": 2, "CRITICAL": 3}
# Events Glances keeps at most (its [alert] max_events default).
MAX_EVENTS = 10


def _number(value: Any) -> float | None:
    return float(value) if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def _per_core(field: str) -> Callable[[dict[str, Any], Any], float | None]:
    def read(entry: dict[str, Any], whole: Any) -> float | None:
        value, cores = _number(entry.get(field)), _number(entry.get("cpucore")) or 1.0
        return None if value is None else value / cores
    return read


def _link_percent(field: str) -> Callable[[dict[str, Any], Any], float | None]:
    def read(entry: dict[str, Any], whole: Any) -> float | None:
        rate, speed = _number(entry.get(field)), _number(entry.get("speed"))
        return None if rate is None or not speed else 100.0 * 8 * rate / speed
    return read


@dataclass(frozen=True)
class Rule:
    """One thresholded figure: where it lives, its config key, Glances's default thresholds, how to read it."""

    plugin: str
    field: str  # the field whose view is decorated
    key: str  # the config key before _careful (``user``), or "" for the plugin's main figure (``[load] careful``)
    defaults: tuple[float, float, float] | None
    log: bool = False
    read: Callable[[dict[str, Any], Any], float | None] | None = None  # default: the field's own value
    event: str = ""  # the event type in the log (CPU_TOTAL, MEM, ...)


_PERCENT3 = (50.0, 70.0, 90.0)
RULES: tuple[Rule, ...] = (
    Rule("cpu", "total", "total", (65.0, 75.0, 85.0), log=True, event="CPU_TOTAL"),
    Rule("cpu", "user", "user", _PERCENT3, event="CPU_USER"),
    Rule("cpu", "system", "system", _PERCENT3, event="CPU_SYSTEM"),
    Rule("cpu", "iowait", "iowait", _PERCENT3, event="CPU_IOWAIT"),
    Rule("cpu", "steal", "steal", _PERCENT3, event="CPU_STEAL"),
    Rule("percpu", "user", "user", _PERCENT3),
    Rule("percpu", "system", "system", _PERCENT3),
    Rule("percpu", "iowait", "iowait", _PERCENT3),
    Rule("load", "min15", "", (0.7, 1.0, 5.0), log=True, read=_per_core("min15"), event="LOAD"),
    Rule("load", "min5", "", (0.7, 1.0, 5.0), read=_per_core("min5")),
    Rule("mem", "percent", "", _PERCENT3, log=True, event="MEM"),
    Rule("memswap", "percent", "", _PERCENT3, log=True, event="MEMSWAP"),
    Rule("quicklook", "cpu", "cpu", _PERCENT3),
    Rule("quicklook", "mem", "mem", _PERCENT3),
    Rule("quicklook", "swap", "swap", _PERCENT3),
    Rule("quicklook", "load", "load", (70.0, 100.0, 500.0)),
    Rule("fs", "percent", "", _PERCENT3, event="FS"),
    Rule("network", "bytes_recv_rate_per_sec", "rx", (70.0, 80.0, 90.0), read=_link_percent("bytes_recv_rate_per_sec")),
    Rule("network", "bytes_sent_rate_per_sec", "tx", (70.0, 80.0, 90.0), read=_link_percent("bytes_sent_rate_per_sec")),
    Rule("processlist", "cpu_percent", "cpu", _PERCENT3),
    Rule("processlist", "memory_percent", "mem", _PERCENT3),
    Rule("containers", "cpu_percent", "cpu", _PERCENT3),
    Rule("gpu", "proc", "proc", _PERCENT3),
    Rule("gpu", "mem", "mem", _PERCENT3),
    Rule("gpu", "temperature", "temperature", (60.0, 70.0, 80.0)),
    Rule("diskio", "read_bytes_rate_per_sec", "rx", None),
    Rule("diskio", "write_bytes_rate_per_sec", "tx", None),
)


class Limits:
    """The thresholds in force: Glances's defaults, overridden by the config's sections."""

    def __init__(self, config: Any = None) -> None:
        from .config import SysConfig

        self.config = config if config is not None else SysConfig()
        self._rules: dict[str, list[Rule]] = {}
        for rule in RULES:
            self._rules.setdefault(rule.plugin, []).append(rule)
            self.thresholds(rule)  # a threshold that is not a number is a usage error now, not at the first sample

    def thresholds(self, rule: Rule) -> tuple[float | None, float | None, float | None]:
        """(careful, warning, critical) of a rule: the config's, else Glances's defaults."""
        prefix = f"{rule.key}_" if rule.key else ""
        defaults = rule.defaults or (None, None, None)
        return tuple(self.config.number(rule.plugin, f"{prefix}{level.lower()}", default)  # type: ignore[return-value]
                     for level, default in zip(LEVELS, defaults))

    def logged(self, rule: Rule) -> bool:
        """Whether crossings of this rule go to the event log (``_log=True``)."""
        prefix = f"{rule.key}_" if rule.key else ""
        return self.config.flag(rule.plugin, f"{prefix}log", rule.log)

    def for_plugin(self, name: str) -> dict[str, Any]:
        """Glances's ``/limits`` payload: ``{"history_size": ..., "cpu_user_careful": 50.0, ...}``."""
        from .store import HISTORY_SIZE

        limits: dict[str, Any] = {"history_size": float(HISTORY_SIZE)}
        for rule in self._rules.get(name, []):
            prefix = f"{name}_{rule.key}_" if rule.key else f"{name}_"
            for level, value in zip(LEVELS, self.thresholds(rule)):
                if value is not None:
                    limits[f"{prefix}{level.lower()}"] = value
            if self.logged(rule):
                limits[f"{prefix}log"] = ["True"]
        hide = self.config.get(name, "hide")
        if hide:
            limits[f"{name}_hide"] = [part for part in hide.split(",") if part]
        return limits

    def level(self, rule: Rule, entry: dict[str, Any], whole: Any = None) -> str:
        """OK, CAREFUL, WARNING or CRITICAL for one value; DEFAULT where it has no threshold or no value."""
        value = rule.read(entry, whole) if rule.read else _number(entry.get(rule.field))
        careful, warning, critical = self.thresholds(rule)
        if value is None or (careful, warning, critical) == (None, None, None):
            return "DEFAULT"
        for name, threshold in (("CRITICAL", critical), ("WARNING", warning), ("CAREFUL", careful)):
            if threshold is not None and value >= threshold:
                return name
        return "OK"

    def _special(self, name: str, entry: dict[str, Any]) -> dict[str, str]:
        """Decorations that are not one value against three thresholds: ports, folders, amps, sensors."""
        if name == "ports":
            status, warning = entry.get("status"), entry.get("rtt_warning")
            if status is False or (entry.get("url") and isinstance(status, int) and status >= 400):
                return {"status": "CRITICAL"}
            if isinstance(status, float) and warning and status > warning:
                return {"status": "WARNING"}
            return {"status": "OK" if status is not None else "DEFAULT"}
        if name == "folders" and isinstance(entry.get("size"), int):
            megabytes = entry["size"] / 1e6
            for level in ("critical", "warning", "careful"):
                if entry.get(level) is not None and megabytes >= entry[level]:
                    return {"size": level.upper()}
            return {"size": "OK"}
        if name == "amps" and isinstance(entry.get("count"), int):
            low, high = entry.get("countmin"), entry.get("countmax")
            wrong = (low is not None and entry["count"] < low) or (high is not None and entry["count"] > high)
            return {"count": "WARNING" if wrong else "OK"}
        if name == "sensors" and _number(entry.get("value")) is not None:
            kind = entry.get("type") or ""
            value = 100.0 - entry["value"] if kind == "battery" else entry["value"]
            careful = self.config.number("sensors", f"{kind}_careful")
            warning = self.config.number("sensors", f"{kind}_warning", entry.get("warning"))
            critical = self.config.number("sensors", f"{kind}_critical", entry.get("critical"))
            for level, threshold in (("CRITICAL", critical), ("WARNING", warning), ("CAREFUL", careful)):
                if threshold is not None and value >= threshold:
                    return {"value": level}
            return {"value": "OK" if (careful, warning, critical) != (None, None, None) else "DEFAULT"}
        return {}

    def decorations(self, name: str, entry: dict[str, Any], whole: Any = None) -> dict[str, str]:
        """{field: decoration} for one dict (a DICT plugin's value or one LIST entry), with Glances's _LOG marks."""
        result = self._special(name, entry)
        for rule in self._rules.get(name, []):
            level = self.level(rule, entry, whole)
            if level != "DEFAULT" or rule.field not in result:
                result[rule.field] = f"{level}_LOG" if self.logged(rule) and level != "DEFAULT" else level
        return result

    def views(self, name: str, value: Any) -> Any:
        """Glances's ``/views`` payload: per field (per entry for a list plugin) its decoration and flags."""
        from .plugins import PLUGINS

        plugin = PLUGINS.get(name)

        def view(entry: dict[str, Any]) -> dict[str, Any]:
            decorated = self.decorations(name, entry, value)
            return {field: {"decoration": decorated.get(field, "DEFAULT"), "optional": False, "additional": False,
                            "splittable": False, "hidden": False} for field in entry}

        if plugin is not None and plugin.shape == LIST:
            return {str(entry.get(plugin.key)): view(entry) for entry in value or [] if isinstance(entry, dict)}
        return view(value) if isinstance(value, dict) else {}


class EventLog:
    """Glances's events: a logged figure at WARNING or above opens an event, back below WARNING closes it."""

    def __init__(self, limits: Limits, max_events: int = MAX_EVENTS, clock: Callable[[], float] = time.time) -> None:
        self.limits = limits
        self.max_events = int(limits.config.number("alert", "max_events", max_events) or max_events)
        self.clock = clock
        self.events: list[dict[str, Any]] = []  # newest first

    def _open(self, kind: str) -> dict[str, Any] | None:
        return next((event for event in self.events if event["type"] == kind and event["end"] == -1), None)

    def update(self, snapshot: dict[str, Any]) -> None:
        """Feed one sample's figures: open, extend or close events."""
        now = int(self.clock())
        for rule in RULES:
            if not rule.event or not self.limits.logged(rule):
                continue
            value = snapshot.get(rule.plugin)
            entries = [(rule.event, value)] if isinstance(value, dict) else []
            if isinstance(value, list):
                from .plugins import PLUGINS

                key = PLUGINS[rule.plugin].key
                entries = [(f"{rule.event}_{entry.get(key)}", entry) for entry in value if isinstance(entry, dict)]
            for kind, entry in entries:
                figure = rule.read(entry, value) if rule.read else _number(entry.get(rule.field))
                if figure is None:
                    continue
                level = self.limits.level(rule, entry, value)
                self._record(kind, level, figure, now, rule, snapshot)

    def _record(self, kind: str, level: str, figure: float, now: int, rule: Rule, snapshot: dict[str, Any]) -> None:
        event = self._open(kind)
        if _RANK.get(level, 0) < _RANK["WARNING"]:
            if event is not None:
                event["end"] = now
            return
        if event is None:
            sort = "memory_percent" if rule.plugin in ("mem", "memswap") else "cpu_percent"
            processes = sorted((p for p in snapshot.get("processlist") or [] if isinstance(p, dict)),
                               key=lambda p: -(p.get(sort) or 0))
            event = {"id": f"{now}_{kind}", "begin": now, "end": -1, "state": level, "type": kind, "max": figure,
                     "avg": figure, "min": figure, "sum": 0.0, "count": 0,
                     "top": [p.get("name") for p in processes[:3]], "desc": "", "sort": sort, "global_msg": ""}
            self.events.insert(0, event)
            del self.events[self.max_events:]
        event["count"] += 1
        event["sum"] = round(event["sum"] + figure, 3)
        event["min"], event["max"] = min(event["min"], figure), max(event["max"], figure)
        event["avg"] = round(event["sum"] / event["count"], 3)
        if _RANK[level] > _RANK[event["state"]]:
            event["state"] = level

    def as_list(self) -> list[dict[str, Any]]:
        """The events, newest first, with Glances's one-line summary in each."""
        ongoing = sum(1 for event in self.events if event["end"] == -1)
        message = f"{ongoing} ongoing alert(s), {len(self.events)} in the log" if self.events else "No alert"
        return [{**event, "global_msg": message} for event in self.events]
