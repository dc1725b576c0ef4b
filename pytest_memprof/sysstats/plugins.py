"""The collectors: one class per Glances plugin, each declaring its fields, all reading psutil.

Rates and CPU percentages are measured between two calls of the same collector object (not through
psutil's process-wide ``cpu_percent`` state), so the pytest sampler, a web server and a printer in one
process do not disturb each other's figures.
"""

from __future__ import annotations

import datetime
import platform
import socket
import struct
import time
from typing import Any

import psutil

from .registry import LIST, VALUE, Field, Plugin

_PERCENT = "percent"
_BYTES = "bytes"

_CPU_TIME_FIELDS = (
    Field("user", "Percent of time spent in user space (programs' own code).", _PERCENT),
    Field("system", "Percent of time spent in kernel space.", _PERCENT),
    Field("idle", "Percent of time the CPU had nothing to do.", _PERCENT),
    Field("nice", "(Unix) Percent of time spent running niced user processes.", _PERCENT),
    Field("iowait", "(Linux) Percent of time waiting for I/O to complete.", _PERCENT),
    Field("irq", "(Linux, BSD) Percent of time servicing hardware interrupts.", _PERCENT),
    Field("softirq", "(Linux) Percent of time servicing software interrupts.", _PERCENT),
    Field("steal", "(Linux) Percent of time a virtual CPU waited for a real one.", _PERCENT),
    Field("guest", "(Linux) Percent of time running a virtual CPU for a guest system.", _PERCENT),
    Field("guest_nice", "(Linux) Percent of time running a niced guest.", _PERCENT),
)


def _per_second(count: float, elapsed: float, digits: int | None = 1) -> float:
    """A count over ``elapsed`` seconds as a rate; 0 before there is a previous sample to compare with."""
    return round(count / elapsed, digits) if elapsed > 0 else 0.0


def _cpu_percentages(before: Any, after: Any) -> dict[str, float]:
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


class Now(Plugin):
    name = "now"
    description = "Local date and time of the sample, ISO 8601 with the UTC offset."
    shape = VALUE
    unit = "iso8601"

    def collect(self) -> str:
        return datetime.datetime.now().astimezone().isoformat(timespec="seconds")


class System(Plugin):
    name = "system"
    description = "Host name and operating system."
    fields = (
        Field("os_name", "Operating system name.", "string"),
        Field("hostname", "Host name.", "string"),
        Field("platform", "Platform (32bit or 64bit).", "string"),
        Field("os_version", "Operating system version (the kernel release on Linux).", "string"),
        Field("linux_distro", "Linux distribution name and version (empty elsewhere).", "string"),
        Field("hr_name", "Human-readable operating system name.", "string"),
    )

    def collect(self) -> dict[str, Any]:
        os_name = platform.system()
        distro = _linux_distro() if os_name == "Linux" else ""
        # Pointer size, not platform.architecture(): that one runs `file` on the interpreter every call.
        bits = f"{struct.calcsize('P') * 8}bit"
        version = platform.release()
        human = f"{distro} {bits} / {os_name} {version}" if distro else f"{os_name} {version} {bits}"
        return {"os_name": os_name, "hostname": socket.gethostname(), "platform": bits,
                "os_version": version, "linux_distro": distro, "hr_name": human}


def _linux_distro() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            pairs = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        return ""
    name = pairs.get("NAME", "").strip('"')
    version = pairs.get("VERSION_ID", "").strip('"')
    return f"{name} {version}".strip()


class Uptime(Plugin):
    name = "uptime"
    description = "Time since the system booted, as Glances shows it ('3 days, 4:05:06')."
    shape = VALUE
    unit = "duration"

    def collect(self) -> str:
        return str(datetime.timedelta(seconds=int(time.time() - psutil.boot_time())))


class Cpu(Plugin):
    name = "cpu"
    description = "CPU use of the whole machine since the previous sample."
    history = ("user", "system")
    fields = (
        Field("total", "Percent of time busy (all but idle and iowait), all CPUs together.", _PERCENT),
        *_CPU_TIME_FIELDS[:9],
        Field("ctx_switches", "Context switches per second.", "number/s"),
        Field("interrupts", "Interrupts per second.", "number/s"),
        Field("soft_interrupts", "Software interrupts per second (0 on Windows).", "number/s"),
        Field("syscalls", "System calls per second (always 0 on Linux).", "number/s"),
        Field("cpucore", "Number of logical CPUs.", "number"),
        Field("time_since_update", "Seconds since the previous sample.", "seconds"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._times = psutil.cpu_times()
        self._stats = psutil.cpu_stats()
        self._elapsed()

    def collect(self) -> dict[str, Any]:
        times, stats = psutil.cpu_times(), psutil.cpu_stats()
        elapsed = self._elapsed()
        percent = _cpu_percentages(self._times, times)
        values: dict[str, Any] = {name: percent.get(name) for name in self.field_names()[:10]}
        for name in ("ctx_switches", "interrupts", "soft_interrupts", "syscalls"):
            values[name] = int(_per_second(getattr(stats, name) - getattr(self._stats, name), elapsed, None))
        values.update(cpucore=psutil.cpu_count() or 1, time_since_update=round(elapsed, 3))
        self._times, self._stats = times, stats
        return values


class PerCpu(Plugin):
    name = "percpu"
    description = "CPU use of each logical CPU since the previous sample."
    shape = LIST
    key = "cpu_number"
    fields = (
        Field("cpu_number", "Logical CPU number.", "number"),
        Field("total", "Percent of time busy (all but idle and iowait).", _PERCENT),
        *_CPU_TIME_FIELDS,
    )

    def __init__(self) -> None:
        super().__init__()
        self._times = psutil.cpu_times(percpu=True)

    def collect(self) -> list[dict[str, Any]]:
        times = psutil.cpu_times(percpu=True)
        entries = []
        for number, (before, after) in enumerate(zip(self._times, times)):
            percent = _cpu_percentages(before, after)
            entries.append({"cpu_number": number, **{name: percent.get(name) for name in self.field_names()[1:]}})
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


class Mem(Plugin):
    name = "mem"
    description = "Physical memory (RAM), as psutil.virtual_memory() reports it."
    history = ("percent",)
    fields = (
        Field("total", "Total physical memory.", _BYTES),
        Field("available", "Memory that can be given to processes at once without swapping.", _BYTES),
        Field("percent", "Percent in use: (total - available) / total.", _PERCENT),
        Field("used", "Memory used; computed differently on each platform, for information.", _BYTES),
        Field("free", "Memory not used at all (not the same as available).", _BYTES),
        Field("active", "(Unix) Memory in use or recently used.", _BYTES),
        Field("inactive", "(Unix) Memory marked as not used.", _BYTES),
        Field("buffers", "(Linux, BSD) Cache for file system metadata.", _BYTES),
        Field("cached", "(Linux, BSD) Cache for various things (page cache).", _BYTES),
        Field("wired", "(BSD, macOS) Memory that always stays in RAM.", _BYTES),
        Field("shared", "(Linux, BSD) Memory that several processes may access.", _BYTES),
    )

    def collect(self) -> dict[str, Any]:
        memory = psutil.virtual_memory()
        return {name: getattr(memory, name, None) for name in self.field_names()}


class MemSwap(Plugin):
    name = "memswap"
    description = "Swap space."
    history = ("percent",)
    fields = (
        Field("total", "Total swap space.", _BYTES),
        Field("used", "Swap in use.", _BYTES),
        Field("free", "Swap not in use.", _BYTES),
        Field("percent", "Percent of swap in use.", _PERCENT),
        Field("sin", "Bytes swapped in from disk since boot.", _BYTES),
        Field("sout", "Bytes swapped out to disk since boot.", _BYTES),
        Field("time_since_update", "Seconds since the previous sample.", "seconds"),
    )

    def collect(self) -> dict[str, Any]:
        swap = psutil.swap_memory()
        values = {name: getattr(swap, name, None) for name in self.field_names()[:6]}
        values["time_since_update"] = round(self._elapsed(), 3)
        return values


class Network(Plugin):
    name = "network"
    description = "Traffic of each network interface."
    shape = LIST
    key = "interface_name"
    fields = (
        Field("interface_name", "Interface name.", "string"),
        Field("alias", "Interface alias (none here: kept for Glances' field list).", "string"),
        Field("bytes_recv", "Bytes received since the previous sample.", _BYTES),
        Field("bytes_sent", "Bytes sent since the previous sample.", _BYTES),
        Field("bytes_all", "Bytes received and sent since the previous sample.", _BYTES),
        Field("bytes_recv_gauge", "Bytes received since the interface came up.", _BYTES),
        Field("bytes_sent_gauge", "Bytes sent since the interface came up.", _BYTES),
        Field("bytes_all_gauge", "Bytes received and sent since the interface came up.", _BYTES),
        Field("bytes_recv_rate_per_sec", "Bytes received per second.", "bytes/s"),
        Field("bytes_sent_rate_per_sec", "Bytes sent per second.", "bytes/s"),
        Field("bytes_all_rate_per_sec", "Bytes received and sent per second.", "bytes/s"),
        Field("speed", "Interface speed in bits per second (0 where unknown).", "bits/s"),
        Field("is_up", "Whether the interface is up.", "bool"),
        Field("time_since_update", "Seconds since the previous sample.", "seconds"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._counters = psutil.net_io_counters(pernic=True)
        self._elapsed()

    def collect(self) -> list[dict[str, Any]]:
        counters = psutil.net_io_counters(pernic=True)
        try:
            status = psutil.net_if_stats()
        except OSError:
            status = {}
        elapsed = self._elapsed()
        entries = []
        for name, now in sorted(counters.items()):
            before = self._counters.get(name, now)  # a new interface starts at 0, like the others did
            recv, sent = now.bytes_recv - before.bytes_recv, now.bytes_sent - before.bytes_sent
            stat = status.get(name)
            entries.append({
                "interface_name": name, "alias": None,
                "bytes_recv": recv, "bytes_sent": sent, "bytes_all": recv + sent,
                "bytes_recv_gauge": now.bytes_recv, "bytes_sent_gauge": now.bytes_sent,
                "bytes_all_gauge": now.bytes_recv + now.bytes_sent,
                "bytes_recv_rate_per_sec": _per_second(recv, elapsed),
                "bytes_sent_rate_per_sec": _per_second(sent, elapsed),
                "bytes_all_rate_per_sec": _per_second(recv + sent, elapsed),
                "speed": stat.speed * 1_000_000 if stat else 0, "is_up": bool(stat.isup) if stat else None,
                "time_since_update": round(elapsed, 3),
            })
        self._counters = counters
        return entries


class DiskIO(Plugin):
    name = "diskio"
    description = "Reads and writes of each disk."
    shape = LIST
    key = "disk_name"
    fields = (
        Field("disk_name", "Disk name.", "string"),
        Field("read_count", "Reads since boot.", "number"),
        Field("write_count", "Writes since boot.", "number"),
        Field("read_bytes", "Bytes read since boot.", _BYTES),
        Field("write_bytes", "Bytes written since boot.", _BYTES),
        Field("read_time", "Milliseconds spent reading since boot.", "ms"),
        Field("write_time", "Milliseconds spent writing since boot.", "ms"),
        Field("read_bytes_rate_per_sec", "Bytes read per second since the previous sample.", "bytes/s"),
        Field("write_bytes_rate_per_sec", "Bytes written per second since the previous sample.", "bytes/s"),
        Field("time_since_update", "Seconds since the previous sample.", "seconds"),
    )

    def __init__(self) -> None:
        super().__init__()
        self._counters = psutil.disk_io_counters(perdisk=True) or {}
        self._elapsed()

    def collect(self) -> list[dict[str, Any]]:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        elapsed = self._elapsed()
        entries = []
        for name, now in sorted(counters.items()):
            before = self._counters.get(name, now)
            entries.append({
                "disk_name": name, "read_count": now.read_count, "write_count": now.write_count,
                "read_bytes": now.read_bytes, "write_bytes": now.write_bytes,
                "read_time": getattr(now, "read_time", None), "write_time": getattr(now, "write_time", None),
                "read_bytes_rate_per_sec": _per_second(now.read_bytes - before.read_bytes, elapsed),
                "write_bytes_rate_per_sec": _per_second(now.write_bytes - before.write_bytes, elapsed),
                "time_since_update": round(elapsed, 3),
            })
        self._counters = counters
        return entries


class Fs(Plugin):
    name = "fs"
    description = "Mounted file systems and their use."
    shape = LIST
    key = "mnt_point"
    fields = (
        Field("device_name", "Device name.", "string"),
        Field("fs_type", "File system type.", "string"),
        Field("mnt_point", "Mount point.", "string"),
        Field("options", "Mount options.", "string"),
        Field("size", "Total size.", _BYTES),
        Field("used", "Used size.", _BYTES),
        Field("free", "Free size (for unprivileged users).", _BYTES),
        Field("percent", "Percent used.", _PERCENT),
    )

    def collect(self) -> list[dict[str, Any]]:
        entries = []
        for partition in psutil.disk_partitions(all=False):
            try:
                usage = psutil.disk_usage(partition.mountpoint)
            except OSError:  # unreadable or vanished mount: Glances skips it too
                continue
            entries.append({"device_name": partition.device, "fs_type": partition.fstype,
                            "mnt_point": partition.mountpoint, "options": partition.opts,
                            "size": usage.total, "used": usage.used, "free": usage.free,
                            "percent": usage.percent})
        return entries


class ProcessCount(Plugin):
    name = "processcount"
    description = "Number of processes by state, and of threads."
    fields = (
        Field("total", "Number of processes.", "number"),
        Field("running", "Processes running.", "number"),
        Field("sleeping", "Processes sleeping.", "number"),
        Field("thread", "Threads of all processes.", "number"),
        Field("pid_max", "Highest process id the system hands out (0 where unknown).", "number"),
    )

    def collect(self) -> dict[str, Any]:
        counts = {"total": 0, "running": 0, "sleeping": 0, "thread": 0}
        for process in psutil.process_iter(["status", "num_threads"]):
            counts["total"] += 1
            status = process.info.get("status")
            if status == psutil.STATUS_RUNNING:
                counts["running"] += 1
            elif status in (psutil.STATUS_SLEEPING, psutil.STATUS_IDLE, psutil.STATUS_DISK_SLEEP):
                counts["sleeping"] += 1
            counts["thread"] += process.info.get("num_threads") or 0
        return {**counts, "pid_max": _pid_max()}


def _pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return 0


class ProcessList(Plugin):
    name = "processlist"
    description = "The processes using the most memory (resident set size), largest first."
    shape = LIST
    key = "pid"
    fields = (
        Field("pid", "Process id.", "number"),
        Field("name", "Process name.", "string"),
        Field("cmdline", "Command line, as a list of arguments.", "list"),
        Field("username", "Owner of the process.", "string"),
        Field("status", "Process status (R running, S sleeping, ...).", "string"),
        Field("nice", "Nice value.", "number"),
        Field("num_threads", "Number of threads.", "number"),
        Field("cpu_percent", "Percent of one CPU used since the previous sample (can exceed 100).", _PERCENT),
        Field("memory_percent", "Resident memory as a percent of physical memory.", _PERCENT),
        Field("memory_info", "Memory of the process: rss (resident), vms (virtual), shared, ...", _BYTES,
              subfields=("rss", "vms", "shared", "text", "lib", "data", "dirty")),
    )
    # How many processes the list keeps: the question it answers is "who else uses the memory".
    top = 10

    def collect(self) -> list[dict[str, Any]]:
        attributes = ["pid", "name", "cmdline", "username", "status", "nice", "num_threads", "cpu_percent",
                      "memory_percent", "memory_info"]
        entries = []
        # process_iter keeps its Process objects between calls, so cpu_percent measures since the last call.
        for process in psutil.process_iter(attributes):
            info = dict(process.info)
            memory = info.get("memory_info")
            info["memory_info"] = memory._asdict() if memory is not None else None
            if info.get("memory_percent") is not None:
                info["memory_percent"] = round(info["memory_percent"], 2)
            entries.append(info)
        entries.sort(key=lambda info: -((info["memory_info"] or {}).get("rss") or 0))
        return [{name: info.get(name) for name in self.field_names()} for info in entries[: self.top]]


ALL_PLUGINS: tuple[type[Plugin], ...] = (
    Now, System, Uptime, Cpu, PerCpu, Load, Mem, MemSwap, Network, DiskIO, Fs, ProcessCount, ProcessList,
)
PLUGINS: dict[str, type[Plugin]] = {plugin.name: plugin for plugin in ALL_PLUGINS}

