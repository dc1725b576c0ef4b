"""``memprof.conf``: the ``[serverlist]`` that ``memprof sys --browser`` shows, in Glances' layout.

```
[serverlist]
server_1_name=build-box.example.org
server_1_alias=Build box
server_1_port=61209
```
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError
from .source import DEFAULT_SERVER_PORT


@dataclass(frozen=True)
class ServerEntry:
    """One server of the list: where it is and what to call it."""

    name: str
    port: int
    alias: str


def config_paths() -> list[Path]:
    """Where memprof.conf is looked for, first found wins: per user, then system-wide."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [config_home / "memprof" / "memprof.conf", Path("/etc/memprof/memprof.conf")]


def find_config(explicit: str | None) -> Path | None:
    """The config file to read: ``-C FILE`` (which must exist), else the first of config_paths()."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError(f"-C {explicit}: no such file")
        return path
    return next((path for path in config_paths() if path.is_file()), None)


def read_serverlist(path: Path) -> list[ServerEntry]:
    """The ``[serverlist]`` entries of a config file, in their number order."""
    parser = configparser.ConfigParser(interpolation=None)
    try:
        parser.read(path, encoding="utf-8")
    except (configparser.Error, UnicodeDecodeError) as error:
        first = str(error).splitlines()[0]
        raise UsageError(f"{path}: not a valid config file: {first}") from None
    if not parser.has_section("serverlist"):
        return []
    section = parser["serverlist"]
    numbers = sorted({int(match.group(1)) for key in section
                      if (match := re.fullmatch(r"server_(\d+)_name", key))})
    servers = []
    for number in numbers:
        name = section[f"server_{number}_name"].strip()
        port_text = section.get(f"server_{number}_port", str(DEFAULT_SERVER_PORT)).strip()
        try:
            port = int(port_text)
        except ValueError:
            raise UsageError(f"{path}: server_{number}_port is not a number: {port_text!r}") from None
        servers.append(ServerEntry(name, port, section.get(f"server_{number}_alias", "").strip() or name))
    return servers
