"""``memprof transform``: csv, gprof2dot, speedscope and pprof from a real capture, read back by the
tools (or the schema, or the protobuf runtime) that consume them."""

from __future__ import annotations

import csv
import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import jsonschema
import pytest

from pytest_memprof import Capture
from pytest_memprof.cli.transform import FORMATS as CLI_FORMATS
from pytest_memprof.reports.transform import CSV_COLUMNS, FORMATS
from tests.cli.conftest import assert_one_line_error
from tests.reports.conftest import run_memprof
from tests.reports.profile_proto import Profile

DATA = Path(__file__).resolve().parents[1] / "data"

PROGRAM = """
import threading

kept = []


def hold_blocks():
    for _ in range(30):
        kept.append(bytearray(100_000))


def churn():
    for _ in range(50):
        scratch = bytearray(400_000)
        del scratch


def in_worker():
    kept.append(bytearray(700_000))


hold_blocks()
churn()
worker = threading.Thread(target=in_worker, name="worker-7")
worker.start()
worker.join()
"""


@pytest.fixture(scope="module")
def capture_path(tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("transform")
    (folder / "program.py").write_text(PROGRAM)
    result = run_memprof("run", "-q", "-o", "prog.bin", "program.py", cwd=folder)
    assert result.returncode == 0, result.stderr
    return folder / "prog.bin"


@pytest.fixture(scope="module")
def capture(capture_path) -> Capture:
    return Capture.open(capture_path)


def transform(capture_path: Path, tmp_path: Path, fmt: str, *args: str) -> Path:
    out = tmp_path / f"out.{FORMATS[fmt]}"
    result = run_memprof("transform", fmt, str(capture_path), "-o", str(out), *args, cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    return out


def function_bytes(capture: Capture, view: str, function: str) -> int:
    """Bytes of the view's stacks whose allocating frame is ``function`` (what each format must agree with)."""
    return sum(stat.bytes for stat in capture.stacks(view) if stat.location and stat.location.function == function)


def test_cli_format_table_is_the_reports():
    assert CLI_FORMATS == FORMATS


def test_csv_has_one_row_per_site_with_bytes_count_thread_and_stack(capture_path, capture, tmp_path):
    out = transform(capture_path, tmp_path, "csv")
    rows = list(csv.DictReader(out.open(newline="")))
    assert tuple(rows[0]) == CSV_COLUMNS
    mine = [row for row in rows if row["location"].startswith("hold_blocks at ")]
    assert sum(int(row["bytes"]) for row in mine) == function_bytes(capture, "peak", "hold_blocks") >= 30 * 100_000
    assert sum(int(row["count"]) for row in mine) >= 30
    innermost = mine[0]["stack"].split("|")[0].split(";")
    assert innermost[0] == "hold_blocks" and innermost[1].endswith("program.py") and int(innermost[2]) > 0
    worker = [row for row in rows if row["location"].startswith("in_worker at ")]
    assert worker and all(row["thread_name"] == "worker-7" and int(row["thread_id"]) > 0 for row in worker)
    assert sum(int(row["bytes"]) for row in rows) == sum(
        stat.bytes for stat in capture.peak_stacks() if not stat.launcher
    )


def test_csv_leaks_and_temporary_views(capture_path, capture, tmp_path):
    leaks = list(csv.DictReader(transform(capture_path, tmp_path, "csv", "--leaks").open(newline="")))
    assert any(row["location"].startswith("in_worker at ") for row in leaks)
    assert not any(row["location"].startswith("churn at ") for row in leaks)
    temporary = list(
        csv.DictReader(transform(capture_path, tmp_path, "csv", "-f", "--temporary-allocations").open(newline=""))
    )
    churned = [row for row in temporary if row["location"].startswith("churn at ")]
    assert sum(int(row["count"]) for row in churned) >= 50


def test_gprof2dot_reads_it_and_draws_our_functions(capture_path, capture, tmp_path):
    gprof2dot = shutil.which("gprof2dot") or str(Path(sys.executable).parent / "gprof2dot")
    out = transform(capture_path, tmp_path, "gprof2dot")
    document = json.loads(out.read_text())
    names = [function["name"] for function in document["functions"]]
    assert "hold_blocks" in names
    hold = names.index("hold_blocks")
    assert sum(event["cost"][0] for event in document["events"] if event["callchain"][0] == hold) == function_bytes(
        capture, "peak", "hold_blocks"
    )
    dot = subprocess.run(
        [gprof2dot, "-f", "json", "-n", "0", "-e", "0", str(out)], capture_output=True, text=True, timeout=120
    )
    assert dot.returncode == 0, dot.stderr
    assert dot.stdout.startswith("digraph")
    assert "hold_blocks" in dot.stdout and "in_worker" in dot.stdout


def test_speedscope_is_valid_against_the_published_schema_with_peak_and_leaks(capture_path, capture, tmp_path):
    schema = json.loads((DATA / "speedscope-file-format-schema.json").read_text())
    out = transform(capture_path, tmp_path, "speedscope")
    document = json.loads(out.read_text())
    jsonschema.validate(document, schema)
    names = [profile["name"] for profile in document["profiles"]]
    assert names == ["Memory at the peak", "Memory leaked (still allocated at the end)"]
    assert document["activeProfileIndex"] == 0
    frames = document["shared"]["frames"]
    peak, leaks = document["profiles"]
    assert peak["unit"] == "bytes" and peak["endValue"] == sum(peak["weights"])
    hold = sum(
        weight
        for sample, weight in zip(peak["samples"], peak["weights"])
        if frames[sample[-1]]["name"] == "hold_blocks"
    )
    assert hold == function_bytes(capture, "peak", "hold_blocks")
    worker = sum(
        weight
        for sample, weight in zip(leaks["samples"], leaks["weights"])
        if frames[sample[-1]]["name"] == "in_worker"
    )
    assert worker == function_bytes(capture, "leaks", "in_worker") >= 700_000
    # The schema is the real one: it rejects a profile without weights.
    del peak["weights"]
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate(document, schema)


def test_speedscope_opens_on_the_view_asked_for(capture_path, tmp_path):
    document = json.loads(transform(capture_path, tmp_path, "speedscope", "--temporary-allocations").read_text())
    assert [profile["name"] for profile in document["profiles"]][
        document["activeProfileIndex"]
    ] == "Memory in temporary allocations"
    document = json.loads(transform(capture_path, tmp_path, "speedscope", "-f", "--leaks").read_text())
    assert document["activeProfileIndex"] == 1


def test_pprof_parses_back_with_protobuf(capture_path, capture, tmp_path):
    out = transform(capture_path, tmp_path, "pprof")
    profile = Profile()
    profile.ParseFromString(gzip.decompress(out.read_bytes()))
    strings = list(profile.string_table)
    assert strings[0] == ""
    assert [(strings[t.type], strings[t.unit]) for t in profile.sample_type] == [
        ("peak_space", "bytes"),
        ("peak_objects", "count"),
    ]
    assert strings[profile.default_sample_type] == "peak_space"
    functions = {function.id: function for function in profile.function}
    locations = {location.id: location for location in profile.location}

    def leaf(sample):
        line = locations[sample.location_id[0]].line[0]
        return strings[functions[line.function_id].name], strings[functions[line.function_id].filename], line.line

    hold = [sample for sample in profile.sample if leaf(sample)[0] == "hold_blocks"]
    assert sum(sample.value[0] for sample in hold) == function_bytes(capture, "peak", "hold_blocks")
    assert sum(sample.value[1] for sample in hold) >= 30
    _, file, line = leaf(hold[0])
    assert file.endswith("program.py") and line > 0
    worker = [sample for sample in profile.sample if leaf(sample)[0] == "in_worker"]
    labels = {strings[label.key]: strings[label.str] for label in worker[0].label if label.str}
    assert labels["thread_name"] == "worker-7"
    # Every location a sample names exists, and the outermost frame of our stacks is the module.
    assert all(location_id in locations for sample in profile.sample for location_id in sample.location_id)
    outer = locations[hold[0].location_id[-1]].line[0]
    assert strings[functions[outer.function_id].name] == "<module>"


@pytest.mark.skipif(not shutil.which("go"), reason="go is not installed: `go tool pprof` is not available")
def test_go_tool_pprof_reads_it(capture_path, tmp_path):
    out = transform(capture_path, tmp_path, "pprof")
    result = subprocess.run(["go", "tool", "pprof", "-top", str(out)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "hold_blocks" in result.stdout


def test_default_output_is_next_to_the_capture_and_not_overwritten(capture_path, tmp_path):
    local = tmp_path / "here.bin"
    shutil.copy(capture_path, local)
    first = run_memprof("transform", "csv", str(local), cwd=tmp_path)
    assert first.returncode == 0, first.stderr
    expected = tmp_path / "memprof-csv-here.csv"
    assert expected.exists() and f"wrote {expected}" in first.stdout
    again = run_memprof("transform", "csv", str(local), cwd=tmp_path)
    assert_one_line_error(again, "already exists", "--force")
    forced = run_memprof("transform", "csv", str(local), "--force", cwd=tmp_path)
    assert forced.returncode == 0, forced.stderr
    pprof = run_memprof("transform", "pprof", str(local), cwd=tmp_path)
    assert pprof.returncode == 0 and (tmp_path / "memprof-pprof-here.pb.gz").exists()


def test_bad_input_is_one_line(capture_path, tmp_path):
    assert_one_line_error(
        run_memprof("transform", "csv", str(tmp_path / "missing.bin"), cwd=tmp_path), "no such capture file"
    )
    assert_one_line_error(
        run_memprof("transform", "csv", str(capture_path), "--native", "-o", str(tmp_path / "x.csv"), cwd=tmp_path),
        "without native stacks",
    )
    assert not (tmp_path / "x.csv").exists()
    bad = run_memprof("transform", "svg", str(capture_path), cwd=tmp_path)
    assert bad.returncode == 2 and "Traceback" not in bad.stderr and "invalid choice" in bad.stderr


def test_native_keeps_c_frames(tmp_path):
    (tmp_path / "program.py").write_text(PROGRAM)
    result = run_memprof("run", "-q", "--native", "-o", "native.bin", "program.py", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    capture = tmp_path / "native.bin"
    # The interpreter's own C frames are hidden by default: show them, so bytearray's C code is there.
    python_only = list(
        csv.DictReader(transform(capture, tmp_path, "csv", "--show-interpreter-frames").open(newline=""))
    )
    with_native = list(
        csv.DictReader(
            transform(capture, tmp_path, "csv", "-f", "--native", "--show-interpreter-frames").open(newline="")
        )
    )
    python_functions = {frame.split(";")[0] for row in python_only for frame in row["stack"].split("|")}
    native_functions = {frame.split(";")[0] for row in with_native for frame in row["stack"].split("|")}
    assert "hold_blocks" in python_functions and "hold_blocks" in native_functions
    # bytearray's C code made the allocations: the innermost frame is the interpreter's, not the
    # program's. Its name depends on the build (Debian's 3.14 has no symbol for the static helper
    # that resizes), so the check is for an exported function every version runs the program under.
    held = [row["stack"].split("|") for row in with_native if "hold_blocks;" in row["stack"]]
    assert held and all(not stack[0].split(";")[1].endswith("program.py") for stack in held)
    assert "PyEval_EvalCode" in native_functions - python_functions
