"""The page both HTML reports (flame graph, table) are built on: the capture's facts in the
header, the report's data as JSON in the page, our stylesheet and scripts inlined."""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..capture import Capture
from ..model import View
from ..sizes import format_size
from .calltree import report_view
from .output import json_for_script

if TYPE_CHECKING:
    import jinja2

TEMPLATES = Path(__file__).with_name("templates")


def render_page(template: str, capture: Capture, *, title: str, kind: View | str, data: dict[str, Any],
                scripts: Sequence[str], assets: str | None = None, **context: Any) -> str:
    """``template`` rendered for ``capture``; ``context`` adds the template's own variables.

    With ``assets`` (a relative URL of a folder written by ``write_assets``) the page links our
    stylesheet and scripts there instead of carrying its own copy."""
    view = report_view(kind)
    return _environment().get_template(template).render(
        title=title,
        kind_title=view.title,
        peak=format_size(capture.peak_bytes),
        leaked=format_size(capture.leaked_bytes),
        allocations=f"{capture.total_allocations:,}",
        duration=f"{capture.duration:.3f} s",
        command_line=capture.metadata.command_line,
        truncated=capture.truncated,
        truncation=capture.truncation,
        damage=capture.problem if capture.damaged else None,
        no_allocations=capture.no_allocations_text,
        generated=time.strftime("%Y-%m-%d %H:%M:%S"),
        data=json_for_script(json.dumps(data, separators=(",", ":"), ensure_ascii=False)),
        style="" if assets else _asset("report.css"),
        script="" if assets else "\n".join(_asset(name) for name in scripts),
        assets=assets,
        asset_scripts=list(scripts),
        **context,
    )


def write_assets(folder: Path, scripts: Sequence[str]) -> None:
    """Our stylesheet and ``scripts`` into ``folder``, for pages rendered with ``assets``."""
    folder.mkdir(parents=True, exist_ok=True)
    for name in ("report.css", *scripts):
        (folder / name).write_text(_asset(name), encoding="utf-8")


# One environment for the process: compiling the templates took most of a flame graph's
# rendering, and `--memprof-html` renders one per test. Jinja2 is imported here, at the first page
# (the `flamegraph` and `table` commands import it while their capture is read: cli/_common.py).
@functools.lru_cache(maxsize=1)
def _environment() -> jinja2.Environment:
    import jinja2

    return jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                              autoescape=jinja2.select_autoescape(["html"]), auto_reload=False)


@functools.cache
def _asset(name: str) -> str:
    return (TEMPLATES / name).read_text(encoding="utf-8")
