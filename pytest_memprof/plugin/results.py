"""Per-test results, and their round trip through report properties (which xdist carries)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field

from ..model import StackStat
from .verdict import Failure

PREFIX = "memprof_"


@dataclass
class TestMemoryResult:
    """What one tracked test used: stored in ``item.stash`` and passed to the result hook."""

    __test__ = False  # not a test class, despite the name

    nodeid: str
    peak_bytes: int
    leaked_bytes: int
    allocations: int
    total_bytes: int
    duration_s: float
    gc_collections: int = 0
    gc_freed_bytes: int = 0
    gc_collected_objects: int = 0
    limit_bytes: int | None = None
    leak_limit_bytes: int | None = None
    memory_failed: bool = False
    failures: list[Failure] = field(default_factory=list)
    peak_stacks: list[StackStat] = field(default_factory=list)
    leak_stacks: list[StackStat] = field(default_factory=list)
    capture_path: str | None = None
    csv_name: str = ""
    flamegraph_path: str | None = None
    grew_path: str | None = None  # --memprof-html with a baseline: the "what grew" page (diff flame graph)
    location_summary: dict | None = None  # with --memprof-save-baseline: ci/baseline.location_summary
    flamegraph_view: str = "peak"  # the view the page shows (outputs.page_view)
    rss_bytes: int = 0  # the process's highest RSS while the test ran (0: not known)
    started_at: float = 0.0  # when the test started, on the wall clock (time.time())
    worker: str = ""  # the xdist worker that ran it ("" without xdist)
    failure_kinds: list[str] = field(default_factory=list)  # FailureKind names, carried to where JUnit is written
    capture_error: str | None = None  # why the capture file could not be written (OutputLog says it once)
    flamegraph_error: str | None = None  # why the test's page could not be written
    baseline_peak_bytes: int | None = None  # None: not compared, or not in the baseline
    in_baseline: bool | None = None  # None: no baseline given
    # Filled from the test's reports where they are collected (the xdist controller too):
    outcome: str = "passed"
    failure_text: str | None = None  # the failure message, when the test failed on memory
    location: tuple[str, int] | None = None  # (path relative to the rootdir, 1-based line) of the test

    def properties(self) -> list[tuple[str, object]]:
        """The figures as (name, value) pairs for ``user_properties`` (and so JUnit XML)."""
        pairs: list[tuple[str, object]] = [
            ("memprof_peak_bytes", self.peak_bytes),
            ("memprof_leaked_bytes", self.leaked_bytes),
            ("memprof_allocations", self.allocations),
            ("memprof_total_bytes", self.total_bytes),
            ("memprof_gc_collections", self.gc_collections),
            ("memprof_gc_freed_bytes", self.gc_freed_bytes),
        ]
        if self.limit_bytes is not None:
            pairs.append(("memprof_limit_bytes", self.limit_bytes))
        if self.leak_limit_bytes is not None:
            pairs.append(("memprof_leak_limit_bytes", self.leak_limit_bytes))
        if self.memory_failed:
            pairs.append(("memprof_memory_failed", 1))
            kinds = [failure.kind.name for failure in self.failures] or self.failure_kinds
            if kinds:
                pairs.append(("memprof_failure_kinds", ",".join(kinds)))
        if self.rss_bytes:
            pairs.append(("memprof_rss_bytes", self.rss_bytes))
        if self.started_at:
            pairs.append(("memprof_started_at", round(self.started_at, 6)))
        if self.worker:
            pairs.append(("memprof_worker", self.worker))
        if self.capture_path:
            pairs.append(("memprof_capture", self.capture_path))
        if self.flamegraph_path:
            pairs.append(("memprof_flamegraph", self.flamegraph_path))
            pairs.append(("memprof_flamegraph_view", self.flamegraph_view))
        if self.grew_path:
            pairs.append(("memprof_grew_flamegraph", self.grew_path))
        if self.capture_error:
            pairs.append(("memprof_capture_error", self.capture_error))
        if self.flamegraph_error:
            pairs.append(("memprof_flamegraph_error", self.flamegraph_error))
        if self.in_baseline is not None:
            pairs.append(("memprof_in_baseline", int(self.in_baseline)))
        if self.baseline_peak_bytes is not None:
            pairs.append(("memprof_baseline_peak_bytes", self.baseline_peak_bytes))
        if self.location_summary is not None:
            # JSON text: a property value must survive xdist's transport and JUnit as one string.
            pairs.append(("memprof_locations", json.dumps(self.location_summary, separators=(",", ":"))))
        return pairs

    @classmethod
    def from_properties(cls, nodeid: str, properties: Sequence[tuple[str, object]], csv_name: str = "",
                        duration_s: float = 0.0) -> TestMemoryResult | None:
        """Rebuild the figures from report properties (on the xdist controller); None if absent."""
        values = {name[len(PREFIX):]: value for name, value in properties
                  if isinstance(name, str) and name.startswith(PREFIX)}
        if "peak_bytes" not in values:
            return None

        def number(key: str, default: int = 0) -> int:
            try:
                return int(values.get(key, default))  # type: ignore[arg-type]
            except (TypeError, ValueError):
                return default

        return cls(
            nodeid=nodeid,
            peak_bytes=number("peak_bytes"),
            leaked_bytes=number("leaked_bytes"),
            allocations=number("allocations"),
            total_bytes=number("total_bytes"),
            duration_s=duration_s,
            gc_collections=number("gc_collections"),
            gc_freed_bytes=number("gc_freed_bytes"),
            limit_bytes=number("limit_bytes") if "limit_bytes" in values else None,
            leak_limit_bytes=number("leak_limit_bytes") if "leak_limit_bytes" in values else None,
            memory_failed=bool(number("memory_failed")),
            capture_path=str(values["capture"]) if "capture" in values else None,
            csv_name=csv_name,
            flamegraph_path=str(values["flamegraph"]) if "flamegraph" in values else None,
            grew_path=str(values["grew_flamegraph"]) if "grew_flamegraph" in values else None,
            flamegraph_view=str(values.get("flamegraph_view", "peak")),
            rss_bytes=number("rss_bytes"),
            started_at=_seconds(values.get("started_at")),
            worker=str(values.get("worker", "")),
            failure_kinds=[kind for kind in str(values.get("failure_kinds", "")).split(",") if kind],
            capture_error=str(values["capture_error"]) if "capture_error" in values else None,
            flamegraph_error=str(values["flamegraph_error"]) if "flamegraph_error" in values else None,
            baseline_peak_bytes=number("baseline_peak_bytes") if "baseline_peak_bytes" in values else None,
            in_baseline=bool(number("in_baseline")) if "in_baseline" in values else None,
            location_summary=_summary(values.get("locations")),
        )


def _summary(text: object) -> dict | None:
    try:
        value = json.loads(str(text)) if text is not None else None
    except ValueError:
        return None
    return value if isinstance(value, dict) else None


def _seconds(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return 0.0
