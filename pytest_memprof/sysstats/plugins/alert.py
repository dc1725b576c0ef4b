"""The alert plugin: Glances's event log of thresholds crossed (begin, end, state, type, min/max/avg, top processes)."""

from __future__ import annotations

from typing import Any

from ..registry import LIST, Field, Plugin


class Alert(Plugin):
    name = "alert"
    description = ("Events: a figure above its careful/warning/critical threshold, from its begin to its end "
                   "(-1 while it lasts), newest first.")
    shape = LIST
    key = "id"
    fields = (
        Field("id", "The event's name: its begin time and type (1700000000_CPU_TOTAL).", "string"),
        Field("begin", "When it began (Unix time).", "timestamp"),
        Field("end", "When it ended (Unix time), -1 while it lasts.", "timestamp"),
        Field("state", "The worst level reached: CAREFUL, WARNING or CRITICAL.", "string"),
        Field("type", "What crossed its threshold (CPU_TOTAL, MEM, LOAD, FS_/, ...).", "string"),
        Field("max", "Highest value during the event.", "float"),
        Field("avg", "Average value during the event.", "float"),
        Field("min", "Lowest value during the event.", "float"),
        Field("sum", "Sum of the values (for the average).", "float"),
        Field("count", "Updates during the event.", "number"),
        Field("top", "Names of the processes using most of that resource when it began.", "list"),
        Field("desc", "Description.", "string"),
        Field("sort", "The process sort that fits the event (cpu_percent, memory_percent, io_counters).", "string"),
        Field("global_msg", "A one-line summary of the log.", "string"),
    )

    def collect(self) -> list[dict[str, Any]]:
        events = self.context.events
        return events.as_list() if events is not None else []
