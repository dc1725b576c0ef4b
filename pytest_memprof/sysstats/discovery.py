"""Zeroconf (mDNS) for ``memprof sys``: ``-s --announce`` announces a server as Glances's do
(``_glances._tcp.local.``), and ``--browser`` lists the servers announced, Glances's or ours.

Both stay on the network of ``--bind``: a server bound to 127.0.0.1 announces on loopback only, and
``--browser`` (whose ``--bind`` defaults to 127.0.0.1 too) looks only there unless told another
address; multicast onto a real network is something the user asks for, never a default. zeroconf is a
PyPI package (``pip install zeroconf``); without it, announcing is a usage error and the browser shows
the configured servers alone, saying why.
"""

from __future__ import annotations

import ipaddress
import socket
import time
from dataclasses import dataclass
from typing import Any

from ..errors import UsageError

SERVICE_TYPE = "_glances._tcp.local."


@dataclass(frozen=True)
class Announced:
    """A server found by zeroconf."""

    name: str
    address: str
    port: int
    protocol: str  # "rpc" (an -s server) or "rest" (a -w one), as Glances's announcements say


def _interfaces(bind: str) -> Any:
    from zeroconf import InterfaceChoice

    try:
        address = ipaddress.ip_address(bind)
    except ValueError:
        return [socket.gethostbyname(bind)]
    return InterfaceChoice.All if address.is_unspecified else [str(address)]


def _zeroconf(bind: str) -> Any:
    try:
        from zeroconf import IPVersion, Zeroconf
    except ImportError:
        raise UsageError("zeroconf is not installed (pip install zeroconf)") from None
    return Zeroconf(interfaces=_interfaces(bind), ip_version=IPVersion.V4Only)


def announce(bind: str, port: int, protocol: str) -> Any:
    """Announce a server on the network of ``bind``; returns a handle whose ``close()`` withdraws it."""
    from zeroconf import ServiceInfo

    zeroconf = _zeroconf(bind)
    address = "127.0.0.1" if ipaddress.ip_address(bind).is_unspecified else bind
    hostname = socket.gethostname()
    info = ServiceInfo(SERVICE_TYPE, f"{hostname}:{port}.{SERVICE_TYPE}", addresses=[socket.inet_aton(address)],
                       port=port, properties={"protocol": protocol}, server=f"{hostname}.local.")
    zeroconf.register_service(info, allow_name_change=True)

    class Handle:
        def close(self) -> None:
            zeroconf.unregister_service(info)
            zeroconf.close()

    return Handle()


def discover(bind: str, seconds: float = 1.5) -> list[Announced]:
    """The servers announced on the network of ``bind`` within ``seconds``."""
    from zeroconf import ServiceBrowser, ServiceListener

    zeroconf = _zeroconf(bind)
    names: list[str] = []

    class Listener(ServiceListener):
        def add_service(self, zc: Any, kind: str, name: str) -> None:
            names.append(name)

        def update_service(self, zc: Any, kind: str, name: str) -> None:
            pass

        def remove_service(self, zc: Any, kind: str, name: str) -> None:
            pass

    browser = ServiceBrowser(zeroconf, SERVICE_TYPE, Listener())
    try:
        time.sleep(seconds)
        found = []
        for name in dict.fromkeys(names):
            info = zeroconf.get_service_info(SERVICE_TYPE, name, timeout=1000)
            if info is None or not info.addresses:
                continue
            protocol = (info.properties or {}).get(b"protocol", b"rpc")
            found.append(Announced(name.removesuffix("." + SERVICE_TYPE), socket.inet_ntoa(info.addresses[0]),
                                   int(info.port or 0), (protocol or b"rpc").decode("ascii", "replace")))
        return found
    finally:
        browser.cancel()
        zeroconf.close()
