"""The processors: cpu, percpu, load, quicklook.

Percentages are measured between two calls of the same collector object (not through psutil's
process-wide ``cpu_percent`` state), so the pytest sampler, a server and a printer in one process do not
disturb each other's figures; the first call measures from the collector's creation.
"""

from __future__ import annotations

from typing import Any

import psutil

from ..registry import LIST, Field, Plugin, rate_fields
from ._common import PERCENT, counter_values

_CPU_TIME_FIELDS = (
    Field("user", "Percent of time spent in user space (programs' own code).", PERCENT),
    Field("system", "Percent of time spent in kernel space.", PERCENT),
    Field("idle", "Percent of time the CPU had nothing to do.", PERCENT),
    Field("nice", "(Unix) Percent of time spent running niced user processes.", PERCENT),
    Field("iowait", "(Linux) Percent of time waiting for I/O to complete.", PERCENT),
    Field("irq", "(Linux, BSD) Percent of time servicing hardware interrupts.", PERCENT),
    Field("softirq", "(Linux) Percent of time servicing software interrupts.", PERCENT),
    Field("steal", "(Linux) Percent of time a virtual CPU waited for a real one.", PERCENT),
    Field("guest", "(Linux) Percent of time running a virtual CPU for a guest system.", PERCENT),
    Field("guest_nice", "(Linux) Percent of time running a niced guest.", PERCENT),
)
_COUNTERS = ("ctx_switches", "interrupts", "soft_interrupts", "syscalls")


def cpu_percentages(before: Any, after: Any) -> dict[str, float]:
    """Each cpu_times field as a percent of the time elapsed between two psutil.cpu_times() samples."""
    names = [name for name in after._fields if hasattr(before, name)]
    deltas = {name: max(0.0, getattr(after, name) - getattr(before, name)) for name in names}
    # guest and guest_nice are already counted in user and nice on Linux: leave them out of the whole.
    whole = sum(value for name, value in deltas.items() if name not in ("guest", "guest_nice"))
    if whole <= 0:
        return {name: 0.0 for name in names} | {"total": 0.0}
    percent = {name: round(100.0 * value / whole, 1) for name, value in deltas.items()}
    # Busy time as psutil.cpu_percent counts it: everything but idle and iowait.
    busy = whole - deltas.get("idle", 0.0) - deltas.get("iowait", 0.0)
    percent["total"] = round(max(0.0, min(100.0, 100.0 * busy / whole)), 1)
    return percent


class Cpu(Plugin):
    name = "cpu"
    description = "CPU use of the whole machine since the previous update."
    history = ("total", "user", "system")
    fields = (
        Field("total", "Percent of time busy (all but idle and iowait), all CPUs together.", PERCENT),
        *_CPU_TIME_FIELDS[:9],
        *rate_fields("ctx_switches", "Context switches", "number"),
        *rate_fields("interrupts", "Interrupts", "number"),
        *rate_fields("soft_interrupts", "Software interrupts", "number"),
        *rate_fields("syscalls", "System calls (always 0 on Linux)", "number"),
        Field("cpucore", "Number of logical CPUs.", "number"),
        Field("time_since_update", "Seconds since the previous update.", "seconds"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._times = psutil.cpu_times()
        self._stats = psutil.cpu_stats()
        self._elapsed()

    def collect(self) -> dict[str, Any]:
        times, stats = psutil.cpu_times(), psutil.cpu_stats()
        elapsed = self._elapsed()
        percent = cpu_percentages(self._times, times)
        values: dict[str, Any] = {field.name: percent.get(field.name) for field in self.fields[:10]}
        for name in _COUNTERS:
            values.update(counter_values(name, getattr(stats, name), getattr(self._stats, name), elapsed))
        values.update(cpucore=psutil.cpu_count() or 1, time_since_update=round(elapsed, 3))
        self._times, self._stats = times, stats
        return values


class PerCpu(Plugin):
    name = "percpu"
    description = "CPU use of each logical CPU since the previous update."
    shape = LIST
    key = "cpu_number"
    history = ("user", "system")
    fields = (
        Field("cpu_number", "Logical CPU number.", "number"),
        Field("total", "Percent of time busy (all but idle and iowait).", PERCENT),
        *_CPU_TIME_FIELDS,
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._times = psutil.cpu_times(percpu=True)

    def collect(self) -> list[dict[str, Any]]:
        times = psutil.cpu_times(percpu=True)
        entries = []
        for number, (before, after) in enumerate(zip(self._times, times)):
            percent = cpu_percentages(before, after)
            entries.append({"cpu_number": number, **{field.name: percent.get(field.name) for field in self.fields[1:]}})
        self._times = times
        return entries


class Load(Plugin):
    name = "load"
    description = "Load average: processes running or waiting to run, averaged over 1, 5 and 15 minutes."
    history = ("min1", "min5", "min15")
    fields = (
        Field("min1", "Load average over 1 minute.", "float"),
        Field("min5", "Load average over 5 minutes.", "float"),
        Field("min15", "Load average over 15 minutes.", "float"),
        Field("cpucore", "Number of logical CPUs (a load above it means a queue).", "number"),
    )

    def collect(self) -> dict[str, Any]:
        min1, min5, min15 = psutil.getloadavg()
        return {"min1": round(min1, 2), "min5": round(min5, 2), "min15": round(min15, 2),
                "cpucore": psutil.cpu_count() or 1}


def _cpu_name() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as handle:
            for line in handle:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "CPU"


class QuickLook(Plugin):
    name = "quicklook"
    description = "The headline figures at a glance: CPU, each CPU, memory, swap and load as percents."
    history = ("cpu", "mem", "swap", "load")
    fields = (
        Field("cpu", "CPU busy, all CPUs together, since the previous update.", PERCENT),
        Field("percpu", "Each CPU: cpu_number, total, user, system, idle, ... (as in percpu).", "list"),
        Field("mem", "Physical memory in use.", PERCENT),
        Field("swap", "Swap in use.", PERCENT),
        Field("load", "1-minute load average as a percent of the logical CPUs.", PERCENT),
        Field("cpu_log_core", "Logical CPUs.", "number"),
        Field("cpu_phys_core", "Physical cores.", "number"),
        Field("cpu_name", "Processor model.", "string"),
        Field("cpu_hz_current", "Current clock (average of the CPUs), where the kernel says.", "hertz"),
        Field("cpu_hz", "Highest clock, where the kernel says.", "hertz"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._cpu = Cpu(context)
        self._percpu = PerCpu(context)
        self._name = _cpu_name()

    def collect(self) -> dict[str, Any]:
        cores = psutil.cpu_count() or 1
        try:
            frequency = psutil.cpu_freq()
        except (OSError, NotImplementedError):
            frequency = None
        percpu = self._percpu.collect()
        for entry in percpu:
            entry["key"] = PerCpu.key
        return {
            "cpu": self._cpu.collect()["total"], "percpu": percpu,
            "mem": psutil.virtual_memory().percent, "swap": psutil.swap_memory().percent,
            "load": round(100.0 * psutil.getloadavg()[0] / cores, 1),
            "cpu_log_core": cores, "cpu_phys_core": psutil.cpu_count(logical=False),
            "cpu_name": self._name,
            "cpu_hz_current": round(frequency.current * 1e6) if frequency and frequency.current else None,
            "cpu_hz": round(frequency.max * 1e6) if frequency and frequency.max else None,
        }
