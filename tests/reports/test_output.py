"""Output-path rules shared by the HTML reports."""

from __future__ import annotations

import json

import pytest

from pytest_memprof.reports.output import ReportError, check_output, default_output, json_for_script, write_report


def test_default_output_sits_next_to_the_capture(tmp_path):
    assert default_output(tmp_path / "run.1234.bin", "flamegraph") == tmp_path / "memprof-flamegraph-run.1234.html"


def test_check_output_refuses_to_overwrite_without_force(tmp_path):
    target = tmp_path / "out.html"
    target.write_text("old")
    with pytest.raises(ReportError, match="already exists"):
        check_output(target)
    assert check_output(target, force=True) == target
    assert check_output(tmp_path / "new" / "folder" / "out.html") == tmp_path / "new" / "folder" / "out.html"
    assert (tmp_path / "new" / "folder").is_dir()


def test_write_report_survives_undecodable_path_bytes_and_leaves_no_partial(tmp_path):
    target = write_report(tmp_path / "out.html", "path: /tmp/\udcff.py")
    assert target.read_text(encoding="utf-8") == "path: /tmp/?.py"
    assert not list(tmp_path.glob("*.partial"))


def test_json_for_script_cannot_close_the_script_element():
    text = json_for_script(json.dumps({"name": "</script><script>alert(1)</script>&"}))
    assert "<" not in text and ">" not in text and "&" not in text
    assert json.loads(text) == {"name": "</script><script>alert(1)</script>&"}
