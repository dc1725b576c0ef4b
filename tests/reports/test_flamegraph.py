"""The HTML flame graph, rendered from real captures and driven in headless chromium."""

from __future__ import annotations

import json
import re

import pytest

from pytest_memprof import Capture
from pytest_memprof.reports.flamegraph import flamegraph_data, render_flamegraph
from pytest_memprof.sizes import format_size

from .conftest import HOSTILE

SCRIPTS_IN_PAGE = 2  # the JSON data block and our own script


def open_report(page, path):
    dialogs: list = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(path.as_uri())
    page.wait_for_selector("#graph .frame")
    return dialogs


def frame_box(page, name):
    return page.locator("#graph .frame", has_text=name).first


def embedded_data(html: str) -> dict:
    match = re.search(r'<script type="application/json" id="memprof-data">(.*?)</script>', html, re.S)
    return json.loads(match.group(1))


def test_render_flamegraph_writes_one_self_contained_file(two_phase_capture, tmp_path):
    target = tmp_path / "deep" / "folder" / "fg.html"
    assert render_flamegraph(Capture.open(two_phase_capture), target, title="a test") == target
    html = target.read_text()
    assert "<title>a test: memory flame graph</title>" in html
    assert "http://" not in html.replace("http://www.w3.org/2000/svg", "")
    assert "https://" not in html and "<link" not in html and " src=" not in html
    data = embedded_data(html)
    names = {data["strings"][data["frames"][i]] for i in range(0, len(data["frames"]), 4)}
    assert {"early_phase", "late_phase", "in_named_thread"} <= names
    # memprof's own launcher frames (memprof run, runpy) are not shown above the user's code
    nodes, frames, strings = data["nodes"], data["frames"], data["strings"]
    early = next(n for n in range(len(nodes) // 2) if strings[frames[4 * nodes[2 * n + 1]]] == "early_phase")
    parent = nodes[2 * early]
    assert strings[frames[4 * nodes[2 * (parent - 1) + 1]]] == "<module>"
    assert nodes[2 * (parent - 1)] == 0  # the script's <module> is at the root


def test_the_data_sums_to_the_peak_and_every_stack_is_sent_once(two_phase_capture):
    capture = Capture.open(two_phase_capture)
    data = flamegraph_data(capture)
    samples = data["samples"]
    assert sum(samples[2::4]) == sum(stat.bytes for stat in capture.peak_stacks())
    assert len(data["strings"]) == len(set(data["strings"]))
    assert len(samples) // 4 == len(capture.peak_stacks(merge_threads=False))


@pytest.mark.browser
def test_flamegraph_shows_functions_zooms_and_searches(two_phase_capture, tmp_path, page):
    target = render_flamegraph(Capture.open(two_phase_capture), tmp_path / "fg.html")
    open_report(page, target)
    assert frame_box(page, "late_phase").is_visible()
    assert frame_box(page, "early_phase").is_visible()

    frame_box(page, "early_phase").hover()
    tooltip = page.text_content("#tooltip")
    assert "early_phase" in tooltip and "two_phases.py:" in tooltip
    assert "of the total" in tooltip and "allocation(s)" in tooltip

    graph_width = page.eval_on_selector("#graph", "g => g.clientWidth")
    assert frame_box(page, "early_phase").bounding_box()["width"] < graph_width * 0.9
    frame_box(page, "early_phase").click()
    assert "early_phase" in page.text_content("#crumbs")
    assert frame_box(page, "early_phase").bounding_box()["width"] == pytest.approx(graph_width, abs=2)
    assert page.locator("#graph .frame", has_text="late_phase").count() == 0
    page.click("#reset")
    assert frame_box(page, "late_phase").is_visible()
    frame_box(page, "late_phase").click()
    page.click("#zoom-out")
    assert "late_phase" not in page.text_content("#crumbs")
    page.go_back()  # the browser's Back undoes the zoom-out
    assert "late_phase" in page.text_content("#crumbs")
    page.go_back()
    assert page.text_content("#crumbs") == ""

    page.fill("#search", "late_phase")
    assert page.locator("#graph .frame.match").count() >= 1
    assert page.locator("#graph .frame.match", has_text="late_phase").count() >= 1
    assert page.locator("#graph .frame.match", has_text="early_phase").count() == 0
    assert re.search(r"matching frame\(s\): 2\.\d MiB", page.text_content("#matches"))
    page.fill("#search", "")
    assert page.locator("#graph .frame.match").count() == 0

    page.check("#inverted")
    assert frame_box(page, "late_phase").is_visible()
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_thread_selector_and_split_threads(two_phase_capture, tmp_path, page):
    target = render_flamegraph(Capture.open(two_phase_capture), tmp_path / "fg.html")
    open_report(page, target)
    options = page.eval_on_selector_all("#thread option", "options => options.map(o => o.textContent)")
    assert options[0] == "All threads"
    hostile = next(index for index, text in enumerate(options) if HOSTILE in text)
    page.select_option("#thread", index=hostile)
    assert frame_box(page, "in_named_thread").is_visible()
    assert page.locator("#graph .frame", has_text="late_phase").count() == 0
    page.select_option("#thread", index=0)
    page.check("#split")
    assert page.locator("#graph .frame.thread").count() >= 2
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_dragging_on_the_temporal_chart_shows_only_that_range(two_phase_capture, tmp_path, page):
    target = render_flamegraph(Capture.open(two_phase_capture, temporal=True), tmp_path / "fg.html", temporal=True)
    open_report(page, target)
    page.wait_for_selector("#chart.temporal")  # the packed rows are unpacked
    assert frame_box(page, "early_phase").is_visible()
    chart = page.locator("#chart").bounding_box()
    middle_y = chart["y"] + chart["height"] / 2
    # The late phase starts after 0.6 s of a ~0.75 s run; the early one ends within the first 0.1 s.
    page.mouse.move(chart["x"] + chart["width"] * 0.55, middle_y)
    page.mouse.down()
    page.mouse.move(chart["x"] + chart["width"] * 0.8, middle_y)
    page.mouse.move(chart["x"] + chart["width"] - 1, middle_y)
    page.mouse.up()
    assert page.locator("#graph .frame", has_text="early_phase").count() == 0
    assert frame_box(page, "late_phase").is_visible()
    assert "still live at" in page.text_content("#range-text")
    page.click("#clear-range")
    assert frame_box(page, "early_phase").is_visible()
    assert not page.console_errors, page.console_errors


def drag_across(page, start: float, end: float) -> None:
    chart = page.locator("#chart").bounding_box()
    middle_y = chart["y"] + chart["height"] / 2
    page.mouse.move(chart["x"] + chart["width"] * start, middle_y)
    page.mouse.down()
    page.mouse.move(chart["x"] + chart["width"] * (start + end) / 2, middle_y)
    page.mouse.move(chart["x"] + chart["width"] * end, middle_y)
    page.mouse.up()


@pytest.mark.browser
def test_the_whole_range_shows_exactly_the_leaks(two_phase_capture, tmp_path, page):
    # Allocated from the start and still live at the end: what leaked. This checks every packed
    # temporal row decodes in the page to what the reader said.
    capture = Capture.open(two_phase_capture, temporal=True)
    target = render_flamegraph(capture, tmp_path / "fg.html", temporal=True)
    open_report(page, target)
    page.wait_for_selector("#chart.temporal")
    drag_across(page, 0.001, 0.999)
    leaks = sum(stat.bytes for stat in capture.leak_stacks())
    count = sum(stat.count for stat in capture.leak_stacks())
    text = page.text_content("#range-text")
    assert f": {format_size(leaks)} in {count:,} allocation(s)" in text, text
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_hostile_thread_name_and_path_show_as_text_and_run_nothing(two_phase_capture, tmp_path, page):
    target = render_flamegraph(Capture.open(two_phase_capture), tmp_path / "fg.html", title=HOSTILE)
    html = target.read_text()
    assert HOSTILE not in html  # escaped everywhere: in the title, the command line and the JSON
    dialogs = open_report(page, target)
    assert page.title() == f"{HOSTILE}: memory flame graph"
    assert page.text_content("h1") == HOSTILE
    assert HOSTILE in page.text_content("header .command")
    assert any(HOSTILE in text for text in
               page.eval_on_selector_all("#thread option", "options => options.map(o => o.textContent)"))
    page.check("#split")
    thread_boxes = page.eval_on_selector_all("#graph .frame.thread", "boxes => boxes.map(b => b.textContent)")
    assert any(HOSTILE in text for text in thread_boxes), thread_boxes
    frame_box(page, "late_phase").hover()
    assert HOSTILE in page.text_content("#tooltip")
    assert page.evaluate("document.querySelectorAll('script').length") == SCRIPTS_IN_PAGE
    assert not dialogs, dialogs
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_empty_capture_says_so(empty_capture, tmp_path, page):
    target = render_flamegraph(Capture.open(empty_capture), tmp_path / "fg.html")
    page.goto(target.as_uri())
    assert "No allocations were recorded" in page.text_content("#empty")
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_truncated_capture_is_marked(truncated_capture, tmp_path, page):
    capture = Capture.open(truncated_capture)
    assert capture.truncated
    target = render_flamegraph(capture, tmp_path / "fg.html")
    page.goto(target.as_uri())
    assert "truncated" in page.text_content("#truncated")
    assert not page.console_errors, page.console_errors


def test_a_range_at_a_tick_is_the_heap_at_that_tick(two_phase_capture):
    # Capture's answer for a range: allocated from the start until a sampler tick and live at it is
    # the heap the timeline has at that tick, for every tick; the whole range is what leaked.
    capture = Capture.open(two_phase_capture, temporal=True)
    ticks = sorted({round(i.allocated_s * 1000) for i in capture.temporal_stacks()}
                   | {round(i.freed_s * 1000) for i in capture.temporal_stacks() if i.freed_s is not None})
    heap_at: dict[int, int] = {}
    for point in capture.timeline():  # the sample at each tick (the peak's own point follows its sample)
        heap_at.setdefault(round(point.time_s * 1000), point.heap_bytes)
    checked = 0
    for tick in ticks[1:]:
        if tick in heap_at:
            assert sum(stat.bytes for stat in capture.range_stacks(0, tick / 1000)) == heap_at[tick], tick
            checked += 1
    assert checked >= 3
    assert sum(stat.bytes for stat in capture.range_stacks(0)) == capture.leaked_bytes


@pytest.mark.browser
def test_a_dragged_range_is_capture_s_answer_wherever_it_falls_on_the_pixels(two_phase_capture, tmp_path, page):
    capture = Capture.open(two_phase_capture, temporal=True)
    target = render_flamegraph(capture, tmp_path / "fg.html", temporal=True)
    open_report(page, target)
    page.wait_for_selector("#chart.temporal")
    width = page.locator("#chart").bounding_box()["width"]
    answers = []
    # The same range, and the same range moved by 5 px either way: each is the answer Capture
    # gives for the ticks the page says it took.
    for shift in (0, 5, -5):
        drag_across(page, 0.2 + shift / width, 0.7 + shift / width)
        dataset = page.eval_on_selector("#range-text", "element => Object.assign({}, element.dataset)")
        start = int(dataset["start"]) / 1000
        end = None if dataset["end"] == "end" else int(dataset["end"]) / 1000
        expected = sum(stat.bytes for stat in capture.range_stacks(start, end))
        assert int(dataset["bytes"]) == expected, (shift, dataset, expected)
        assert f": {format_size(expected)} in" in page.text_content("#range-text")
        answers.append((start, end, expected))
    assert answers[0][2] > 0, answers
    assert not page.console_errors, page.console_errors
