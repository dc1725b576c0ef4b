"""What a server answers from: samples taken on request, at most one per interval, and a bounded history.

Glances's servers collect when a client asks (its ``cached_time``) rather than on a timer; so do we. A
server nobody asks costs no CPU, and many clients within one interval share one collection. The history
keeps the numeric fields Glances keeps (``items_history_list``) for ``/api/4/{plugin}/history``.
"""

from __future__ import annotations

import datetime
import threading
import time
from collections import deque
from collections.abc import Iterable
from typing import Any

from .plugins import PLUGINS
from .registry import DICT, LIST, Plugin, entry_key
from .source import LocalSource


def _release_freed_memory() -> Any:
    """glibc's malloc_trim, or a no-op: a sample allocates and frees a few MiB of dicts (one per process), and
    without a trim glibc keeps those pages, so a server's RSS would sit at its busiest sample's size."""
    try:
        import ctypes

        trim = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return lambda: None
    trim.argtypes = [ctypes.c_size_t]
    return lambda: trim(0)


# Points kept per series: Glances keeps 1200 (40 minutes at its 2 s); 600 keeps our memory small.
HISTORY_SIZE = 600


def _history_series(plugin: type[Plugin], value: Any) -> dict[str, Any]:
    """{series name: number} for one plugin's value: ``percent``, or ``eth0.bytes_recv_rate_per_sec``."""
    names = plugin.history
    if not names or value is None:
        return {}
    if plugin.shape == DICT and isinstance(value, dict):
        return {name: value.get(name) for name in names if isinstance(value.get(name), (int, float))}
    if plugin.shape == LIST and isinstance(value, list):
        series = {}
        for entry in value:
            key = entry_key(plugin, entry)
            for name in names:
                if isinstance(entry.get(name), (int, float)):
                    series[f"{key}.{name}"] = entry[name]
        return series
    return {}


class StatsStore:
    """Latest snapshot plus history; ``snapshot()`` samples again only when the last one is older than ``min_age``."""

    def __init__(self, min_age: float, names: Iterable[str] | None = None, source: Any = None,
                 history_size: int = HISTORY_SIZE) -> None:
        self.min_age = min_age
        self.source = source if source is not None else LocalSource(names)
        self.history_size = history_size
        self.refreshes = 0
        self._lock = threading.Lock()
        self._snapshot: dict[str, Any] = {}
        self._taken = float("-inf")
        self._history: dict[str, dict[str, deque]] = {}
        self.listeners: list[Any] = []  # called with each new snapshot (alerts, exports)
        self._trim = _release_freed_memory()

    @property
    def errors(self) -> dict[str, str]:
        """Why plugins that failed did so."""
        return getattr(self.source, "errors", {})

    def fresh(self) -> bool:
        """Whether the latest snapshot is younger than ``min_age`` (so snapshot() would not sample)."""
        return time.monotonic() - self._taken < self.min_age

    def snapshot(self) -> dict[str, Any]:
        """A snapshot no older than ``min_age`` (shared: do not modify)."""
        with self._lock:
            if time.monotonic() - self._taken >= self.min_age:
                self._snapshot = self.source.sample()
                self._taken = time.monotonic()
                self.refreshes += 1
                self._remember(self._snapshot)
                for listener in self.listeners:
                    listener(self._snapshot)
                self._trim()
            return self._snapshot

    def _remember(self, snapshot: dict[str, Any]) -> None:
        stamp = datetime.datetime.now().astimezone().isoformat()
        for name, value in snapshot.items():
            plugin = PLUGINS.get(name)
            if plugin is None:
                continue
            plugin_history = self._history.setdefault(name, {})
            for series, number in _history_series(plugin, value).items():
                plugin_history.setdefault(series, deque(maxlen=self.history_size)).append((stamp, number))

    def history(self, plugin: str, item: str | None = None, nb: int = 0) -> Any:
        """Glances's history payload: ``{series: [[iso time, value], ...]}``, or one series' list with ``item``."""
        with self._lock:
            plugin_history = self._history.get(plugin, {})

            def tail(points: deque) -> list[list[Any]]:
                picked = list(points)[-nb:] if nb > 0 else list(points)
                return [[stamp, value] for stamp, value in picked]

            if item is None:
                return {series: tail(points) for series, points in plugin_history.items()}
            return tail(plugin_history.get(item, deque()))
