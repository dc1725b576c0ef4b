"""Hardware and engines: sensors (psutil), gpu (NVIDIA through nvidia-ml-py), containers (Docker/Podman API socket).

A plugin whose source is absent here (no GPU, no container engine) is disabled with the reason in its
``disabled`` attribute and ``/api/4/status``; it reports an empty list, which is not an error.
"""

from __future__ import annotations

import http.client
import os
import socket
import time
from typing import Any

import psutil

from ..fetch import SourceUnavailable, decode_json, request
from ..registry import LIST, Field, Plugin
from ._common import BYTES, PERCENT, per_second


class Sensors(Plugin):
    name = "sensors"
    description = "Temperatures, fan speeds and the battery, as psutil reads them from the kernel."
    shape = LIST
    key = "label"
    fields = (
        Field("label", "Sensor name (chip and label).", "string"),
        Field("unit", "C (degrees Celsius), R (revolutions per minute) or % (battery).", "string"),
        Field("value", "The reading.", "number"),
        Field("warning", "Reading the hardware calls high (null where it says nothing).", "number"),
        Field("critical", "Reading the hardware calls critical (null where it says nothing).", "number"),
        Field("type", "temperature_core, fan_speed or battery.", "string"),
    )

    def collect(self) -> list[dict[str, Any]]:
        entries: list[dict[str, Any]] = []
        readers = (("sensors_temperatures", "temperature_core", "C"), ("sensors_fans", "fan_speed", "R"))
        for reader, kind, unit in readers:
            try:
                groups = getattr(psutil, reader)() if hasattr(psutil, reader) else {}
            except (OSError, RuntimeError):
                groups = {}
            for chip, readings in sorted(groups.items()):
                for number, reading in enumerate(readings):
                    label = f"{chip} {reading.label}" if reading.label else (chip if len(readings) == 1
                                                                            else f"{chip} {number}")
                    entries.append({"label": label, "unit": unit, "value": reading.current,
                                    "warning": getattr(reading, "high", None),
                                    "critical": getattr(reading, "critical", None), "type": kind})
        try:
            battery = psutil.sensors_battery() if hasattr(psutil, "sensors_battery") else None
        except (OSError, RuntimeError):
            battery = None
        if battery is not None:
            entries.append({"label": "Battery", "unit": "%", "value": round(battery.percent, 1), "warning": None,
                            "critical": None, "type": "battery"})
        return [entry for entry in entries if not self.context.config.hidden("sensors", entry["label"])]


class Gpu(Plugin):
    name = "gpu"
    description = "NVIDIA GPUs through nvidia-ml-py (disabled, with the reason, where there is none)."
    shape = LIST
    key = "gpu_id"
    history = ("proc", "mem")
    fields = (
        Field("gpu_id", "GPU identifier (nvidia0, ...).", "string"),
        Field("name", "GPU model.", "string"),
        Field("mem", "Memory in use.", PERCENT),
        Field("proc", "Processor busy.", PERCENT),
        Field("temperature", "Temperature.", "celsius"),
        Field("fan_speed", "Fan speed, as a percent of its maximum.", PERCENT),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._nvml: Any = None
        try:
            import pynvml
        except ImportError:
            self.disabled = "nvidia-ml-py is not installed (pip install nvidia-ml-py)"
            return
        try:
            pynvml.nvmlInit()
        except Exception as error:  # pynvml raises NVMLError subclasses, or OSError without libnvidia-ml
            self.disabled = f"no NVIDIA driver or GPU ({type(error).__name__}: {error})"
            return
        self._nvml = pynvml

    def collect(self) -> list[dict[str, Any]]:
        if self._nvml is None:
            return []
        nvml = self._nvml
        entries = []
        for index in range(nvml.nvmlDeviceGetCount()):
            device = nvml.nvmlDeviceGetHandleByIndex(index)

            def read(function: Any, *args: Any, device: Any = device) -> Any:
                try:
                    return function(device, *args)
                except Exception:  # a figure the card does not report (fan on a passively cooled card)
                    return None

            name = read(nvml.nvmlDeviceGetName)
            memory = read(nvml.nvmlDeviceGetMemoryInfo)
            usage = read(nvml.nvmlDeviceGetUtilizationRates)
            entries.append({
                "gpu_id": f"nvidia{index}", "name": name.decode() if isinstance(name, bytes) else name,
                "mem": round(100.0 * memory.used / memory.total, 1) if memory and memory.total else None,
                "proc": usage.gpu if usage else None,
                "temperature": read(nvml.nvmlDeviceGetTemperature, nvml.NVML_TEMPERATURE_GPU),
                "fan_speed": read(nvml.nvmlDeviceGetFanSpeed),
            })
        return entries


class _UnixConnection(http.client.HTTPConnection):
    """HTTP over a Unix socket: how Docker and Podman serve their API."""

    def __init__(self, path: str, timeout: float) -> None:
        super().__init__("localhost", timeout=timeout)
        self.socket_path = path

    def connect(self) -> None:
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.sock.settimeout(self.timeout)
        self.sock.connect(self.socket_path)


def container_sockets() -> list[tuple[str, str]]:
    """(engine, socket path) candidates: $DOCKER_HOST (unix://), Docker's and Podman's usual sockets."""
    candidates = []
    host = os.environ.get("DOCKER_HOST", "")
    if host.startswith("unix://"):
        candidates.append(("docker", host[len("unix://"):]))
    candidates.append(("docker", "/var/run/docker.sock"))
    candidates.append(("podman", "/run/podman/podman.sock"))
    runtime = os.environ.get("XDG_RUNTIME_DIR")
    if runtime:
        candidates.append(("podman", os.path.join(runtime, "podman", "podman.sock")))
    return candidates


class Containers(Plugin):
    name = "containers"
    description = "Docker and Podman containers, through the engine's API socket (disabled without one)."
    shape = LIST
    key = "name"
    history = ("cpu_percent",)
    fields = (
        Field("name", "Container name.", "string"),
        Field("id", "Container id.", "string"),
        Field("image", "Image.", "string"),
        Field("status", "State (running, exited, ...).", "string"),
        Field("created", "When it was created (ISO 8601).", "iso8601"),
        Field("command", "Command it runs.", "string"),
        Field("cpu_percent", "CPU used since the previous update, as a percent of one CPU.", PERCENT),
        Field("memory_usage", "Memory in use (page cache not counted).", BYTES),
        Field("memory_limit", "Memory limit.", BYTES),
        Field("memory_inactive_file", "Inactive page cache.", BYTES),
        Field("io_rx", "Bytes read from block devices per second.", "bytes/s"),
        Field("io_wx", "Bytes written to block devices per second.", "bytes/s"),
        Field("network_rx", "Bits received per second.", "bits/s"),
        Field("network_tx", "Bits sent per second.", "bits/s"),
        Field("uptime", "Engine's own words for how long it has run ('Up 2 hours').", "string"),
        Field("engine", "docker or podman.", "string"),
    )

    def __init__(self, context: Any = None, timeout: float = 2.0) -> None:
        super().__init__(context)
        self.timeout = timeout
        self._engines = [(engine, path) for engine, path in container_sockets() if os.path.exists(path)]
        if not self._engines:
            self.disabled = "no Docker or Podman API socket (" + ", ".join(p for _, p in container_sockets()) + ")"
        self._previous: dict[str, tuple[float, dict[str, Any]]] = {}

    def _get(self, path: str, api: str) -> Any:
        status, _, body = request("localhost", 0, "GET", api, timeout=self.timeout,
                                  connection=_UnixConnection(path, self.timeout))
        if status != 200:
            raise OSError(f"the container API answered HTTP {status} for {api}")
        return decode_json(body, "the container API's reply")

    def _entry(self, engine: str, path: str, container: dict[str, Any]) -> dict[str, Any]:
        ident = str(container.get("Id", ""))
        names = container.get("Names") or [ident[:12]]
        created = container.get("Created")
        entry: dict[str, Any] = {
            "name": str(names[0]).lstrip("/"), "id": ident, "image": container.get("Image"),
            "status": container.get("State"), "command": container.get("Command"),
            "created": time.strftime("%Y-%m-%dT%H:%M:%S%z", time.localtime(created)) if isinstance(created, int)
            else created, "uptime": container.get("Status"), "engine": engine,
            "cpu_percent": None, "memory_usage": None, "memory_limit": None, "memory_inactive_file": None,
            "io_rx": None, "io_wx": None, "network_rx": None, "network_tx": None,
        }
        if entry["status"] != "running":
            return entry
        stats = self._get(path, f"/containers/{ident}/stats?stream=false&one-shot=true")
        memory = stats.get("memory_stats") or {}
        inactive = (memory.get("stats") or {}).get("inactive_file") or (memory.get("stats") or {}).get(
            "total_inactive_file") or 0
        entry.update(memory_usage=(memory.get("usage") or 0) - inactive, memory_limit=memory.get("limit"),
                     memory_inactive_file=inactive)
        now = time.monotonic()
        cpu = stats.get("cpu_stats") or {}
        networks = stats.get("networks") or {}
        io = (stats.get("blkio_stats") or {}).get("io_service_bytes_recursive") or []
        counters = {
            "cpu": (cpu.get("cpu_usage") or {}).get("total_usage") or 0, "system": cpu.get("system_cpu_usage") or 0,
            "cpus": cpu.get("online_cpus") or len((cpu.get("cpu_usage") or {}).get("percpu_usage") or []) or 1,
            "rx": sum(n.get("rx_bytes", 0) for n in networks.values()),
            "tx": sum(n.get("tx_bytes", 0) for n in networks.values()),
            "read": sum(i.get("value", 0) for i in io if str(i.get("op")).lower() == "read"),
            "write": sum(i.get("value", 0) for i in io if str(i.get("op")).lower() == "write"),
        }
        previous = self._previous.get(ident)
        self._previous[ident] = (now, counters)
        if previous is not None:
            elapsed, before = now - previous[0], previous[1]
            system = counters["system"] - before["system"]
            if system > 0:
                entry["cpu_percent"] = round(100.0 * counters["cpus"] * (counters["cpu"] - before["cpu"]) / system, 1)
            entry.update(network_rx=per_second(8 * (counters["rx"] - before["rx"]), elapsed),
                         network_tx=per_second(8 * (counters["tx"] - before["tx"]), elapsed),
                         io_rx=per_second(counters["read"] - before["read"], elapsed),
                         io_wx=per_second(counters["write"] - before["write"], elapsed))
        return entry

    def collect(self) -> list[dict[str, Any]]:
        entries = []
        show_all = self.context.config.flag("containers", "all", False)
        for engine, path in self._engines:
            try:
                listed = self._get(path, "/containers/json" + ("?all=1" if show_all else ""))
                for container in listed if isinstance(listed, list) else []:
                    entries.append(self._entry(engine, path, container))
            except (OSError, ValueError, SourceUnavailable):
                continue  # an engine that stopped or misbehaves: the others still count, the next sample retries
        return entries
