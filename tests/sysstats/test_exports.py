"""Exports: --export csv/json into files and --export prometheus (/metrics), read back with real parsers."""

from __future__ import annotations

import csv
import json
import re
import subprocess
import time
import urllib.request

import psutil
import pytest

from pytest_memprof.sysstats.exports import exported_plugins

from .conftest import assert_one_line_error, memprof_command, run_memprof, subprocess_env


def test_csv_and_json_exports_write_one_row_and_line_per_refresh(tmp_path):
    csv_file, json_file = tmp_path / "stats.csv", tmp_path / "stats.json"
    result = run_memprof("sys", "-q", "--export", "csv", "--export", "json", "--export-csv-file", str(csv_file),
                         "--export-json-file", str(json_file), "--stop-after", "3", "-t", "0.2")
    assert result.returncode == 0, result.stderr
    assert result.stdout == ""
    header, *rows = list(csv.reader(csv_file.open()))
    assert len(rows) == 3 and all(len(row) == len(header) for row in rows)
    assert "mem.total" in header and "load.min1" in header and "cpu.ctx_switches_rate_per_sec" in header
    record = dict(zip(header, rows[-1]))
    assert int(record["mem.total"]) == psutil.virtual_memory().total
    documents = [json.loads(line) for line in json_file.read_text().splitlines()]
    assert len(documents) == 3 and set(documents[0]) == {"schema_version", *exported_plugins()}


def test_exports_go_along_with_a_printer(tmp_path):
    json_file = tmp_path / "stats.json"
    result = run_memprof("sys", "--stdout", "mem.total", "--export", "json", "--export-json-file", str(json_file),
                         "--stop-after", "2", "-t", "0.2")
    assert result.returncode == 0, result.stderr
    assert result.stdout.count("mem.total: ") == 2 and len(json_file.read_text().splitlines()) == 2


def test_a_server_with_a_file_export_samples_every_interval_without_clients(tmp_path):
    csv_file = tmp_path / "server.csv"
    result = run_memprof("sys", "-s", "--port", "0", "--export", "csv", "--export-csv-file", str(csv_file),
                         "--stop-after", "5", "-t", "0.2")
    assert result.returncode == 0, result.stderr
    header, *rows = list(csv.reader(csv_file.open()))
    assert "mem.total" in header and len(rows) >= 3


@pytest.mark.parametrize(("args", "fragment"), [
    (("--export", "influxdb"), "--export influxdb: exports are csv, json, prometheus"),
    (("--export", "csv", "-q"), "--export csv needs --export-csv-file FILE"),
    (("-q",), "give it an --export"),
    (("--export-json-file", "x.json", "-q", "--export", "csv", "--export-csv-file", "y"), "go with --export"),
])
def test_bad_export_options_are_usage_errors(args, fragment):
    result = run_memprof("sys", *args, "--stop-after", "1")
    assert_one_line_error(result, fragment)
    assert result.returncode == 2


def _parse_metrics(text: str) -> dict:
    parser = pytest.importorskip("prometheus_client.parser")
    return {family.name: family for family in parser.text_string_to_metric_families(text)}


def test_a_server_serves_metrics_in_the_prometheus_format(start_server):
    server = start_server("-s", "-t", "0.2", "--export", "prometheus")
    with urllib.request.urlopen(f"{server.url}/metrics", timeout=10) as response:
        assert response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
        families = _parse_metrics(response.read().decode())
    (total,) = families["glances_mem_total"].samples
    assert total.value == psutil.virtual_memory().total and total.labels == {"src": "memprof"}
    assert families["glances_cpu_total"].type == "gauge"
    disks = {sample.labels.get("disk_name") for sample in families["glances_diskio_read_bytes_gauge"].samples}
    assert disks and None not in disks
    assert "glances_processlist_cpu_percent" not in families


def test_prometheus_alongside_a_printer_listens_on_its_own_port(tmp_path):
    config = tmp_path / "memprof.conf"
    config.write_text("[prometheus]\nhost=127.0.0.1\nport=0\nprefix=memprof\n")
    process = subprocess.Popen([*memprof_command(), "sys", "-C", str(config), "--stdout", "load.min1", "--export",
                                "prometheus", "-t", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                               env=subprocess_env())
    try:
        line = process.stderr.readline()
        port = int(re.search(r"http://127\.0\.0\.1:(\d+)/metrics", line).group(1))
        assert process.stdout.readline().startswith("load.min1: ")
        deadline = time.monotonic() + 10
        while True:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
                families = _parse_metrics(response.read().decode())
            if "memprof_load_min1" in families or time.monotonic() > deadline:
                break
            time.sleep(0.2)
        assert families["memprof_load_min1"].samples[0].value >= 0
    finally:
        process.terminate()
        process.communicate(timeout=10)
