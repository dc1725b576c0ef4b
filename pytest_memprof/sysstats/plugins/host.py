"""The host: now, system, uptime, core, version, psutilversion, help."""

from __future__ import annotations

import datetime
import platform
import socket
import struct
import time
from typing import Any

import psutil

from ... import __version__
from ..registry import VALUE, Field, Plugin

# Glances's default [now] strftime_format.
DEFAULT_NOW_FORMAT = "%Y-%m-%d %H:%M:%S %Z"


class Now(Plugin):
    name = "now"
    description = "Local date and time of the sample."
    fields = (
        Field("iso", "ISO 8601 with the UTC offset.", "iso8601"),
        Field("custom", "As [now] strftime_format of the config says (default '%Y-%m-%d %H:%M:%S %Z').", "string"),
    )

    def collect(self) -> dict[str, Any]:
        now = datetime.datetime.now().astimezone()
        text_format = self.context.config.get("now", "strftime_format", DEFAULT_NOW_FORMAT) or DEFAULT_NOW_FORMAT
        return {"iso": now.isoformat(timespec="seconds"), "custom": now.strftime(text_format)}


def _linux_distro() -> str:
    try:
        with open("/etc/os-release", encoding="utf-8") as handle:
            pairs = dict(line.rstrip("\n").split("=", 1) for line in handle if "=" in line)
    except OSError:
        return ""
    name = pairs.get("NAME", "").strip('"')
    version = pairs.get("VERSION_ID", "").strip('"')
    return f"{name} {version}".strip()


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


class Uptime(Plugin):
    name = "uptime"
    description = "Time since the system booted, as Glances shows it ('3 days, 4:05:06')."
    shape = VALUE
    unit = "duration"

    def collect(self) -> str:
        return str(datetime.timedelta(seconds=int(time.time() - psutil.boot_time())))


class Core(Plugin):
    name = "core"
    description = "Number of CPU cores."
    fields = (
        Field("phys", "Physical cores (hyper-threads not counted).", "number"),
        Field("log", "Logical CPUs (what the scheduler sees).", "number"),
    )

    def collect(self) -> dict[str, Any]:
        return {"phys": psutil.cpu_count(logical=False), "log": psutil.cpu_count()}


class Version(Plugin):
    name = "version"
    description = "Version of memprof that serves these stats."
    shape = VALUE
    unit = "string"

    def collect(self) -> str:
        return __version__


class PsutilVersion(Plugin):
    name = "psutilversion"
    description = "Version of psutil that reads them."
    shape = VALUE
    unit = "string"

    def collect(self) -> str:
        return ".".join(str(part) for part in psutil.version_info)


class Help(Plugin):
    name = "help"
    description = "The terminal view's hotkeys, and the versions."
    fields = (
        Field("version", "memprof's version.", "string"),
        Field("psutil_version", "psutil's version.", "string"),
        Field("configuration_file", "The config file read, if any.", "string"),
        Field("hotkeys", "Each hotkey and what it does.", "dict"),
    )

    def collect(self) -> dict[str, Any]:
        from ..hotkeys import HOTKEYS

        path = self.context.config.path
        return {"version": f"memprof {__version__}", "psutil_version": PsutilVersion().collect(),
                "configuration_file": str(path) if path else "", "hotkeys": dict(HOTKEYS)}
