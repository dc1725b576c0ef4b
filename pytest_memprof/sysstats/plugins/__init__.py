"""The collectors: one class per Glances plugin that works on Linux, with Glances's names and meanings.

Each declares its fields once (registry.Field); printers, the API and the views work from the declarations.
"""

from __future__ import annotations

from ..registry import Plugin
from .alert import Alert
from .cpu import Cpu, Load, PerCpu, QuickLook, cpu_percentages
from .devices import Containers, Gpu, Sensors
from .disks import DiskIO, Folders, Fs
from .host import Core, Help, Now, PsutilVersion, System, Uptime, Version
from .memory import Mem, MemSwap
from .network import Ip, Network, Ports, Wifi
from .processes import Amps, ProcessCount, ProcessList, ProgramList

# In the order a reader meets them; alert comes last because it reads the others' figures.
ALL_PLUGINS: tuple[type[Plugin], ...] = (
    Now, System, Uptime, Version, PsutilVersion, Core, Cpu, PerCpu, Load, QuickLook, Mem, MemSwap, Network, Wifi,
    Ip, DiskIO, Fs, Folders, Sensors, Gpu, Containers, ProcessCount, ProcessList, ProgramList, Amps, Ports, Help,
    Alert,
)
PLUGINS: dict[str, type[Plugin]] = {plugin.name: plugin for plugin in ALL_PLUGINS}

__all__ = ["ALL_PLUGINS", "PLUGINS", "Alert", "Amps", "Containers", "Core", "Cpu", "DiskIO", "Folders", "Fs", "Gpu",
           "Help", "Ip", "Load", "Mem", "MemSwap", "Network", "Now", "PerCpu", "Ports", "ProcessCount", "ProcessList",
           "ProgramList", "PsutilVersion", "QuickLook", "Sensors", "System", "Uptime", "Version", "Wifi",
           "cpu_percentages"]
