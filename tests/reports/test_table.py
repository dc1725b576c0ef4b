"""The HTML allocation table, rendered from a real capture and driven in headless chromium."""

from __future__ import annotations

import pytest

from pytest_memprof import Capture
from pytest_memprof.reports.table import render_table, table_data

from .conftest import HOSTILE


def locations(page):
    return page.eval_on_selector_all("#allocations tbody tr.row td:first-child",
                                     "cells => cells.map(c => c.textContent)")


def test_table_rows_add_up_to_the_peak(two_phase_capture):
    capture = Capture.open(two_phase_capture)
    data = table_data(capture, split_threads=True)
    assert sum(data["rows"][3::5]) == sum(stat.bytes for stat in capture.peak_stacks())
    assert any(HOSTILE == name for _, name in data["threads"])
    merged = table_data(capture)  # threads merged by default, as memray's table
    assert merged["threads"] == [[0, ""]]
    assert sum(merged["rows"][3::5]) == sum(data["rows"][3::5])


@pytest.mark.browser
def test_table_sorts_filters_shows_stacks_and_escapes(two_phase_capture, tmp_path, page):
    target = render_table(Capture.open(two_phase_capture), tmp_path / "t.html", split_threads=True)
    assert HOSTILE not in target.read_text()
    dialogs: list = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(target.as_uri())
    rows = locations(page)
    assert rows[0].startswith("late_phase")  # 3 MB: the largest first
    assert any(row.startswith("early_phase") for row in rows)
    page.click("th:has-text('bytes')")  # now ascending
    assert locations(page)[-1].startswith("late_phase")
    page.fill("#filter", "early_phase")
    assert all("early_phase" in row for row in locations(page)) and locations(page)
    assert "rows shown" in page.text_content("#shown")
    page.fill("#filter", "in_named_thread")
    threads = page.eval_on_selector_all("#allocations tbody tr.row td:nth-child(2)",
                                        "cells => cells.map(c => c.textContent)")
    assert threads and all(text.startswith(HOSTILE + " (") for text in threads), threads
    page.fill("#filter", "late_phase")
    page.click("#allocations tbody tr.row >> nth=0")
    stack = page.text_content("#allocations tr.stack")
    assert "<module> at" in stack and f"{HOSTILE}/two_phases.py" in stack
    assert page.evaluate("document.querySelectorAll('script').length") == 2
    assert not dialogs, dialogs
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_empty_table_says_so(empty_capture, tmp_path, page):
    target = render_table(Capture.open(empty_capture), tmp_path / "t.html")
    page.goto(target.as_uri())
    assert "No allocations were recorded" in page.text_content("#empty")
    assert not page.console_errors, page.console_errors
