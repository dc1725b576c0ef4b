"""The differential flame graph: two real captures of two versions of one program, in headless chromium."""

from __future__ import annotations

import re

import pytest

from pytest_memprof import Capture
from pytest_memprof.reports.flamegraph import diff_flamegraph_data, render_diff_flamegraph
from pytest_memprof.sizes import format_size
from tests.diff_programs import GREW, SHRANK

from .test_flamegraph import frame_box, open_report


def node_of(data: dict, function: str) -> int:
    strings, frames, nodes = data["strings"], data["frames"], data["nodes"]
    found = [n + 1 for n in range(len(nodes) // 2) if strings[frames[4 * nodes[2 * n + 1]]] == function]
    assert len(found) == 1, found
    return found[0]


def bytes_at(samples: list[int], node: int) -> int:
    return sum(samples[i + 2] for i in range(0, len(samples), 4) if samples[i] == node)


def test_both_captures_share_one_tree_even_when_the_functions_moved(diff_captures):
    base, moved = Capture.open(diff_captures["base"]), Capture.open(diff_captures["blank_line"])
    data = diff_flamegraph_data(base, moved)
    assert sum(data["samples"][2::4]) == sum(stat.bytes for stat in moved.peak_stacks())
    assert sum(data["base_samples"][2::4]) == sum(stat.bytes for stat in base.peak_stacks())
    grows, shrinks = node_of(data, "grows"), node_of(data, "shrinks")  # one node each: the lines were aligned
    assert bytes_at(data["samples"], grows) - bytes_at(data["base_samples"], grows) == GREW
    assert bytes_at(data["samples"], shrinks) - bytes_at(data["base_samples"], shrinks) == -SHRANK


def rgb(page, name: str) -> tuple[int, ...]:
    colour = frame_box(page, name).evaluate("box => getComputedStyle(box).backgroundColor")
    return tuple(int(part) for part in re.findall(r"\d+", colour)[:3])


@pytest.mark.browser
def test_the_grown_frame_is_red_and_the_shrunk_one_blue(diff_captures, tmp_path, page):
    base, new = Capture.open(diff_captures["base"]), Capture.open(diff_captures["blank_line"])
    target = render_diff_flamegraph(base, new, tmp_path / "diff.html")
    open_report(page, target)
    red, green, blue = rgb(page, "grows")
    assert red > green + 60 and red > blue + 60, (red, green, blue)
    red, green, blue = rgb(page, "shrinks")
    assert blue > red + 60, (red, green, blue)
    red, green, blue = rgb(page, "steady")
    assert abs(red - blue) < 10, (red, green, blue)  # unchanged: grey

    frame_box(page, "grows").hover()
    tooltip = page.text_content("#tooltip")
    # The bytearray object around each buffer is of a size that changes with the Python version.
    grown = {name: sum(stat.bytes for stat in capture.peak_stacks() if stat.frames[-1:] and
                       stat.frames[-1].function == "grows")
             for name, capture in (("new", new), ("base", base))}
    assert grown["new"] - grown["base"] == GREW
    for part in (f"new: {format_size(grown['new'])}", f"base: {format_size(grown['base'])}",
                 f"change: +{format_size(GREW)}"):
        assert part in tooltip, (part, tooltip)

    shrinks_new = frame_box(page, "shrinks").bounding_box()["width"]
    page.check("#size-by-base")
    assert frame_box(page, "shrinks").bounding_box()["width"] > shrinks_new * 1.5
    assert rgb(page, "shrinks")[2] > rgb(page, "shrinks")[0] + 60  # still blue: it is the same change
    page.uncheck("#size-by-base")

    page.fill("#search", "grows")
    assert page.locator("#graph .frame.match", has_text="grows").count() == 1
    page.fill("#search", "")
    frame_box(page, "grows").click()
    assert "grows" in page.text_content("#crumbs")
    page.click("#reset")
    page.check("#inverted")
    assert frame_box(page, "grows").is_visible()
    assert not page.is_visible("#thread") and not page.is_visible("#split")
    assert not page.console_errors, page.console_errors


@pytest.mark.browser
def test_a_baseline_summary_as_the_base_colours_the_grown_frame_red(diff_captures, tmp_path, page):
    from pytest_memprof.ci.baseline import location_summary, summary_rows
    from pytest_memprof.model import StackStat, View

    summary = location_summary(Capture.open(diff_captures["base"]), 5)
    base = [StackStat(frames, size, count) for frames, size, count in summary_rows(summary)[View.PEAK]]
    target = render_diff_flamegraph(base, Capture.open(diff_captures["blank_line"]), tmp_path / "grew.html",
                                    base_title="the baseline")
    open_report(page, target)
    red, green, blue = rgb(page, "grows")
    assert red > green + 60 and red > blue + 60, (red, green, blue)
    red, green, blue = rgb(page, "shrinks")
    assert blue > red + 60, (red, green, blue)
    assert page.text_content("#base-name") == "the baseline"
    assert not page.console_errors, page.console_errors
