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


def _rss_points(samples: Sequence[tuple[float, int]]) -> tuple[str, str, str]:
    """An SVG polyline for (seconds, rss bytes) samples in a 560x180 box, with its labels."""
    if len(samples) < 2:
        return "", "", ""
    start = samples[0][0]
    span = max(samples[-1][0] - start, 1e-9)
    top = max(rss for _, rss in samples) or 1
    points = " ".join(f"{4 + 552 * (t - start) / span:.1f},{170 - 150 * rss / top:.1f}" for t, rss in samples)
    return points, format_size(top), f"{span:.1f} s"


def _sys_chart(samples: Sequence[dict] | None) -> dict | None:
    """Min/max rows and SVG polylines (560x180 box, 0-100%) for --memprof-sys samples; None without them."""
    if not samples:
        return None
    start, end = samples[0]["seconds"], samples[-1]["seconds"]
    span = max(end - start, 1e-9)
    top_rss = max(sample["process_rss"] for sample in samples) or 1

    def line(value_of) -> str:
        return " ".join(f"{4 + 552 * (s['seconds'] - start) / span:.1f},{170 - 1.5 * value_of(s):.1f}"
                        for s in samples) if len(samples) > 1 else ""

    rows = []
    for field, label, show in (("mem_used", "system memory used", format_size),
                               ("mem_percent", "system memory used (%)", lambda value: f"{value:.1f}%"),
                               ("memswap_used", "swap used", format_size),
                               ("cpu_total", "CPU busy", lambda value: f"{value:.1f}%"),
                               ("process_rss", "pytest process RSS", format_size)):
        values = [sample[field] for sample in samples]
        rows.append({"label": label, "min": show(min(values)), "max": show(max(values))})
    return {
        "rows": rows, "count": len(samples), "duration": f"{span:.1f} s",
        "mem": line(lambda s: s["mem_percent"]), "cpu": line(lambda s: s["cpu_total"]),
        "rss": line(lambda s: 100 * s["process_rss"] / top_rss), "rss_max": format_size(top_rss),
    }


def _relative(path: str | None, folder: Path) -> str | None:
    # A link from the index: relative, so the folder still works moved or zipped with its captures.
    return os.path.relpath(path, folder) if path else None


def write_index(folder: Path, results: Sequence, rss_samples: Sequence[tuple[float, int]],
                compared: bool, title: str, sys_samples: Sequence[dict] | None = None) -> Path:
    """Write ``folder/index.html`` atomically and return its path."""
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
            "flamegraph_missing": "no capture was kept for this test",
            "capture": _relative(getattr(result, "capture_path", None), folder),
        })
    points, rss_max, rss_duration = _rss_points(rss_samples)
    html = environment.get_template("index.html").render(
        title=title, tests=tests, top=top, compared=compared,
        failures=sum(result.memory_failed for result in results),
        highest_peak=format_size(ranked[0].peak_bytes) if ranked else "0 B",
        allocations=f"{sum(result.allocations for result in results):,}",
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        rss_points=points, rss_max=rss_max, rss_duration=rss_duration, system=_sys_chart(sys_samples),
        script=(_TEMPLATES / "index.js").read_text(encoding="utf-8"),
    )
    return replace_atomically(folder / "index.html", lambda partial: partial.write_text(html, encoding="utf-8"))
