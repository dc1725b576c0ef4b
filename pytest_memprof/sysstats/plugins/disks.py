"""Storage: diskio, fs, folders."""

from __future__ import annotations

import os
import time
from typing import Any

import psutil

from ..registry import LIST, Field, Plugin, rate_fields
from ._common import BYTES, PERCENT, counter_values

_DISK_COUNTERS = ("read_count", "write_count", "read_bytes", "write_bytes", "read_time", "write_time")


class DiskIO(Plugin):
    name = "diskio"
    description = "Reads and writes of each disk; loop devices are hidden by default."
    shape = LIST
    key = "disk_name"
    history = ("read_bytes_rate_per_sec", "write_bytes_rate_per_sec")
    fields = (
        Field("disk_name", "Disk name.", "string"),
        *rate_fields("read_count", "Reads", "number"),
        *rate_fields("write_count", "Writes", "number"),
        *rate_fields("read_bytes", "Bytes read", BYTES),
        *rate_fields("write_bytes", "Bytes written", BYTES),
        *rate_fields("read_time", "Milliseconds spent reading", "ms"),
        *rate_fields("write_time", "Milliseconds spent writing", "ms"),
        Field("read_latency", "Milliseconds per read since the previous update (0 without reads).", "ms"),
        Field("write_latency", "Milliseconds per write since the previous update (0 without writes).", "ms"),
        Field("time_since_update", "Seconds since the previous update.", "seconds"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._counters = psutil.disk_io_counters(perdisk=True) or {}
        self._elapsed()

    def collect(self) -> list[dict[str, Any]]:
        counters = psutil.disk_io_counters(perdisk=True) or {}
        elapsed = self._elapsed()
        entries = []
        for name, now in sorted(counters.items()):
            if self.context.config.hidden("diskio", name, f"/dev/{name}"):
                continue
            before = self._counters.get(name)
            entry: dict[str, Any] = {"disk_name": name}
            for counter in _DISK_COUNTERS:
                value = getattr(now, counter, 0)
                entry.update(counter_values(counter, value, getattr(before, counter, 0) if before else None, elapsed))
            entry["read_latency"] = round(entry["read_time"] / entry["read_count"], 2) if entry["read_count"] else 0
            entry["write_latency"] = round(entry["write_time"] / entry["write_count"], 2) if entry["write_count"] else 0
            entry["time_since_update"] = round(elapsed, 3)
            entries.append(entry)
        self._counters = counters
        return entries


class Fs(Plugin):
    name = "fs"
    description = "Mounted file systems and their use; /boot and snap mounts are hidden by default."
    shape = LIST
    key = "mnt_point"
    history = ("percent",)
    fields = (
        Field("device_name", "Device name.", "string"),
        Field("fs_type", "File system type.", "string"),
        Field("mnt_point", "Mount point.", "string"),
        Field("options", "Mount options.", "string"),
        Field("size", "Total size.", BYTES),
        Field("used", "Used size.", BYTES),
        Field("free", "Free size (for unprivileged users).", BYTES),
        Field("percent", "Percent used.", PERCENT),
    )

    def collect(self) -> list[dict[str, Any]]:
        entries = []
        for partition in psutil.disk_partitions(all=False):
            if self.context.config.hidden("fs", partition.mountpoint, partition.device):
                continue
            try:
                usage = psutil.disk_usage(partition.mountpoint)
            except OSError:  # unreadable or vanished mount: Glances skips it too
                continue
            entries.append({"device_name": partition.device, "fs_type": partition.fstype,
                            "mnt_point": partition.mountpoint, "options": partition.opts,
                            "size": usage.total, "used": usage.used, "free": usage.free,
                            "percent": usage.percent})
        return entries


# A folder walk stops here: a size is an estimate past it, and a sample must not take minutes.
MAX_FOLDER_ENTRIES = 200_000


def folder_size(path: str) -> tuple[int, int]:
    """(bytes, errno) of the files under ``path``, not following symbolic links; errno 0 when all was read."""
    total, error, seen = 0, 0, 0
    stack = [path]
    while stack and seen < MAX_FOLDER_ENTRIES:
        try:
            with os.scandir(stack.pop()) as entries:
                for entry in entries:
                    seen += 1
                    try:
                        if entry.is_dir(follow_symlinks=False):
                            stack.append(entry.path)
                        elif entry.is_file(follow_symlinks=False):
                            total += entry.stat(follow_symlinks=False).st_size
                    except OSError as problem:
                        error = problem.errno or error
        except OSError as problem:
            error = problem.errno or error
    return total, error


class Folders(Plugin):
    name = "folders"
    description = "Size of the folders of the config's [folders] section (folder_1_path=...), every `refresh` s."
    shape = LIST
    key = "path"
    fields = (
        Field("path", "Folder.", "string"),
        Field("size", "Bytes of the files under it.", BYTES),
        Field("refresh", "Seconds between two measurements.", "seconds"),
        Field("errno", "Error number of the last failure to read a part of it (0 if none).", "number"),
        Field("careful", "Size (MB) above which it is shown as careful.", "megabytes"),
        Field("warning", "Size (MB) above which it is shown as a warning.", "megabytes"),
        Field("critical", "Size (MB) above which it is shown as critical.", "megabytes"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        config = self.context.config
        self._entries = []
        for _, values in config.numbered("folders", "folder"):
            if values.get("path"):
                def number(key: str, values: dict[str, str] = values) -> float | None:
                    text = values.get(key)
                    return float(text) if text and text.replace(".", "", 1).isdigit() else None
                self._entries.append({"path": values["path"], "size": None,
                                      "refresh": number("refresh") or config.number("folders", "refresh", 60.0),
                                      "errno": 0, "careful": number("careful"), "warning": number("warning"),
                                      "critical": number("critical")})
        self._measured: dict[str, float] = {}

    def collect(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        for entry in self._entries:
            if now - self._measured.get(entry["path"], float("-inf")) >= entry["refresh"]:
                self._measured[entry["path"]] = now
                entry["size"], entry["errno"] = folder_size(os.path.expanduser(entry["path"]))
        return [dict(entry) for entry in self._entries]
