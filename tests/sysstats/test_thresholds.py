"""Thresholds, views and the alert log in Glances's form, from the config file."""

from __future__ import annotations

import json
import urllib.request

import pytest

from pytest_memprof.sysstats.config import SysConfig
from pytest_memprof.sysstats.thresholds import RULES, EventLog, Limits

from .conftest import run_memprof


def _rule(plugin: str, field: str):
    return next(rule for rule in RULES if rule.plugin == plugin and rule.field == field)


def test_glances_defaults_and_config_overrides():
    limits = Limits(SysConfig({"cpu": {"user_careful": "10", "user_warning": "20", "user_critical": "30"},
                               "mem": {"careful": "1"}}))
    assert limits.thresholds(_rule("cpu", "user")) == (10.0, 20.0, 30.0)
    assert limits.thresholds(_rule("cpu", "system")) == (50.0, 70.0, 90.0)
    assert limits.thresholds(_rule("load", "min15")) == (0.7, 1.0, 5.0)
    assert limits.thresholds(_rule("mem", "percent")) == (1.0, 70.0, 90.0)
    cpu = limits.for_plugin("cpu")
    assert cpu["cpu_user_careful"] == 10.0 and cpu["cpu_total_critical"] == 85.0 and cpu["cpu_total_log"] == ["True"]
    assert limits.for_plugin("load")["load_careful"] == 0.7
    assert limits.for_plugin("network")["network_hide"] == ["docker.*", "lo"]


@pytest.mark.parametrize(("value", "decoration"), [(5, "OK"), (10, "CAREFUL"), (25, "WARNING"), (30, "CRITICAL")])
def test_views_decorate_each_field_by_its_thresholds(value, decoration):
    limits = Limits(SysConfig({"cpu": {"user_careful": "10", "user_warning": "20", "user_critical": "30"}}))
    views = limits.views("cpu", {"user": value, "total": 90.0, "nice": 1.0})
    assert views["user"]["decoration"] == decoration
    assert views["total"]["decoration"] == "CRITICAL_LOG"  # logged by default, as in Glances
    assert views["nice"]["decoration"] == "DEFAULT"
    assert set(views["user"]) == {"decoration", "optional", "additional", "splittable", "hidden"}


def test_load_is_judged_per_core_and_list_plugins_per_entry():
    limits = Limits()
    assert limits.views("load", {"min15": 3.0, "min5": 1.0, "cpucore": 4})["min15"]["decoration"] == "CAREFUL_LOG"
    views = limits.views("fs", [{"mnt_point": "/", "percent": 95.0}, {"mnt_point": "/home", "percent": 10.0}])
    assert views["/"]["percent"]["decoration"] == "CRITICAL" and views["/home"]["percent"]["decoration"] == "OK"
    ports = limits.views("ports", [{"indice": "port_1", "status": False}, {"indice": "port_2", "status": 0.01,
                                                                            "rtt_warning": 0.5}])
    assert ports["port_1"]["status"]["decoration"] == "CRITICAL" and ports["port_2"]["status"]["decoration"] == "OK"


def test_the_event_log_keeps_begin_end_peak_and_average():
    clock = iter(range(1000, 2000))
    log = EventLog(Limits(), clock=lambda: next(clock))
    processes = [{"name": "hog", "memory_percent": 80.0}, {"name": "small", "memory_percent": 1.0}]
    for percent in (50.0, 75.0, 95.0, 80.0, 20.0, 10.0):
        log.update({"mem": {"percent": percent}, "processlist": processes})
    (event,) = log.as_list()
    assert event["type"] == "MEM" and event["state"] == "CRITICAL"
    assert (event["begin"], event["end"]) == (1001, 1004)
    assert (event["min"], event["max"], event["count"]) == (75.0, 95.0, 3)
    assert event["avg"] == pytest.approx(250 / 3, abs=0.01)
    assert event["top"][0] == "hog" and event["sort"] == "memory_percent"
    log.update({"mem": {"percent": 99.0}, "processlist": []})
    newest = log.as_list()[0]
    assert newest["end"] == -1 and newest["global_msg"].startswith("1 ongoing")


def test_stdout_alert_and_the_api_show_the_log(tmp_path, start_server):
    config = tmp_path / "memprof.conf"
    # Thresholds nobody's machine stays under: an event opens at the first sample.
    config.write_text("[mem]\ncareful=0\nwarning=0.001\ncritical=0.002\n[cpu]\ntotal_log=False\n[load]\nmin15_log=False\n"
                      "careful=1000\nwarning=1000\ncritical=1000\n")
    result = run_memprof("sys", "-C", str(config), "--stdout-json", "alert", "--stop-after", "2", "-t", "0.2")
    assert result.returncode == 0, result.stderr
    last = json.loads(result.stdout.splitlines()[-1])["alert"]
    assert [event["type"] for event in last] == ["MEM"] and last[0]["count"] == 2 and last[0]["state"] == "CRITICAL"
    server = start_server("-s", "-t", "0.2", "-C", str(config))
    with urllib.request.urlopen(f"{server.url}/api/4/alert", timeout=10) as response:
        events = json.load(response)
    assert events[0]["type"] == "MEM" and events[0]["end"] == -1
    with urllib.request.urlopen(f"{server.url}/api/4/mem/limits", timeout=10) as response:
        assert json.load(response)["mem_warning"] == 0.001
    with urllib.request.urlopen(f"{server.url}/api/4/mem/views", timeout=10) as response:
        assert json.load(response)["percent"]["decoration"] == "CRITICAL_LOG"


def test_a_bad_threshold_is_a_usage_error(tmp_path):
    config = tmp_path / "memprof.conf"
    config.write_text("[cpu]\nuser_careful=lots\n")
    result = run_memprof("sys", "-C", str(config), "-s", "--port", "0", "--stop-after", "1")
    assert result.returncode == 2 and "[cpu] user_careful='lots' is not a number" in result.stderr
