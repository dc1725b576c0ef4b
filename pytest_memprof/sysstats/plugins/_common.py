"""Helpers the collectors share: counters measured between two updates, as Glances measures them."""

from __future__ import annotations

from typing import Any

PERCENT = "percent"
BYTES = "bytes"


def per_second(count: float, elapsed: float, digits: int | None = 1) -> float:
    """A count over ``elapsed`` seconds as a rate; 0 before there is a previous update to compare with."""
    return round(count / elapsed, digits) if elapsed > 0 else 0.0


def counter_values(name: str, now: float, before: float | None, elapsed: float) -> dict[str, Any]:
    """``name`` (since the last update), ``name_gauge`` (since boot) and ``name_rate_per_sec`` of one counter."""
    delta = max(0, now - before) if before is not None else 0
    return {name: delta, f"{name}_gauge": now, f"{name}_rate_per_sec": per_second(delta, elapsed)}
