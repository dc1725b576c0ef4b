"""``--memprof-html DIR``: the session's HTML report, an index page linking per-test flame graphs.

Self-contained: the page embeds its style and script and links only to files inside DIR with
relative paths, so the folder works zipped, downloaded and opened from disk. Every value from
user code (node ids, paths) goes through Jinja2's autoescaping.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from pathlib import Path

import jinja2

from ..sizes import format_size
from .baseline import change_text
from .files import replace_atomically

_TEMPLATES = Path(__file__).with_name("templates")


# Charts are drawn in a 560x180 box: x from 4 to 556, y from 170 (0) to 20 (the top).
def _x(seconds: float, span: float) -> float:
    return 4 + 552 * min(max(seconds, 0.0), span) / span


def _rss_series(results: Sequence, sys_samples: Sequence[dict] | None,
                started_at: float) -> dict[str, list[tuple[float, int]]]:
    """(seconds since the session started, RSS bytes) per process that ran tests ("" without xdist).

    Each test gives its process's highest RSS while it ran (the tracker samples it every 10 ms),
    from its start to its end; --memprof-sys's samples of this process join the series where this
    process ran the tests, so the two charts are drawn from the same figures.
    """
    series: dict[str, list[tuple[float, int]]] = {}
    for result in results:
        rss, begun = getattr(result, "rss_bytes", 0), getattr(result, "started_at", 0.0)
        if not rss or not begun:
            continue
        start = begun - started_at
        points = series.setdefault(getattr(result, "worker", ""), [])
        points.extend(((start, rss), (start + max(result.duration_s, 0.0), rss)))
    if sys_samples and set(series) <= {""}:
        series.setdefault("", []).extend((sample["seconds"], sample["process_rss"]) for sample in sys_samples)
    return {name: sorted(points) for name, points in sorted(series.items())}


def _rss_chart(series: dict[str, list[tuple[float, int]]], span: float) -> dict | None:
    """SVG polylines (one per process) of the RSS series, with the top and the span as labels; None if empty."""
    if not any(series.values()):
        return None
    top = max(rss for points in series.values() for _, rss in points) or 1
    lines = [{"name": name or "pytest", "points": " ".join(f"{_x(t, span):.1f},{170 - 150 * rss / top:.1f}"
                                                         for t, rss in points)}
             for name, points in series.items() if points]
    return {"lines": lines, "max": format_size(top), "max_bytes": top, "duration": f"{span:.1f} s"}


def _sys_chart(samples: Sequence[dict] | None, rss: dict | None, series: dict[str, list[tuple[float, int]]],
               span: float) -> dict | None:
    """Min/max rows and SVG polylines (560x180 box, 0-100%) for --memprof-sys samples; None without them.

    The process's RSS line is the RSS chart's own series (same figures, same top, same span) when
    this process ran the tests; under xdist it is this process's (the controller's) samples."""
    if not samples:
        return None

    def line(value_of) -> str:
        return " ".join(f"{_x(s['seconds'], span):.1f},{170 - 1.5 * value_of(s):.1f}"
                        for s in samples) if len(samples) > 1 else ""

    rows = []
    for field, label, show in (("mem_used", "system memory used", format_size),
                               ("mem_percent", "system memory used (%)", lambda value: f"{value:.1f}%"),
                               ("memswap_used", "swap used", format_size),
                               ("cpu_total", "CPU busy", lambda value: f"{value:.1f}%")):
        values = [sample[field] for sample in samples]
        rows.append({"label": label, "min": show(min(values)), "max": show(max(values))})
    own = series.get("") if set(series) <= {""} else None
    if own and rss:
        rss_values = [value for _, value in own]
        rss_line = rss["lines"][0]["points"]
        rss_top = rss["max"]
    else:
        rss_values = [sample["process_rss"] for sample in samples]
        top = max(rss_values) or 1
        rss_line = line(lambda s: 100 * s["process_rss"] / top)
        rss_top = format_size(top)
    rows.append({"label": "pytest process RSS", "min": format_size(min(rss_values)),
                 "max": format_size(max(rss_values))})
    return {
        "rows": rows, "count": len(samples), "duration": f"{span:.1f} s",
        "mem": line(lambda s: s["mem_percent"]), "cpu": line(lambda s: s["cpu_total"]),
        "rss": rss_line, "rss_max": rss_top,
    }


def _relative(path: str | None, folder: Path) -> str | None:
    # A link from the index: relative, so the folder still works moved or zipped with its captures.
    return os.path.relpath(path, folder) if path else None


def write_index(folder: Path, results: Sequence, compared: bool, title: str,
                sys_samples: Sequence[dict] | None = None, started_at: float | None = None,
                ended_at: float | None = None) -> Path:
    """Write ``folder/index.html`` atomically and return its path; times are wall-clock (time.time()),
    ``started_at`` the session's start (default: the first test's)."""
    environment = jinja2.Environment(loader=jinja2.FileSystemLoader(str(_TEMPLATES)),
                                     autoescape=jinja2.select_autoescape(["html"]))
    ranked = sorted(results, key=lambda result: -result.peak_bytes)
    largest = max((result.peak_bytes for result in ranked), default=0) or 1
    top = [
        {"nodeid": result.nodeid, "peak": format_size(result.peak_bytes),
         "short": result.nodeid if len(result.nodeid) <= 60 else "..." + result.nodeid[-57:],
         "width": max(1, round(300 * result.peak_bytes / largest))}
        for result in ranked[:15]
    ]
    tests = []
    for result in ranked:
        outcome = result.outcome
        change = change_text(result.peak_bytes, result.baseline_peak_bytes) if compared else ""
        change_value = (
            (result.peak_bytes - result.baseline_peak_bytes) / result.baseline_peak_bytes
            if compared and result.baseline_peak_bytes else ""
        )
        flamegraph = getattr(result, "flamegraph_path", None)
        grew = getattr(result, "grew_path", None)
        tests.append({
            "nodeid": result.nodeid,
            "outcome": outcome,
            "outcome_text": "failed (memory)" if result.memory_failed else outcome,
            "memory_failed": result.memory_failed,
            "peak_bytes": result.peak_bytes, "peak": format_size(result.peak_bytes),
            "leaked_bytes": result.leaked_bytes, "leaked": format_size(result.leaked_bytes),
            "allocations": result.allocations, "allocations_text": f"{result.allocations:,}",
            "duration_s": result.duration_s, "duration": f"{result.duration_s:.3f} s",
            "gc_collections": result.gc_collections,
            "change": change, "change_value": change_value,
            "change_class": "up" if change.startswith("+") and change not in ("+0.0%", "+0%") else
            ("down" if change.startswith("-") else ""),
            "flamegraph": os.path.relpath(flamegraph, folder) if flamegraph else None,
            # Which view the page opens on: what the test failed on (leaks), else the peak.
            "flamegraph_view": getattr(result, "flamegraph_view", "peak"),
            "flamegraph_missing": "no capture was kept for this test",
            "grew": os.path.relpath(grew, folder) if grew else None,
            "capture": _relative(getattr(result, "capture_path", None), folder),
        })
    begun = [result.started_at for result in results if getattr(result, "started_at", 0.0)]
    if started_at is None:
        started_at = min(begun, default=time.time())
    series = _rss_series(results, sys_samples, started_at)
    # Both charts span the session: its start to its end (or to the last figure either has).
    last = max([t for points in series.values() for t, _ in points]
               + [sample["seconds"] for sample in sys_samples or []] + [0.0])
    span = max((ended_at - started_at) if ended_at is not None else 0.0, last, 1e-9)
    rss = _rss_chart(series, span)
    html = environment.get_template("index.html").render(
        title=title, tests=tests, top=top, compared=compared,
        failures=sum(result.memory_failed for result in results),
        highest_peak=format_size(ranked[0].peak_bytes) if ranked else "0 B",
        allocations=f"{sum(result.allocations for result in results):,}",
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        rss=rss, system=_sys_chart(sys_samples, rss, series, span),
        script=(_TEMPLATES / "index.js").read_text(encoding="utf-8"),
    )
    return replace_atomically(folder / "index.html", lambda partial: partial.write_text(html, encoding="utf-8"))
