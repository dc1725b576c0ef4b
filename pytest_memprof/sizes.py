"""Size strings such as ``"10MB"`` or ``"1.5 GiB"``, as markers and options accept them."""

from __future__ import annotations

import math
import re

from .errors import UsageError

# KB/MB/GB/TB are powers of 1024, as in pytest-memray; the IEC spellings mean the same.
_UNITS = {
    "B": 1,
    "KB": 1024,
    "MB": 1024**2,
    "GB": 1024**3,
    "TB": 1024**4,
    "KIB": 1024,
    "MIB": 1024**2,
    "GIB": 1024**3,
    "TIB": 1024**4,
}
ACCEPTED_UNITS = "B, KB, MB, GB, TB (powers of 1024; KiB, MiB, GiB, TiB are the same)"
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?|\.\d+)\s*([A-Za-z]*)\s*$")


def parse_size(value: object) -> int:
    """Return a size in bytes from an int of bytes or a string like ``"10MB"``."""
    if isinstance(value, bool):
        raise UsageError(f"invalid memory size {value!r}: expected a number with a unit")
    if isinstance(value, int):
        if value < 0:
            raise UsageError(f"invalid memory size {value!r}: must not be negative")
        return value
    if isinstance(value, float):
        if not math.isfinite(value):  # inf would overflow int(), and nan compares as nothing
            raise UsageError(f"invalid memory size {value!r}: must be a finite number of bytes")
        if value < 0:
            raise UsageError(f"invalid memory size {value!r}: must not be negative")
        return int(value)
    if not isinstance(value, str):
        raise UsageError(f"invalid memory size {value!r}: expected a string such as '10MB'")
    match = _SIZE_RE.match(value)
    if not match:
        raise UsageError(f"invalid memory size {value!r}: expected a number and a unit of {ACCEPTED_UNITS}")
    number, unit = match.groups()
    factor = _UNITS.get(unit.upper() if unit else "B")
    if factor is None:
        raise UsageError(f"invalid memory size {value!r}: unknown unit {unit!r}; use {ACCEPTED_UNITS}")
    return int(float(number) * factor)


def format_size(num_bytes: float) -> str:
    """Return a short human form such as ``"50.0 MiB"`` (binary units)."""
    value = float(num_bytes)
    sign = "-" if value < 0 else ""
    value = abs(value)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{sign}{value:.0f} {unit}" if unit == "B" else f"{sign}{value:.1f} {unit}"
        value /= 1024
    raise AssertionError("unreachable")
