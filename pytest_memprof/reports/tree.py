"""``memprof tree``: the biggest stacks as a terminal tree, largest branches first, small ones folded."""

from __future__ import annotations

from dataclasses import dataclass, field

from rich.console import Console
from rich.text import Text
from rich.tree import Tree

from ..capture import Capture
from ..model import Frame, View
from ..sizes import format_size
from .calltree import report_view


@dataclass
class _Branch:
    frame: Frame | None
    bytes: int = 0
    count: int = 0
    children: dict[Frame, _Branch] = field(default_factory=dict)


def _label(branch: _Branch, total: int) -> Text:
    # Text objects, never markup strings: a function or path may contain "[...]" from user code.
    share = 100 * branch.bytes / total if total else 0.0
    label = Text()
    label.append(f"{format_size(branch.bytes)} ({share:.1f}%)", style="bold magenta")
    label.append(f" {branch.count:,} alloc ", style="dim")
    if branch.frame is None:
        label.append("in the stacks shown", style="bold")
        return label
    label.append(branch.frame.function, style="bold")
    label.append(f"  {branch.frame.file}:{branch.frame.line}", style="cyan")
    return label


def build_tree(capture: Capture, *, kind: View | str = View.PEAK, biggest_allocs: int = 10,
               fold_below: float = 0.01) -> Tree:
    """A rich Tree of the ``biggest_allocs`` largest stacks; branches under ``fold_below`` of the total fold."""
    view = report_view(kind)
    root = _Branch(None)
    stacks = capture.stacks(view)
    whole = sum(stat.bytes for stat in stacks)
    for stat in stacks[:biggest_allocs]:
        root.bytes += stat.bytes
        root.count += stat.count
        branch = root
        for frame in stat.frames:
            branch = branch.children.setdefault(frame, _Branch(frame))
            branch.bytes += stat.bytes
            branch.count += stat.count
    # Shares are of everything in the view, not of the stacks shown, so they read the same as elsewhere.
    tree = Tree(_label(root, whole), guide_style="dim")
    pending = [(root, tree)]
    while pending:
        branch, node = pending.pop()
        children = sorted(branch.children.values(), key=lambda child: -child.bytes)
        shown = [child for child in children if child.bytes >= fold_below * whole] or children[:1]
        for child in shown:
            pending.append((child, node.add(_label(child, whole))))
        folded = children[len(shown):]
        if folded:
            hidden = sum(child.bytes for child in folded)
            node.add(Text(f"... {len(folded)} smaller branch(es): {format_size(hidden)}", style="dim"))
    return tree


def print_tree(capture: Capture, *, console: Console | None = None, kind: View | str = View.PEAK,
               biggest_allocs: int = 10) -> None:
    """Print the tree of the biggest stacks (the peak by default) to ``console``."""
    view = report_view(kind)
    console = console or Console()
    if capture.truncated:
        console.print(Text("This capture is truncated: the tree covers what was written.", style="bold yellow"))
    stacks = capture.stacks(view)
    if not stacks:
        console.print("No allocations were recorded in this capture." if not capture.total_allocations
                      else f"No memory {view.title} in this capture.")
        return
    console.print(Text(f"The {min(biggest_allocs, len(stacks))} biggest of {len(stacks):,} stacks, bytes "
                       f"{view.title} ({format_size(sum(s.bytes for s in stacks))} in all):"))
    console.print(build_tree(capture, kind=kind, biggest_allocs=biggest_allocs))
