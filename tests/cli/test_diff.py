"""``memprof diff`` and ``memprof flamegraph --diff``, run as the real command on real captures."""

from __future__ import annotations

import json

from tests.diff_programs import GREW, SHRANK, line_of

from .conftest import assert_one_line_error


def test_json_rows_name_both_functions_with_exact_changes(memprof, diff_captures):
    result = memprof("diff", str(diff_captures["base"]), str(diff_captures["blank_line"]), "--json")
    assert result.returncode == 0, result.stderr
    data = json.loads(result.stdout)
    assert data["schema_version"] == 1 and data["view"] == "peak" and data["stacks"] is False
    rows = {row["function"]: row for row in data["rows"]}
    assert data["rows"][0]["function"] == "grows" and data["rows"][-1]["function"] == "shrinks"
    assert rows["grows"]["change"] == {"peak_bytes": GREW, "leaked_bytes": GREW, "temporary_bytes": 0,
                                       "allocations": 0, "total_bytes": GREW}
    assert rows["shrinks"]["change"]["peak_bytes"] == -SHRANK
    assert (rows["grows"]["base_line"], rows["grows"]["line"]) == (line_of("base", "100_000"),
                                                                  line_of("blank_line", "250_000"))
    assert "stack" not in rows["grows"]
    assert data["base"]["peak_bytes"] - data["new"]["peak_bytes"] >= SHRANK - GREW - 4096


def test_the_table_lists_growth_first_with_signed_sizes(memprof, diff_captures):
    result = memprof("diff", str(diff_captures["base"]), str(diff_captures["new"]))
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert out.index("grows at") < out.index("shrinks at")
    assert "+146.5 KiB" in out and "-244.1 KiB" in out  # 150,000 and 250,000 bytes
    assert "steady" not in out


def test_stacks_leaks_and_min_bytes(memprof, diff_captures):
    base, new = str(diff_captures["base"]), str(diff_captures["new"])
    data = json.loads(memprof("diff", base, new, "--json", "--stacks", "--leaks", "--min-bytes", "200KB").stdout)
    assert data["view"] == "leaks" and data["min_bytes"] == 200 * 1024
    assert [row["function"] for row in data["rows"]] == ["shrinks"]
    assert [frame["function"] for frame in data["rows"][0]["stack"]] == ["<module>", "shrinks"]
    # Nothing of the program's is temporary. What the launcher's frames do before the program
    # (compiling it) may differ between two runs by a few hundred bytes: on 3.15 the first run
    # after our modules' bytecode was written (a fresh checkout) interns other strings.
    data = json.loads(memprof("diff", base, new, "--json", "--temporary-allocations", "--min-bytes", "1").stdout)
    assert data["view"] == "temporary"
    assert [row for row in data["rows"] if row["file"].endswith("app.py")] == [], data["rows"]
    assert "No location changed by 4.0 KiB or more." in memprof("diff", base, new, "--temporary-allocations",
                                                                 "--min-bytes", "4KiB").stdout


def test_html_writes_the_differential_flame_graph(memprof, diff_captures, tmp_path):
    target = tmp_path / "out" / "diff.html"
    result = memprof("diff", str(diff_captures["base"]), str(diff_captures["new"]), "--json", "--html", str(target))
    assert result.returncode == 0, result.stderr
    json.loads(result.stdout)  # the note about the file goes to stderr, leaving the JSON whole
    assert '"base_samples"' in target.read_text()
    result = memprof("flamegraph", "--diff", str(diff_captures["base"]), str(diff_captures["new"]))
    assert result.returncode == 0, result.stderr
    written = diff_captures["new"].with_name("memprof-flamegraph-diff-new.html")
    assert written.exists() and f"wrote {written}" in result.stdout
    assert_one_line_error(memprof("flamegraph", "--diff", str(diff_captures["base"]), str(diff_captures["new"])),
                          "already exists")


def test_bad_input_is_one_line(memprof, diff_captures, tmp_path):
    corrupt = tmp_path / "corrupt.bin"
    corrupt.write_bytes(b"not a capture at all" * 10)
    assert_one_line_error(memprof("diff", str(tmp_path / "missing.bin"), str(diff_captures["new"])), "missing.bin")
    assert_one_line_error(memprof("diff", str(diff_captures["base"]), str(corrupt)), "corrupt.bin")
    assert_one_line_error(memprof("flamegraph", "--diff", str(corrupt), str(diff_captures["new"]), "-o",
                                  str(tmp_path / "x.html")), "corrupt.bin")
    assert not (tmp_path / "x.html").exists()
    assert_one_line_error(memprof("flamegraph", "--diff", str(diff_captures["base"]), str(diff_captures["new"]),
                                  "--temporal", "-o", str(tmp_path / "y.html")), "--temporal")
    bad_size = memprof("diff", str(diff_captures["base"]), str(diff_captures["new"]), "--min-bytes", "3XB")
    assert bad_size.returncode == 2 and "Traceback" not in bad_size.stderr and "unknown unit" in bad_size.stderr
