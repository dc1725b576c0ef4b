"""The %%memprof_flamegraph cell magic, run by a real IPython shell on a real cell."""

from __future__ import annotations

import html
import re

import pytest

IPython = pytest.importorskip("IPython", reason="IPython is in the test extras")
from IPython.core.interactiveshell import InteractiveShell  # noqa: E402


@pytest.fixture(scope="module")
def shell():
    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "pytest_memprof")
    return shell


CELL = """%%memprof_flamegraph {options}
def build_the_table():
    return [bytearray(1 << 20) for _ in range(4)]

table = build_the_table()
"""


def srcdoc(output) -> str:
    markup = output.data
    match = re.fullmatch(r'<div class="memprof-flamegraph"><iframe srcdoc="([^"]*)" [^<>]*></iframe></div>', markup)
    assert match, markup[:300]  # one iframe: nothing of the page reaches the notebook unescaped
    return html.unescape(match.group(1))


def test_the_magic_shows_the_cells_flame_graph_inline(shell):
    result = shell.run_cell(CELL.format(options=""))
    assert result.success, result.error_in_exec
    page = srcdoc(result.result)
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "build_the_table" in page
    assert "<script" in page and 'src="' not in page  # self-contained: our script inline, nothing fetched
    assert len(shell.user_ns["table"]) == 4  # the cell ran in the notebook's namespace


def test_leaks_shows_what_the_cell_left_allocated(shell):
    result = shell.run_cell(CELL.format(options="--leaks --height 300"))
    assert result.success, result.error_in_exec
    assert "build_the_table" in srcdoc(result.result)
    assert "height: 300px" in result.result.data


def test_a_bad_option_is_one_usage_line(shell, capsys):
    result = shell.run_cell(CELL.format(options="--colour"))
    assert not result.success
    printed = capsys.readouterr()
    assert "UsageError: %%memprof_flamegraph: unrecognized arguments: --colour" in printed.out + printed.err
    assert "Traceback" not in printed.out + printed.err


@pytest.mark.browser
def test_the_inline_flame_graph_draws_in_a_browser(shell, page, tmp_path):
    # What a notebook shows: the magic's HTML in a page; the iframe's graph is drawn by our own script.
    result = shell.run_cell(CELL.format(options=""))
    notebook = tmp_path / "notebook.html"
    notebook.write_text(f"<!doctype html><html><body>{result.result.data}</body></html>")
    page.goto(notebook.as_uri())
    graph = page.frame_locator("iframe").locator("#graph .frame", has_text="build_the_table").first
    graph.wait_for(timeout=15000)
    assert graph.is_visible()
    assert page.console_errors == []
