"""``memprof tree``: the biggest stacks as a terminal tree, largest branches first, small ones folded."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text

from .. import terminal
from ..capture import Capture
from ..model import Frame, View
from ..sizes import format_size
from ..terminal import printable
from .calltree import report_view


@dataclass
class _Branch:
    frame: Frame | None
    bytes: int = 0
    count: int = 0
    children: dict[Frame, _Branch] = field(default_factory=dict)


# Guides of two columns per level (rich's trees take four): a deep native stack at 80 columns
# keeps room for its names.
_BRANCH, _LAST, _PIPE, _SPACE = "\u251c\u2500", "\u2514\u2500", "\u2502 ", "  "
# Fewer columns than this left for a label (figures ~28, a name, a file name and line) and the
# guides stop growing: deeper frames line up at that depth rather than shrink to a column.
_MIN_LABEL = 60


def _label(branch: _Branch, total: int, width: int | None) -> Text:
    # Text objects, never markup strings: a function or path may contain "[...]" from user code;
    # printable() makes control characters in them visible instead of acting on the terminal.
    share = 100 * branch.bytes / total if total else 0.0
    label = Text()
    label.append(f"{format_size(branch.bytes)} ({share:.1f}%)", style="bold magenta")
    label.append(f" {branch.count:,} alloc ", style="dim")
    if branch.frame is None:
        label.append("in the stacks shown", style="bold")
        return label
    label.append(printable(branch.frame.function), style="bold")
    location = f"{printable(branch.frame.file)}:{branch.frame.line}"
    if width is not None:
        # The file name and line matter most: a long path loses its start.
        room = max(8, width - len(label) - 2)
        if len(location) > room:
            location = "\u2026" + location[len(location) - room + 1:]
    label.append(f"  {location}", style="cyan")
    return label


def _fold(branch: _Branch, whole: int, fold_below: float) -> tuple[list[_Branch], str | None]:
    children = sorted(branch.children.values(), key=lambda child: -child.bytes)
    shown = [child for child in children if child.bytes >= fold_below * whole] or children[:1]
    folded = children[len(shown):]
    if not folded:
        return shown, None
    return shown, f"... {len(folded)} smaller branch(es): {format_size(sum(child.bytes for child in folded))}"


def _collect(capture: Capture, view: View, biggest_allocs: int) -> tuple[_Branch, int]:
    root = _Branch(None)
    _, whole = capture.view_totals(view)
    # Only the stacks shown are built (with native stacks, building all was most of the report).
    for stat in capture.stacks(view, most=biggest_allocs):
        root.bytes += stat.bytes
        root.count += stat.count
        branch = root
        for frame in stat.frames:
            branch = branch.children.setdefault(frame, _Branch(frame))
            branch.bytes += stat.bytes
            branch.count += stat.count
    return root, whole


def tree_lines(capture: Capture, *, kind: View | str = View.PEAK, biggest_allocs: int = 10,
               fold_below: float = 0.01, width: int | None = None) -> list[Text]:
    """The tree of the ``biggest_allocs`` largest stacks as lines (``width``: fit them, else whole lines);
    branches under ``fold_below`` of the total fold."""
    root, whole = _collect(capture, report_view(kind), biggest_allocs)
    # Shares are of everything in the view, not of the stacks shown, so they read the same as elsewhere.
    lines = [_label(root, whole, width)]
    # (branch or fold text, guide prefix, is last child)
    pending: list[tuple[_Branch | str, str, bool]] = []

    def push(branch: _Branch, prefix: str) -> None:
        shown, folded = _fold(branch, whole, fold_below)
        items: list[_Branch | str] = [*shown, *([folded] if folded else [])]
        for index in reversed(range(len(items))):
            pending.append((items[index], prefix, index == len(items) - 1))

    push(root, "")
    while pending:
        item, prefix, last = pending.pop()
        line = Text(prefix + (_LAST if last else _BRANCH) + " ", style="dim")
        child_prefix = prefix + (_SPACE if last else _PIPE)
        if width is not None and width - len(child_prefix) < _MIN_LABEL:
            child_prefix = prefix  # no room to indent further: deeper frames line up here
        if isinstance(item, str):
            line.append(item, style="dim")
        else:
            line.append_text(_label(item, whole, None if width is None else width - len(line)))
            push(item, child_prefix)
        lines.append(line)
    return lines


def print_tree(capture: Capture, *, console: Console | None = None, kind: View | str = View.PEAK,
               biggest_allocs: int = 10) -> None:
    """Print the tree of the biggest stacks (the peak by default) to ``console``."""
    view = report_view(kind)
    console = console or terminal.console()
    if capture.truncated:
        console.print(Text(f"This capture is truncated: {terminal.printable(capture.truncation)}. "
                           "The tree covers what was decoded.", style="bold yellow"))
    count, whole = capture.view_totals(view)
    if not count:
        console.print(capture.no_allocations_text if not capture.total_allocations
                      else f"No memory {view.title} in this capture.")
        return
    console.print(Text(f"The {min(biggest_allocs, count)} biggest of {count:,} stacks, bytes "
                       f"{view.title} ({format_size(whole)} in all):"))
    width = None if terminal.is_unwrapped(console) else console.width
    for line in tree_lines(capture, kind=kind, biggest_allocs=biggest_allocs, width=width):
        # Each line fits (a name longer than the line ends in an ellipsis), or is wanted whole.
        if width is None:
            console.print(line, soft_wrap=True)
        else:
            console.print(line, no_wrap=True, overflow="ellipsis")
