"""The terminal view's hotkeys, Glances's letters: one table for the view, its help screen and ``/api/4/help``."""

from __future__ import annotations

# (key, what it does), in the order the help screen lists them.
HOTKEYS: tuple[tuple[str, str], ...] = (
    ("a", "sort processes automatically (CPU, or memory when memory is short)"),
    ("c", "sort processes by CPU %"),
    ("m", "sort processes by memory (resident set size)"),
    ("p", "sort processes by name"),
    ("i", "sort processes by I/O rate"),
    ("t", "sort processes by CPU time"),
    ("u", "sort processes by user"),
    ("/", "filter processes by a regular expression (on name and command line); empty clears it"),
    ("Enter", "the same filter (Glances's key for it)"),
    ("E", "erase the filter"),
    ("k", "kill the selected process (asks first)"),
    ("1", "one line per CPU / all CPUs together"),
    ("d", "show / hide disk I/O"),
    ("n", "show / hide network"),
    ("f", "show / hide file systems"),
    ("s", "show / hide sensors"),
    ("l", "show / hide the alerts"),
    ("z", "show / hide everything but the processes"),
    ("h", "show / hide this help"),
    ("q", "quit (also Esc)"),
)
HELP: dict[str, str] = {f"key_{'slash' if key == '/' else key}": text for key, text in HOTKEYS}
