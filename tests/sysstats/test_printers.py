"""``memprof sys --stdout / --stdout-csv / --stdout-json``: output parsed back and checked against psutil."""

from __future__ import annotations

import ast
import csv
import datetime
import io
import json

import psutil
import pytest

from pytest_memprof.sysstats import LocalSource
from pytest_memprof.sysstats.plugins import PLUGINS
from pytest_memprof.sysstats.printers import SCHEMA_VERSION, CsvPrinter, JsonPrinter, StdoutPrinter
from pytest_memprof.sysstats.registry import DICT, LIST, VALUE
from pytest_memprof.sysstats.selection import parse_list

from .conftest import assert_one_line_error

QUICK = ("--stop-after", "2", "-t", "0.2")


def test_stdout_prints_one_line_per_item_and_refresh(memprof):
    result = memprof("sys", "--stdout", "cpu.user,mem.used,load,network.bytes_recv", *QUICK)
    assert result.returncode == 0, result.stderr
    lines = [line.split(": ", 1) for line in result.stdout.splitlines()]
    values: dict[str, list[str]] = {}
    for name, value in lines:
        values.setdefault(name, []).append(value)
    assert len(values["cpu.user"]) == 2 and all(0.0 <= float(v) <= 100.0 for v in values["cpu.user"])
    total = psutil.virtual_memory().total
    assert all(0 < int(v) < total for v in values["mem.used"])
    for text in values["load"]:
        load = ast.literal_eval(text)
        assert set(load) == {"min1", "min5", "min15", "cpucore"}
        assert load["cpucore"] == psutil.cpu_count()
        assert load["min1"] >= 0
    interfaces = {name.split(".")[1] for name in values if name.startswith("network.")}
    assert interfaces and interfaces <= set(psutil.net_io_counters(pernic=True))
    assert all(name.endswith(".bytes_recv") for name in values if name.startswith("network."))


def test_stdout_csv_has_a_fixed_header_and_one_row_per_refresh(memprof):
    result = memprof("sys", "--stdout-csv", "now.iso,cpu.user,mem.used,mem.total,load", "--stop-after", "3", "-t",
                     "0.2")
    assert result.returncode == 0, result.stderr
    header, *rows = list(csv.reader(io.StringIO(result.stdout)))
    assert header == ["now.iso", "cpu.user", "mem.used", "mem.total", "load.min1", "load.min5", "load.min15",
                      "load.cpucore"]
    assert len(rows) == 3 and all(len(row) == len(header) for row in rows)
    for row in rows:
        record = dict(zip(header, row))
        assert datetime.datetime.fromisoformat(record["now.iso"]).tzinfo is not None
        assert 0.0 <= float(record["cpu.user"]) <= 100.0
        assert int(record["mem.total"]) == psutil.virtual_memory().total
        assert 0 < int(record["mem.used"]) < int(record["mem.total"])
        assert int(record["load.cpucore"]) == psutil.cpu_count()


def test_stdout_json_prints_one_object_per_line_with_a_schema_version(memprof):
    result = memprof("sys", "--stdout-json", "cpu,mem", *QUICK)
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 2
    for document in documents:
        assert set(document) == {"schema_version", "cpu", "mem"}
        assert document["schema_version"] == SCHEMA_VERSION
        assert set(document["cpu"]) == set(PLUGINS["cpu"].field_names())
        assert 0.0 <= document["cpu"]["total"] <= 100.0
        assert document["mem"]["total"] == psutil.virtual_memory().total
        assert 0.0 <= document["mem"]["percent"] <= 100.0


def test_stdout_json_picks_fields_and_list_entries(memprof):
    # A file system this machine lists ("/" is not one inside a chroot).
    mount = LocalSource().sample()["fs"][0]["mnt_point"]
    result = memprof("sys", "--stdout-json", f"cpu.user,fs.{mount}.percent,processlist.name,processcount.total",
                     "--stop-after", "1", "-t", "0.2")
    assert result.returncode == 0, result.stderr
    document = json.loads(result.stdout)
    assert set(document["cpu"]) == {"user"}
    assert 0 <= document["fs"][mount]["percent"] <= 100
    # Every process, as Glances lists them (not the ten we once kept).
    assert abs(len(document["processlist"]) - document["processcount"]["total"]) <= 5
    assert all(set(entry) == {"name"} for entry in document["processlist"].values())


def test_every_plugin_returns_what_it_declares():
    snapshot = LocalSource().sample()
    assert list(snapshot) == list(PLUGINS)
    for name, plugin in PLUGINS.items():
        value = snapshot[name]
        if plugin.shape == VALUE:
            assert isinstance(value, str) and value, name
        elif plugin.shape == DICT:
            assert list(value) == plugin.field_names(), name
        else:
            assert plugin.shape == LIST and isinstance(value, list), name
            for entry in value:
                assert [field for field in entry if field != "key"] == plugin.field_names(), name
                assert entry["key"] == plugin.key
        assert plugin.description and all(field.description and field.unit for field in plugin.fields), name
    assert snapshot["mem"]["total"] == psutil.virtual_memory().total
    assert snapshot["memswap"]["total"] == psutil.swap_memory().total
    assert snapshot["load"]["cpucore"] == psutil.cpu_count()
    assert len(snapshot["percpu"]) == psutil.cpu_count()
    assert {entry["mnt_point"] for entry in snapshot["fs"]} <= {p.mountpoint for p in psutil.disk_partitions()}
    rss = [entry["memory_info"]["rss"] for entry in snapshot["processlist"]]
    assert rss == sorted(rss, reverse=True)
    assert {entry["status"] for entry in snapshot["processlist"]} <= set("RSDTtZXKWILP")
    assert snapshot["processcount"]["total"] >= len(snapshot["processlist"])


def _network(*names: str) -> dict:
    return {"network": [{"interface_name": name, "bytes_recv": 10 * (i + 1)} for i, name in enumerate(names)]}


def test_csv_columns_stay_fixed_when_interfaces_come_and_go():
    out = io.StringIO()
    printer = CsvPrinter(parse_list("network.bytes_recv"), out)
    for snapshot in (_network("eth0", "lo"), _network("lo", "wlan0"), {}):
        printer.refresh(snapshot)
    assert list(csv.reader(io.StringIO(out.getvalue()))) == [
        ["network.eth0.bytes_recv", "network.lo.bytes_recv"],
        ["10", "20"],
        ["N/A", "10"],
        ["N/A", "N/A"],
    ]


def test_a_csv_cell_of_entries_is_json():
    from pytest_memprof.sysstats.printers import csv_cell

    assert csv_cell(["python", "-c"]) == "python -c"
    assert json.loads(csv_cell([{"cpu_number": 0, "total": 5.0}])) == [{"cpu_number": 0, "total": 5.0}]


def test_stdout_and_json_show_a_missing_plugin_as_not_available():
    out = io.StringIO()
    StdoutPrinter(parse_list("mem.used,now"), out).refresh({})
    assert out.getvalue() == "mem.used: N/A\nnow: N/A\n"
    out = io.StringIO()
    JsonPrinter(parse_list("mem.used"), out).refresh({})
    assert json.loads(out.getvalue()) == {"schema_version": SCHEMA_VERSION, "mem": {"used": None}}


@pytest.mark.parametrize(("args", "fragment"), [
    (("--stdout", "cpu.usr"), "unknown field 'cpu.usr': the fields of cpu are total, user"),
    (("--stdout-csv", "now,memory"), "unknown plugin 'memory'"),
    (("--stdout-json", "uptime.days"), "uptime is a single value"),
    (("--stdout", "network.nosuchif0.bytes_recv"), "no interface_name 'nosuchif0'; network has"),
    (("--stdout", ""), "no plugin or field given"),
    (("--stdout", "network.bytes_recieved"), "'bytes_recieved' is neither a field of network (interface_name,"),
    (("--stdout", "cpu", "-t", "0"), "-t/--time: the interval must be more than 0 seconds"),
    (("--stdout", "cpu", "-t", "soon"), "-t/--time: expected a number of seconds, got 'soon'"),
    (("--stdout", "cpu", "-t", "nan"), "-t/--time: the interval must be more than 0 seconds"),
    (("--stdout", "cpu", "--stop-after", "0"), "--stop-after: expected 1 or more"),
    (("--stdout", "cpu", "-w"), "does not go with -w"),
    (("--stdout", "cpu", "--port", "8080"), "--port goes with -w, -s or -c"),
    (("-c", "127.0.0.1:9", "--password", "--stdout", "cpu.usr"), "unknown field 'cpu.usr'"),
])
def test_bad_items_and_intervals_are_one_line_usage_errors(memprof, args, fragment):
    result = memprof("sys", *args, "--stop-after", "1") if "--stop-after" not in args else memprof("sys", *args)
    assert_one_line_error(result, fragment)
    assert result.returncode == 2
    assert result.stdout == ""


def test_help_names_every_plugin(memprof):
    result = memprof("sys", "--help")
    assert result.returncode == 0
    listed = result.stdout.split("ITEMS are plugins (", 1)[1].split(")", 1)[0]
    assert [name.strip() for name in listed.replace("\n", " ").split(",")] == list(PLUGINS)


def test_the_field_reference_in_docs_is_current():
    from pytest_memprof.sysstats.plugins import ALL_PLUGINS
    from pytest_memprof.sysstats.registry import reference_markdown

    from .conftest import ROOT

    expected = reference_markdown(list(ALL_PLUGINS))
    assert (ROOT / "docs" / "sys-fields.md").read_text(encoding="utf-8") == expected, (
        "docs/sys-fields.md is stale: regenerate it with reference_markdown(list(ALL_PLUGINS))")


def test_ctrl_c_stops_a_printer_quietly():
    import signal
    import subprocess

    from .conftest import memprof_command, subprocess_env

    env = subprocess_env()
    process = subprocess.Popen([*memprof_command(), "sys", "--stdout-csv", "now.iso,mem.used", "-t", "0.2"],
                               stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert process.stdout.readline().strip() == "now.iso,mem.used"
    assert process.stdout.readline().count(",") == 1
    process.send_signal(signal.SIGINT)
    out, err = process.communicate(timeout=10)
    assert process.returncode == 0 and err == ""
    assert all(line.count(",") == 1 for line in out.splitlines())


def test_a_failing_plugin_is_not_available_and_the_others_still_print(monkeypatch):
    source = LocalSource(["mem", "diskio"])

    def unreadable():
        raise OSError(2, "No such file or directory", "/proc/diskstats")

    monkeypatch.setattr(source.collectors["diskio"], "collect", unreadable)
    out = io.StringIO()
    CsvPrinter(parse_list("mem.total,diskio"), out).refresh(source.sample())
    header, row = list(csv.reader(io.StringIO(out.getvalue())))
    assert header == ["mem.total"] and row == [str(psutil.virtual_memory().total)]
    assert "diskstats" in source.errors["diskio"]
