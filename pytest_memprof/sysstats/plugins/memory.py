"""Memory: mem and memswap."""

from __future__ import annotations

from typing import Any

import psutil

from ..registry import Field, Plugin
from ._common import BYTES, PERCENT


class Mem(Plugin):
    name = "mem"
    description = "Physical memory (RAM), as psutil.virtual_memory() reports it."
    history = ("percent",)
    fields = (
        Field("total", "Total physical memory.", BYTES),
        Field("available", "Memory that can be given to processes at once without swapping.", BYTES),
        Field("percent", "Percent in use: (total - available) / total.", PERCENT),
        Field("used", "Memory used; computed differently on each platform, for information.", BYTES),
        Field("free", "Memory not used at all (not the same as available).", BYTES),
        Field("active", "(Unix) Memory in use or recently used.", BYTES),
        Field("inactive", "(Unix) Memory marked as not used.", BYTES),
        Field("buffers", "(Linux, BSD) Cache for file system metadata.", BYTES),
        Field("cached", "(Linux, BSD) Cache for various things (page cache).", BYTES),
        Field("wired", "(BSD, macOS) Memory that always stays in RAM.", BYTES),
        Field("shared", "(Linux, BSD) Memory that several processes may access.", BYTES),
    )

    def collect(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        return {name: getattr(memory, name, None) for name in self.field_names()}


class MemSwap(Plugin):
    name = "memswap"
    description = "Swap space."
    history = ("percent",)
    fields = (
        Field("total", "Total swap space.", BYTES),
        Field("used", "Swap in use.", BYTES),
        Field("free", "Swap not in use.", BYTES),
        Field("percent", "Percent of swap in use.", PERCENT),
        Field("sin", "Bytes swapped in from disk since boot.", BYTES),
        Field("sout", "Bytes swapped out to disk since boot.", BYTES),
        Field("time_since_update", "Seconds since the previous update.", "seconds"),
    )

    def collect(self) -> dict[str, Any]:
        swap = psutil.swap_memory()
        values = {name: getattr(swap, name, None) for name in self.field_names()[:6]}
        values["time_since_update"] = round(self._elapsed(), 3)
        return values
