"""``memprof.conf``: Glances's ``glances.conf`` layout, read for the sections that mean the same here.

```
[cpu]
user_careful=50
user_warning=70
user_critical=90
[network]
hide=docker.*,lo
[serverlist]
server_1_name=build-box.example.org
server_1_port=61209
```

Looked for as ``-C FILE``, else memprof.conf per user then system-wide, else Glances's own glances.conf
per user then system-wide, so a Glances user's thresholds, hidden interfaces, folders, ports and
servers carry over. Sections and keys we do not use are ignored, as Glances ignores those it does not know.
"""

from __future__ import annotations

import configparser
import os
import re
from dataclasses import dataclass
from pathlib import Path

from ..errors import UsageError

DEFAULT_SERVER_PORT = 61209

# What Glances hides when its config does not say otherwise (its shipped glances.conf says the same).
DEFAULT_HIDE: dict[str, str] = {"network": "docker.*,lo", "diskio": "loop.*,/dev/loop.*", "fs": "/boot.*,.*/snap.*",
                                "sensors": "unknown.*"}
DEFAULT_VALUES: dict[str, dict[str, str]] = {"network": {"hide_no_up": "True"}}


@dataclass(frozen=True)
class ServerEntry:
    """One server of the list: where it is and what to call it."""

    name: str
    port: int
    alias: str


def config_paths() -> list[Path]:
    """Where the config is looked for, first found wins: memprof.conf per user and system-wide, then glances.conf."""
    config_home = Path(os.environ.get("XDG_CONFIG_HOME") or Path.home() / ".config")
    return [config_home / "memprof" / "memprof.conf", Path("/etc/memprof/memprof.conf"),
            config_home / "glances" / "glances.conf", Path("/etc/glances/glances.conf")]


def find_config(explicit: str | None) -> Path | None:
    """The config file to read: ``-C FILE`` (which must exist), else the first of config_paths()."""
    if explicit:
        path = Path(explicit)
        if not path.is_file():
            raise UsageError(f"-C {explicit}: no such file")
        return path
    return next((path for path in config_paths() if path.is_file()), None)


class SysConfig:
    """The sections of a config file as strings, with Glances's defaults where the file says nothing."""

    def __init__(self, sections: dict[str, dict[str, str]] | None = None, path: Path | None = None) -> None:
        self.path = path
        self.sections: dict[str, dict[str, str]] = {name: dict(values) for name, values in (sections or {}).items()}

    @classmethod
    def load(cls, explicit: str | None = None) -> SysConfig:
        """The config of ``-C FILE`` or the first one found; an empty one if there is none."""
        path = find_config(explicit)
        if path is None:
            return cls()
        parser = configparser.ConfigParser(interpolation=None, strict=False)
        try:
            parser.read(path, encoding="utf-8")
        except (configparser.Error, UnicodeDecodeError) as error:
            first = str(error).splitlines()[0]
            raise UsageError(f"{path}: not a valid config file: {first}") from None
        return cls({name: dict(parser[name]) for name in parser.sections()}, path)

    def get(self, section: str, key: str, default: str | None = None) -> str | None:
        """A value as written (stripped), else Glances's default for it, else ``default``."""
        value = self.sections.get(section, {}).get(key)
        if value is None:
            value = DEFAULT_VALUES.get(section, {}).get(key)
        if value is None and key == "hide":
            value = DEFAULT_HIDE.get(section)
        return default if value is None else value.strip()

    def flag(self, section: str, key: str, default: bool = False) -> bool:
        """A true/false value (Glances writes True/False)."""
        value = self.get(section, key)
        return default if value is None else value.lower() in ("1", "true", "yes", "on")

    def number(self, section: str, key: str, default: float | None = None) -> float | None:
        """A number; one that does not parse is a usage error naming the file, section and key."""
        value = self.get(section, key)
        if value is None or value == "":
            return default
        try:
            return float(value)
        except ValueError:
            raise UsageError(f"{self.path or 'config'}: [{section}] {key}={value!r} is not a number") from None

    def patterns(self, section: str, key: str = "hide") -> list[re.Pattern[str]]:
        """A comma-separated list of regular expressions (Glances's ``hide=``/``show=``), each matching whole names."""
        text = self.get(section, key) or ""
        compiled = []
        for pattern in (part.strip() for part in text.split(",")):
            if not pattern:
                continue
            try:
                compiled.append(re.compile(pattern))
            except re.error as error:
                where = f"{self.path or 'config'}: [{section}] {key}"
                raise UsageError(f"{where}: bad pattern {pattern!r}: {error}") from None
        return compiled

    def hidden(self, section: str, *names: str | None) -> bool:
        """Whether an entry (any of its names: interface and alias, device and mount point) is hidden."""
        shown = self.patterns(section, "show")
        candidates = [name for name in names if name]
        if shown and not any(pattern.fullmatch(name) for pattern in shown for name in candidates):
            return True
        return any(pattern.fullmatch(name) for pattern in self.patterns(section) for name in candidates)

    def numbered(self, section: str, prefix: str) -> list[tuple[int, dict[str, str]]]:
        """Glances's numbered entries: ``port_1_host``, ``port_1_port``... as (1, {"host": ..., "port": ...})."""
        entries: dict[int, dict[str, str]] = {}
        for key, value in self.sections.get(section, {}).items():
            match = re.fullmatch(rf"{re.escape(prefix)}_(\d+)_(\w+)", key)
            if match:
                entries.setdefault(int(match.group(1)), {})[match.group(2)] = value.strip()
        return sorted(entries.items())

    def as_dict(self) -> dict[str, dict[str, str]]:
        """Every section as written (for ``/api/4/config``), passwords left out."""
        return {name: {key: value for key, value in values.items() if "password" not in key}
                for name, values in self.sections.items() if name != "passwords"}


def read_serverlist(path: Path) -> list[ServerEntry]:
    """The ``[serverlist]`` entries of a config file, in their number order."""
    return serverlist(SysConfig.load(str(path)))


def serverlist(config: SysConfig) -> list[ServerEntry]:
    """The ``[serverlist]`` entries of a loaded config, in their number order."""
    servers = []
    for number, entry in config.numbered("serverlist", "server"):
        if not entry.get("name"):
            continue
        port_text = entry.get("port", str(DEFAULT_SERVER_PORT))
        try:
            port = int(port_text)
        except ValueError:
            raise UsageError(f"{config.path}: server_{number}_port is not a number: {port_text!r}") from None
        servers.append(ServerEntry(entry["name"], port, entry.get("alias") or entry["name"]))
    return servers
