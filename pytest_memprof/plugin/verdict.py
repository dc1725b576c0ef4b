"""Verdicts: whether a test kept to what its markers (and a baseline) allow, as structured values."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from ..model import StackStat
from ..sizes import format_size
from .markers import LeakStack, MemorySpec


class FailureKind(enum.Enum):
    """What a test broke: each shows its own sentence and, in the failure message, its own stacks."""

    PEAK_OVER_LIMIT = "peak over limit"  # limit_memory, --memprof-limit
    LEAKS_OVER_LIMIT = "leaks over limit"  # limit_leaks: one place (call stack) leaked more than the limit
    LEAKED = "leaked"  # no_leaks: more than the leak floor
    UNCOLLECTABLE = "uncollectable"  # no_leaks: new objects in gc.garbage
    LEAKED_OBJECTS = "leaked objects"  # limit_leaked_objects: objects of the test's still alive
    PEAK_GREW = "peak grew"  # --memprof-fail-on-increase against a baseline


@dataclass(frozen=True)
class Failure:
    """One broken limit, as figures: turned into a sentence only when shown."""

    kind: FailureKind
    measured: int  # bytes (objects, for UNCOLLECTABLE)
    allowed: int | None = None  # the limit in bytes; for PEAK_GREW the baseline's peak
    source: str = ""  # what set the limit: "limit_memory('10MB')", "--memprof-limit 10.0 MiB"
    percent: float | None = None  # PEAK_GREW: the increase --memprof-fail-on-increase allows
    grown: tuple = ()  # PEAK_GREW: the DiffRows of the locations that grew most, when the baseline kept them
    places: int = 1  # LEAKS_OVER_LIMIT: how many places leaked more than the limit (measured is the largest)
    detail: str = ""  # LEAKED_OBJECTS: the objects' types, most common first ("3 list, 1 dict")

    @property
    def about_peak(self) -> bool:
        """Whether the failure is about the peak (the message then shows the stacks at the peak)."""
        return self.kind in (FailureKind.PEAK_OVER_LIMIT, FailureKind.PEAK_GREW)

    def text(self) -> str:
        """The sentence a failure message starts with."""
        measured, allowed = format_size(self.measured), format_size(self.allowed or 0)
        if self.kind is FailureKind.PEAK_OVER_LIMIT:
            return f"Test used {measured} at its peak, more than the {allowed} allowed by {self.source}."
        if self.kind is FailureKind.LEAKS_OVER_LIMIT:
            others = f" ({self.places} places over the limit)" if self.places > 1 else ""
            return (f"One place leaked {measured}, more than the {allowed} per place allowed by "
                    f"{self.source}{others}.")
        if self.kind is FailureKind.LEAKED:
            return (f"Test leaked {measured} (no_leaks; still allocated after the test returned and gc.collect() "
                    "ran).")
        if self.kind is FailureKind.LEAKED_OBJECTS:
            return (f"Test leaked {self.measured} object(s) (limit_leaked_objects; created by the test and still "
                    f"alive after it returned and gc.collect() ran): {self.detail}.")
        if self.kind is FailureKind.UNCOLLECTABLE:
            return f"Test left {self.measured} new uncollectable object(s) in gc.garbage (no_leaks)."
        from ..ci.baseline import change_text

        text = (f"Peak grew {change_text(self.measured, self.allowed)} over {self.source or 'the baseline'} "
                f"({allowed} -> {measured}), "
                f"more than the {self.percent:g}% allowed by --memprof-fail-on-increase.")
        if self.grown:
            top = self.grown[0]
            text += f" Grew most: {top.location} (+{format_size(top.peak_change)} at the peak)."
        return text


@dataclass
class Verdict:
    """The outcome of judging one test against its spec."""

    failures: list[Failure] = field(default_factory=list)
    leaked_bytes: int = 0
    leak_stacks: list[StackStat] = field(default_factory=list)
    new_garbage: int = 0


def judge(spec: MemorySpec, peak_bytes: int, leak_stacks: list[StackStat], new_garbage: int,
          leak_floor: int, surviving_objects: list | None = None) -> Verdict:
    """Compare what a test used with what its markers allow (``surviving_objects``: for limit_leaked_objects)."""
    from .report import is_runner_stack

    verdict = Verdict(new_garbage=new_garbage)
    # pytest's own work inside the window is no place of the test's: pytest-memray, which tracks the
    # test function alone, never shows it to a filter (its stacks would show no frame of the test).
    kept = [stack for stack in leak_stacks
            if spec.filter_fn is None or is_runner_stack(stack) or spec.filter_fn(LeakStack.of(stack))]
    verdict.leak_stacks = kept
    verdict.leaked_bytes = sum(stack.bytes for stack in kept)
    if spec.limit_bytes is not None and peak_bytes > spec.limit_bytes:
        verdict.failures.append(Failure(FailureKind.PEAK_OVER_LIMIT, peak_bytes, spec.limit_bytes, spec.limit_source))
    if spec.leak_limit_bytes is not None:
        # pytest-memray's meaning: the limit is per place (call stack), not for the test's total.
        over = [stack.bytes for stack in kept if stack.bytes > spec.leak_limit_bytes and not is_runner_stack(stack)]
        if over:
            verdict.failures.append(Failure(FailureKind.LEAKS_OVER_LIMIT, max(over), spec.leak_limit_bytes,
                                            spec.leak_source, places=len(over)))
    if spec.leaked_objects and surviving_objects:
        kept = [obj for obj in surviving_objects if spec.object_filter is None or spec.object_filter(obj)]
        if kept:
            verdict.failures.append(Failure(FailureKind.LEAKED_OBJECTS, len(kept), detail=_types_of(kept)))
    if spec.no_leaks:
        if verdict.leaked_bytes > leak_floor:
            verdict.failures.append(Failure(FailureKind.LEAKED, verdict.leaked_bytes))
        if new_garbage:
            verdict.failures.append(Failure(FailureKind.UNCOLLECTABLE, new_garbage))
    return verdict


def _types_of(objects: list, most: int = 10) -> str:
    from collections import Counter

    counts = Counter(type(obj).__name__ for obj in objects).most_common()
    text = ", ".join(f"{count} {name}" for name, count in counts[:most])
    return text + (f" and {len(counts) - most} more type(s)" if len(counts) > most else "")


class BaselineJudge:
    """A run compared with a baseline (ci/baseline.py): each test's earlier peak, and whether it grew too much."""

    def __init__(self, entries: dict, fail_on_increase: float | None, min_bytes: int,
                 against: str = "the baseline") -> None:
        self.entries = entries
        self.against = against  # how a failure names what it was compared with
        self.fail_on_increase = fail_on_increase
        self.min_bytes = min_bytes

    def judge(self, nodeid: str, peak: int, summary: dict | None = None) -> tuple[bool, int | None, Failure | None]:
        """(in the baseline?, its peak, a PEAK_GREW failure if the peak grew past the allowed increase).

        With the test's location summary (ci/baseline.py) and the baseline's, the failure names the
        locations that grew most."""
        entry = self.entries.get(nodeid)
        if entry is None:
            return False, None, None  # noted in the summary, never failed
        grew = peak - entry.peak_bytes
        if self.fail_on_increase is None or grew <= entry.peak_bytes * self.fail_on_increase / 100 \
                or grew <= self.min_bytes:
            return True, entry.peak_bytes, None
        grown: tuple = ()
        if summary is not None and entry.locations is not None:
            from ..ci.baseline import grown_locations

            grown = tuple(grown_locations(entry.locations, summary))
        return True, entry.peak_bytes, Failure(FailureKind.PEAK_GREW, peak, entry.peak_bytes, self.against,
                                               percent=self.fail_on_increase, grown=grown)
