"""The line printers: ``--stdout``, ``--stdout-csv`` and ``--stdout-json``, generic over every plugin.

Each printer is fed one snapshot per refresh and writes to a text stream; none knows any plugin by name.
"""

from __future__ import annotations

import csv
import json
from typing import Any, TextIO

from ..terminal import printable
from .selection import MISSING, Column, Selector, Snapshot, check_entries, columns, items, nested

# Version of the --stdout-json objects (and of the web API's payloads): bumped when a field changes meaning.
SCHEMA_VERSION = 1
SCHEMA_KEY = "schema_version"
NOT_AVAILABLE = "N/A"




def visible(text: str) -> str:
    """``text`` with control characters written out (``\\x1b``): process names and command lines come from
    any user of the machine and must not retitle, clear or recolour the terminal they are printed to
    (the rule every terminal view follows: ``terminal.printable``)."""
    return printable(text)


class Printer:
    """Writes one refresh of the selected stats."""

    def __init__(self, selectors: list[Selector], stream: TextIO) -> None:
        self.selectors = selectors
        self.stream = stream
        self.refreshes = 0

    def refresh(self, snapshot: Snapshot) -> None:
        """Write the selected values of one snapshot."""
        if self.refreshes == 0:
            check_entries(self.selectors, snapshot)
        self._write(snapshot)
        self.refreshes += 1
        self.stream.flush()

    def _write(self, snapshot: Snapshot) -> None:
        raise NotImplementedError


class StdoutPrinter(Printer):
    """``cpu.user: 30.7`` lines; a whole plugin prints its dict, a list plugin one line per entry."""

    def _write(self, snapshot: Snapshot) -> None:
        for selector in self.selectors:
            for name, value in items(selector, snapshot):
                # repr() of a dict or list already escapes the strings inside; a bare string is escaped here.
                self.stream.write(visible(f"{name}: {NOT_AVAILABLE if value is MISSING else value}") + "\n")


def csv_cell(value: Any) -> str:
    """A value as one CSV cell: N/A when missing or unknown, a list's items joined by spaces."""
    if value is MISSING or value is None:
        return NOT_AVAILABLE
    if isinstance(value, (list, tuple)):
        if any(isinstance(item, (dict, list, tuple)) for item in value):
            return json.dumps(value, sort_keys=True, default=str)  # quicklook.percpu: entries, not words
        return " ".join(str(item) for item in value)
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    return str(value)


class CsvPrinter(Printer):
    """A header, then one row per refresh; the columns never change after the header is written."""

    def __init__(self, selectors: list[Selector], stream: TextIO) -> None:
        super().__init__(selectors, stream)
        self.writer = csv.writer(stream, lineterminator="\n")
        self.columns: list[Column] = []

    def _write(self, snapshot: Snapshot) -> None:
        if self.refreshes == 0:
            self.columns = columns(self.selectors, snapshot)
            self.writer.writerow([column.header for column in self.columns])
        cells = [csv_cell(column.read(snapshot)) for column in self.columns]
        if self.stream.isatty():  # into a file the cells stay as they are; onto a screen they must not act
            cells = [visible(cell) for cell in cells]
        self.writer.writerow(cells)


class JsonPrinter(Printer):
    """One JSON object per refresh and line: ``{"schema_version": 1, "cpu": {...}, "mem": {...}}``."""

    def _write(self, snapshot: Snapshot) -> None:
        document = {SCHEMA_KEY: SCHEMA_VERSION, **nested(self.selectors, snapshot)}
        self.stream.write(json.dumps(document, default=str) + "\n")


PRINTERS: dict[str, type[Printer]] = {"stdout": StdoutPrinter, "stdout_csv": CsvPrinter, "stdout_json": JsonPrinter}
