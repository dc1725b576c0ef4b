"""Processes: processcount, processlist, programlist, amps, all from one scan of the process table per sample."""

from __future__ import annotations

import re
import time
from typing import Any

import psutil

from ..registry import LIST, Field, Plugin
from ._common import BYTES, PERCENT

# psutil's status names as the one-letter codes of ps(1) and Glances's process list.
STATUS_LETTERS = {
    getattr(psutil, f"STATUS_{name}"): letter
    for name, letter in (("RUNNING", "R"), ("SLEEPING", "S"), ("DISK_SLEEP", "D"), ("STOPPED", "T"),
                         ("TRACING_STOP", "t"), ("ZOMBIE", "Z"), ("DEAD", "X"), ("WAKE_KILL", "K"), ("WAKING", "W"),
                         ("IDLE", "I"), ("LOCKED", "L"), ("WAITING", "W"), ("PARKED", "P"))
    if hasattr(psutil, f"STATUS_{name}")  # psutil names only what the platform has
}
_ATTRIBUTES = ["pid", "name", "cmdline", "username", "status", "nice", "num_threads", "cpu_percent",
               "memory_percent", "memory_info", "cpu_times", "gids", "io_counters", "cpu_num"]


class ProcessScanner:
    """Reads every process once per call; keeps psutil's Process objects, so cpu_percent is since the last scan."""

    def __init__(self) -> None:
        self._io: dict[int, tuple[int, int]] = {}
        self._last = time.monotonic()
        # The first scan primes cpu_percent and the I/O counters, so the first sample measures something.
        self.scan()

    def scan(self) -> list[dict[str, Any]]:
        """Every process with Glances's keys (status as psutil names it: see status letters in the list plugin)."""
        now = time.monotonic()
        elapsed, self._last = now - self._last, now
        processes, io = [], {}
        for process in psutil.process_iter(_ATTRIBUTES, ad_value=None):
            info = dict(process.info)
            for name in ("memory_info", "cpu_times", "gids"):
                value = info.get(name)
                info[name] = value._asdict() if value is not None else None
            if info.get("memory_percent") is not None:
                info["memory_percent"] = round(info["memory_percent"], 2)
            counters = info.get("io_counters")
            if counters is not None:
                read, write = counters.read_bytes, counters.write_bytes
                before = self._io.get(info["pid"], (read, write))
                io[info["pid"]] = (read, write)
                # Glances's layout: [read, write, read before, write before, 1 = measured]
                info["io_counters"] = [read, write, before[0], before[1], 1]
            else:
                info["io_counters"] = [0, 0, 0, 0, 0]  # not readable (another user's process): last slot 0
            info["time_since_update"] = round(elapsed, 3)
            info["key"] = "pid"
            processes.append(info)
        self._io = io
        return processes


class ProcessCount(Plugin):
    name = "processcount"
    description = "Number of processes by state, and of threads."
    history = ("total", "running", "sleeping", "thread")
    fields = (
        Field("total", "Number of processes.", "number"),
        Field("running", "Processes running (R).", "number"),
        Field("sleeping", "Processes sleeping (S: interruptible sleep only, as Glances counts).", "number"),
        Field("thread", "Threads of all processes.", "number"),
        Field("pid_max", "Highest process id the system hands out (0 where unknown).", "number"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self.context.prime_processes()

    def collect(self) -> dict[str, Any]:
        processes = self.context.processes()
        return {
            "total": len(processes),
            "running": sum(1 for p in processes if p.get("status") == psutil.STATUS_RUNNING),
            "sleeping": sum(1 for p in processes if p.get("status") == psutil.STATUS_SLEEPING),
            "thread": sum(p.get("num_threads") or 0 for p in processes),
            "pid_max": _pid_max(),
        }


def _pid_max() -> int:
    try:
        with open("/proc/sys/kernel/pid_max", encoding="ascii") as handle:
            return int(handle.read().strip())
    except (OSError, ValueError):
        return 0


_PROCESS_FIELDS = (
    Field("pid", "Process id.", "number"),
    Field("name", "Process name.", "string"),
    Field("cmdline", "Command line, as a list of arguments.", "list"),
    Field("username", "Owner of the process.", "string"),
    Field("status", "Process status, one letter as ps shows it (R running, S sleeping, D disk sleep, Z zombie, "
          "T stopped, I idle, ...).", "string"),
    Field("nice", "Nice value.", "number"),
    Field("num_threads", "Number of threads.", "number"),
    Field("cpu_percent", "Percent of one CPU used since the previous update (can exceed 100).", PERCENT),
    Field("memory_percent", "Resident memory as a percent of physical memory.", PERCENT),
    Field("memory_info", "Memory of the process: rss (resident), vms (virtual), shared, ...", BYTES,
          subfields=("rss", "vms", "shared", "text", "lib", "data", "dirty")),
    Field("cpu_times", "CPU seconds: user, system, and those of waited-for children.", "seconds",
          subfields=("user", "system", "children_user", "children_system", "iowait")),
    Field("gids", "Group ids: real, effective, saved.", "number", subfields=("real", "effective", "saved")),
    Field("io_counters", "Bytes read and written since start, then the same at the previous update, then 1 "
          "(Glances's layout); all 0 where not readable (other users' processes without root).", "list"),
)


class ProcessList(Plugin):
    name = "processlist"
    description = "Every process, largest resident memory first."
    shape = LIST
    key = "pid"
    fields = (
        *_PROCESS_FIELDS,
        Field("cpu_num", "CPU it last ran on.", "number"),
        Field("time_since_update", "Seconds since the previous update.", "seconds"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self.context.prime_processes()

    def collect(self) -> list[dict[str, Any]]:
        entries = []
        for process in self.context.processes():
            entry = {name: process.get(name) for name in self.field_names()}
            entry["status"] = STATUS_LETTERS.get(entry["status"], "?") if entry["status"] else None
            entries.append(entry)
        entries.sort(key=lambda entry: -((entry["memory_info"] or {}).get("rss") or 0))
        return entries


def _add_fields(total: dict[str, Any] | None, addition: dict[str, Any] | None) -> dict[str, Any]:
    merged = dict(total or {})
    for name, value in (addition or {}).items():
        merged[name] = round(merged.get(name, 0) + (value or 0), 2)
    return merged


class ProgramList(Plugin):
    name = "programlist"
    description = "Processes grouped by name (a program's processes added up), largest resident memory first."
    shape = LIST
    key = "name"
    fields = (
        Field("name", "Program (process) name.", "string"),
        Field("cmdline", "The name again, as a one-item list (Glances's layout).", "list"),
        Field("pid", "'_': a program has several.", "string"),
        Field("username", "Owner of its processes, '_' if they differ.", "string"),
        Field("nprocs", "Number of its processes.", "number"),
        Field("num_threads", "Threads of all its processes.", "number"),
        Field("cpu_percent", "CPU of all its processes since the previous update.", PERCENT),
        Field("memory_percent", "Resident memory of all its processes, percent of physical memory.", PERCENT),
        Field("memory_info", "Memory of all its processes added up.", BYTES,
              subfields=("rss", "vms", "shared", "text", "lib", "data", "dirty")),
        Field("cpu_times", "CPU seconds of all its processes.", "seconds",
              subfields=("user", "system", "children_user", "children_system", "iowait")),
        Field("io_counters", "Bytes read and written by all its processes (processlist's layout).", "list"),
        Field("status", "Status letter of its processes, '_' if they differ.", "string"),
        Field("nice", "Nice value of its processes, '_' if they differ.", "number"),
        Field("childrens", "Pids of its processes (Glances's spelling).", "list"),
        Field("time_since_update", "Seconds since the previous update.", "seconds"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self.context.prime_processes()

    def collect(self) -> list[dict[str, Any]]:
        programs: dict[str, dict[str, Any]] = {}
        for process in self.context.processes():
            name = process.get("name") or "?"
            status = process.get("status")
            letter = STATUS_LETTERS.get(status, "?") if status else None
            io = list(process.get("io_counters") or (0, 0, 0, 0, 0))
            program = programs.get(name)
            if program is None:
                programs[name] = {
                    "name": name, "cmdline": [name], "pid": "_", "username": process.get("username"), "nprocs": 1,
                    "num_threads": process.get("num_threads") or 0, "cpu_percent": process.get("cpu_percent") or 0.0,
                    "memory_percent": process.get("memory_percent") or 0.0,
                    "memory_info": dict(process.get("memory_info") or {}),
                    "cpu_times": dict(process.get("cpu_times") or {}),
                    "io_counters": io, "status": letter, "nice": process.get("nice"), "childrens": [process.get("pid")],
                    "time_since_update": process.get("time_since_update")}
                continue
            program["nprocs"] += 1
            program["num_threads"] += process.get("num_threads") or 0
            program["cpu_percent"] = round(program["cpu_percent"] + (process.get("cpu_percent") or 0.0), 1)
            program["memory_percent"] = round(program["memory_percent"] + (process.get("memory_percent") or 0.0), 2)
            program["memory_info"] = _add_fields(program["memory_info"], process.get("memory_info"))
            program["cpu_times"] = _add_fields(program["cpu_times"], process.get("cpu_times"))
            # Sums of the byte counts; the last slot says "measured" and is kept as a flag, not added.
            program["io_counters"] = [a + b for a, b in zip(program["io_counters"][:4], io[:4])] + [
                max(program["io_counters"][4], io[4])]
            program["childrens"].append(process.get("pid"))
            for field, value in (("username", process.get("username")), ("nice", process.get("nice")),
                                 ("status", letter)):
                if program[field] != value:
                    program[field] = "_"
        return sorted(programs.values(), key=lambda program: -(program["memory_info"].get("rss") or 0))


class Amps(Plugin):
    name = "amps"
    description = ("Application monitors of the config ([amp_NAME] enable=true, regex=...): how many processes "
                   "match, against countmin/countmax. No command of the config is ever run.")
    shape = LIST
    key = "name"
    fields = (
        Field("name", "The monitor's name (NAME of [amp_NAME]).", "string"),
        Field("result", "What it found ('3 processes').", "string"),
        Field("refresh", "Seconds between two counts.", "seconds"),
        Field("timer", "Seconds until the next count.", "seconds"),
        Field("count", "Matching processes.", "number"),
        Field("countmin", "Fewest expected (null: no minimum).", "number"),
        Field("countmax", "Most expected (null: no maximum).", "number"),
        Field("regex", "Regular expression matched against the name and command line.", "string"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        config = self.context.config
        self._monitors = []
        for section, values in sorted(config.sections.items()):
            if not section.startswith("amp_") or not config.flag(section, "enable", False):
                continue
            try:
                regex = re.compile(values.get("regex", ".*"))
            except re.error:
                continue
            self._monitors.append({"name": section[len("amp_"):], "regex": regex,
                                   "refresh": config.number(section, "refresh", 60.0),
                                   "countmin": config.number(section, "countmin"),
                                   "countmax": config.number(section, "countmax")})
        self._counted: dict[str, tuple[float, int]] = {}

    def collect(self) -> list[dict[str, Any]]:
        entries = []
        now = time.monotonic()
        for monitor in self._monitors:
            when, count = self._counted.get(monitor["name"], (float("-inf"), 0))
            if now - when >= monitor["refresh"]:
                count = sum(1 for process in self.context.processes()
                            if monitor["regex"].search(" ".join(process.get("cmdline") or [process.get("name") or ""])))
                when = now
                self._counted[monitor["name"]] = (when, count)
            entries.append({"name": monitor["name"], "result": f"{count} process{'es' if count != 1 else ''}",
                            "refresh": monitor["refresh"], "timer": round(max(0.0, when + monitor["refresh"] - now), 1),
                            "count": count, "countmin": monitor["countmin"], "countmax": monitor["countmax"],
                            "regex": monitor["regex"].pattern})
        return entries
