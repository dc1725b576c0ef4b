"""The network: network, wifi, ip, ports."""

from __future__ import annotations

import socket
import struct
import time
from typing import Any

import psutil

from ..registry import LIST, Field, Plugin, rate_fields
from ._common import BYTES, counter_values


class Network(Plugin):
    name = "network"
    description = "Traffic of each network interface; lo, docker.* and interfaces that are down are hidden by default."
    shape = LIST
    key = "interface_name"
    history = ("bytes_recv_rate_per_sec", "bytes_sent_rate_per_sec")
    fields = (
        Field("interface_name", "Interface name.", "string"),
        Field("alias", "Interface alias, from [network] alias= of the config (none otherwise).", "string"),
        *rate_fields("bytes_recv", "Bytes received", BYTES),
        *rate_fields("bytes_sent", "Bytes sent", BYTES),
        *rate_fields("bytes_all", "Bytes received and sent", BYTES),
        Field("speed", "Interface speed in bits per second (0 where unknown).", "bits/s"),
        Field("is_up", "Whether the interface is up.", "bool"),
        Field("time_since_update", "Seconds since the previous update.", "seconds"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        self._counters = psutil.net_io_counters(pernic=True)
        self._elapsed()
        self._aliases = dict(pair.split(":", 1) for pair in
                             (self.context.config.get("network", "alias", "") or "").split(",") if ":" in pair)

    def collect(self) -> list[dict[str, Any]]:
        counters = psutil.net_io_counters(pernic=True)
        try:
            status = psutil.net_if_stats()
        except OSError:
            status = {}
        elapsed = self._elapsed()
        config = self.context.config
        hide_down = config.flag("network", "hide_no_up", True)
        entries = []
        for name, now in sorted(counters.items()):
            stat = status.get(name)
            alias = self._aliases.get(name)
            if config.hidden("network", name, alias) or (hide_down and stat is not None and not stat.isup):
                continue
            before = self._counters.get(name)
            entry: dict[str, Any] = {"interface_name": name, "alias": alias}
            entry.update(counter_values("bytes_recv", now.bytes_recv, before and before.bytes_recv, elapsed))
            entry.update(counter_values("bytes_sent", now.bytes_sent, before and before.bytes_sent, elapsed))
            entry.update(counter_values("bytes_all", now.bytes_recv + now.bytes_sent,
                                        before and before.bytes_recv + before.bytes_sent, elapsed))
            entry.update(speed=stat.speed * 1_000_000 if stat else 0, is_up=bool(stat.isup) if stat else None,
                         time_since_update=round(elapsed, 3))
            entries.append(entry)
        self._counters = counters
        return entries


class Wifi(Plugin):
    name = "wifi"
    description = "Signal of each wireless interface, from /proc/net/wireless (empty without one)."
    shape = LIST
    key = "ssid"
    fields = (
        Field("ssid", "The wireless interface (the network's name needs root tools; Glances shows the same).",
              "string"),
        Field("quality_link", "Link quality, as the driver counts it.", "number"),
        Field("quality_level", "Signal level.", "dBm"),
    )

    def collect(self) -> list[dict[str, Any]]:
        try:
            with open("/proc/net/wireless", encoding="ascii", errors="replace") as handle:
                lines = handle.readlines()[2:]
        except OSError:
            return []
        entries = []
        for line in lines:
            name, _, rest = line.partition(":")
            parts = rest.split()
            if len(parts) >= 3:
                try:
                    entries.append({"ssid": name.strip(), "quality_link": float(parts[1].rstrip(".")),
                                    "quality_level": float(parts[2].rstrip("."))})
                except ValueError:
                    continue
        return entries


def _default_gateway() -> tuple[str | None, str | None]:
    """(gateway address, interface) of the IPv4 default route, from /proc/net/route."""
    try:
        with open("/proc/net/route", encoding="ascii") as handle:
            for line in handle.readlines()[1:]:
                parts = line.split()
                if len(parts) > 2 and parts[1] == "00000000":
                    return socket.inet_ntoa(struct.pack("<L", int(parts[2], 16))), parts[0]
    except (OSError, ValueError):
        pass
    return None, None


class Ip(Plugin):
    name = "ip"
    description = ("IPv4 address of the interface holding the default route (no public address: we never ask "
                   "the Internet).")
    fields = (
        Field("address", "Private IPv4 address.", "string"),
        Field("mask", "Network mask.", "string"),
        Field("mask_cidr", "Network mask in CIDR form.", "number"),
        Field("gateway", "Default gateway.", "string"),
        Field("public_address", "Public address: always null here (finding it means asking a server outside).",
              "string"),
        Field("public_info_human", "Always empty here, for the same reason.", "string"),
    )

    def collect(self) -> dict[str, Any]:
        gateway, interface = _default_gateway()
        address = mask = None
        for candidate in psutil.net_if_addrs().get(interface or "", []):
            if candidate.family == socket.AF_INET:
                address, mask = candidate.address, candidate.netmask
                break
        cidr = sum(bin(int(part)).count("1") for part in mask.split(".")) if mask else None
        return {"address": address, "mask": mask, "mask_cidr": cidr, "gateway": gateway, "public_address": None,
                "public_info_human": ""}


class Ports(Plugin):
    name = "ports"
    description = "TCP ports and web URLs of the config's [ports] section, checked every `refresh` seconds."
    shape = LIST
    key = "indice"
    fields = (
        Field("indice", "The entry's name in the config (port_1, web_2, ...).", "string"),
        Field("host", "Host checked (TCP).", "string"),
        Field("port", "Port checked (TCP); 0 for a URL.", "number"),
        Field("url", "URL checked (web entries).", "string"),
        Field("description", "Description from the config.", "string"),
        Field("refresh", "Seconds between checks.", "seconds"),
        Field("timeout", "Seconds a check may take.", "seconds"),
        Field("status", "TCP: seconds the connection took, false if it failed, null before the first check. "
              "Web: the HTTP status code, or null.", "seconds"),
        Field("elapsed", "Web entries: seconds the request took.", "seconds"),
        Field("rtt_warning", "Seconds above which a check shows as a warning.", "seconds"),
    )

    def __init__(self, context: Any = None) -> None:
        super().__init__(context)
        config = self.context.config
        refresh = config.number("ports", "refresh", 30.0)
        timeout = config.number("ports", "timeout", 3.0)
        self._entries: list[dict[str, Any]] = []
        if config.flag("ports", "port_default_gateway", False):
            gateway, _ = _default_gateway()
            if gateway:
                self._entries.append(self._port_entry("port_0", {"host": gateway, "port": "0",
                                                                 "description": "DefaultGateway"}, refresh, timeout))
        for number, values in config.numbered("ports", "port"):
            if values.get("host"):
                self._entries.append(self._port_entry(f"port_{number}", values, refresh, timeout))
        for number, values in config.numbered("ports", "web"):
            if values.get("url"):
                entry = self._port_entry(f"web_{number}", values, refresh, timeout)
                entry.update(host=None, port=0, url=values["url"])
                self._entries.append(entry)
        self._checked: dict[str, float] = {}

    @staticmethod
    def _port_entry(indice: str, values: dict[str, str], refresh: float, timeout: float) -> dict[str, Any]:
        rtt = values.get("rtt_warning")
        return {"indice": indice, "host": values.get("host"), "port": int(values.get("port") or 0), "url": None,
                "description": values.get("description") or values.get("host") or values.get("url"),
                "refresh": float(values.get("refresh") or refresh), "timeout": float(values.get("timeout") or timeout),
                "status": None, "elapsed": None, "rtt_warning": int(rtt) / 1000.0 if rtt and rtt.isdigit() else None}

    def _check(self, entry: dict[str, Any]) -> None:
        started = time.monotonic()
        if entry["url"]:
            from urllib.parse import urlsplit

            from ..fetch import SourceUnavailable, request

            parts = urlsplit(entry["url"])
            try:
                tls = parts.scheme == "https"
                status, _, _ = request(parts.hostname or "", parts.port or (443 if tls else 80), "GET",
                                       parts.path or "/", timeout=entry["timeout"], limit=1 << 20, tls=tls)
            except SourceUnavailable:
                status = None
            entry.update(status=status, elapsed=round(time.monotonic() - started, 3))
            return
        if entry["port"] == 0:
            entry["status"] = None  # Glances pings the gateway; ping needs raw sockets, so we do not
            return
        try:
            socket.create_connection((entry["host"], entry["port"]), timeout=entry["timeout"]).close()
            entry["status"] = round(time.monotonic() - started, 4)
        except OSError:
            entry["status"] = False

    def collect(self) -> list[dict[str, Any]]:
        now = time.monotonic()
        for entry in self._entries:
            if now - self._checked.get(entry["indice"], float("-inf")) >= entry["refresh"]:
                self._checked[entry["indice"]] = now
                self._check(entry)
        return [dict(entry) for entry in self._entries]
