"""Exports, Glances's most used: ``--export csv`` (``--export-csv-file``), ``--export json``
(``--export-json-file``) and ``--export prometheus`` (``/metrics`` in the Prometheus text format).

The CSV and JSON exports write every numeric and text plugin at each refresh through the same printers
as ``--stdout-csv``/``--stdout-json`` (so the CSV's columns are fixed by its header). The process and
program lists and the alert log are left out of them, as a row per process per refresh is a log, not a
table. Prometheus gauges are named as Glances names them, ``{prefix}_{plugin}_{field}`` with the list
entry as a label (``glances_network_bytes_recv{interface_name="eth0"}``), so dashboards built on
Glances's exporter keep working; ``[prometheus] prefix=`` and ``labels=`` of the config change them.
"""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any, TextIO

from ..errors import UsageError
from .plugins import PLUGINS
from .registry import DICT, LIST, VALUE

EXPORTS = ("csv", "json", "prometheus")
# Lists whose rows are processes or events: not columns of a table.
NOT_EXPORTED = ("processlist", "programlist", "alert", "help")
DEFAULT_PROMETHEUS_PORT = 9091


def exported_plugins() -> list[str]:
    """The plugins the CSV and JSON exports write."""
    return [name for name in PLUGINS if name not in NOT_EXPORTED]


class FileExport:
    """CSV or JSON lines into a file, one refresh per row or line."""

    def __init__(self, kind: str, path: str) -> None:
        from .printers import CsvPrinter, JsonPrinter
        from .selection import parse_list

        try:
            self.stream: TextIO = Path(path).open("w", encoding="utf-8", newline="")
        except OSError as error:
            raise UsageError(f"--export-{kind}-file {path}: {error.strerror or error}") from None
        printer = CsvPrinter if kind == "csv" else JsonPrinter
        self.printer = printer(parse_list(",".join(exported_plugins())), self.stream)
        self.path = path

    def __call__(self, snapshot: dict[str, Any]) -> None:
        """Write one refresh."""
        self.printer.refresh(snapshot)

    def close(self) -> None:
        """Close the file."""
        self.stream.close()


_NAME = re.compile(r"[^a-zA-Z0-9_:]")


def _metric_name(*parts: str) -> str:
    name = _NAME.sub("_", "_".join(parts))
    return f"_{name}" if name[:1].isdigit() else name


def _label_value(text: Any) -> str:
    return str(text).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return 1.0 if value else 0.0
    if isinstance(value, (int, float)) and math.isfinite(value):
        return float(value)
    return None


def prometheus_text(snapshot: dict[str, Any], config: Any = None) -> str:
    """The snapshot's numeric figures in the Prometheus text exposition format (version 0.0.4)."""
    prefix = (config.get("prometheus", "prefix") if config is not None else None) or "glances"
    label_text = (config.get("prometheus", "labels") if config is not None else None) or "src:memprof"
    base_labels = [tuple(part.split(":", 1)) for part in label_text.split(",") if ":" in part]
    metrics: dict[str, tuple[str, list[str]]] = {}
    for name, value in snapshot.items():
        plugin = PLUGINS.get(name)
        if plugin is None or plugin.shape == VALUE or name in NOT_EXPORTED or value is None:
            continue
        entries = [(None, value)] if plugin.shape == DICT else [(entry.get(plugin.key), entry) for entry in value]
        for key, entry in entries:
            if not isinstance(entry, dict):
                continue
            for field in plugin.fields:
                number = _number(entry.get(field.name))
                if number is None or field.name == plugin.key:
                    continue
                metric = _metric_name(prefix, name, field.name)
                labels = list(base_labels)
                if plugin.shape == LIST:
                    labels.append((plugin.key, key))
                rendered = ",".join(f'{_metric_name(label)}="{_label_value(text)}"' for label, text in labels)
                help_text = field.description.replace("\\", "\\\\").replace("\n", " ")
                metrics.setdefault(metric, (help_text, []))[1].append(f"{metric}{{{rendered}}} {number!r}")
    lines = []
    for metric, (help_text, samples) in metrics.items():
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge", *samples]
    return "\n".join(lines) + "\n"


def parse_exports(names: list[str] | None, csv_file: str | None, json_file: str | None) -> list[str]:
    """The export names asked for (``--export csv,json`` or repeated), checked; each file export needs its file."""
    chosen: list[str] = []
    for text in names or []:
        for name in (part.strip() for part in text.split(",")):
            if name not in EXPORTS:
                raise UsageError(f"--export {name}: exports are {', '.join(EXPORTS)}")
            chosen.append(name)
    if "csv" in chosen and not csv_file:
        raise UsageError("--export csv needs --export-csv-file FILE")
    if "json" in chosen and not json_file:
        raise UsageError("--export json needs --export-json-file FILE")
    if (csv_file and "csv" not in chosen) or (json_file and "json" not in chosen):
        raise UsageError("--export-csv-file / --export-json-file go with --export csv / --export json")
    return list(dict.fromkeys(chosen))


def start_prometheus_server(latest: Any, config: Any, host: str = "127.0.0.1", port: int | None = None) -> Any:
    """Serve ``/metrics`` from ``latest()`` (the last snapshot) in a background thread; returns the uvicorn server."""
    import asyncio
    import threading

    import uvicorn
    from starlette.applications import Starlette
    from starlette.responses import Response
    from starlette.routing import Route

    from .web import bind_socket

    host = (config.get("prometheus", "host") if config is not None else None) or host
    if port is None:
        port = int((config.number("prometheus", "port", DEFAULT_PROMETHEUS_PORT) if config is not None
                    else DEFAULT_PROMETHEUS_PORT) or DEFAULT_PROMETHEUS_PORT)
    listener = bind_socket(host, port)

    async def metrics(request: Any) -> Any:
        return Response(prometheus_text(latest(), config), media_type="text/plain; version=0.0.4")

    app = Starlette(routes=[Route("/metrics", metrics)])
    server = uvicorn.Server(uvicorn.Config(app, lifespan="off", access_log=False, log_level="critical",
                                           server_header=False))
    server.bound = listener.getsockname()[:2]  # type: ignore[attr-defined]
    threading.Thread(target=lambda: asyncio.run(server.serve(sockets=[listener])), name="memprof-sys-prometheus",
                     daemon=True).start()
    return server
