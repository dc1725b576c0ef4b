"""Every Glances plugin that works on Linux, with Glances's names and meanings, checked against psutil and /proc."""

from __future__ import annotations

import http.server
import json
import os
import socket
import subprocess
import sys
import threading
import time

import psutil
import pytest

from pytest_memprof.sysstats import LocalSource
from pytest_memprof.sysstats.config import SysConfig
from pytest_memprof.sysstats.plugins import PLUGINS

from .conftest import run_memprof

GLANCES_LINUX_PLUGINS = {
    "alert", "amps", "containers", "core", "cpu", "diskio", "folders", "fs", "gpu", "help", "ip", "load", "mem",
    "memswap", "network", "now", "percpu", "ports", "processcount", "processlist", "programlist", "psutilversion",
    "quicklook", "sensors", "system", "uptime", "version", "wifi",
}


def test_every_glances_plugin_that_works_on_linux_is_here():
    assert set(PLUGINS) == GLANCES_LINUX_PLUGINS


def test_counters_are_since_the_last_update_with_gauge_and_rate_companions():
    source = LocalSource(["cpu", "diskio"])
    source.sample()
    time.sleep(0.3)
    cpu = source.sample()["cpu"]
    stats = psutil.cpu_stats()
    assert 0 <= cpu["ctx_switches"] <= cpu["ctx_switches_gauge"] <= stats.ctx_switches
    assert cpu["ctx_switches_gauge"] > 10 * cpu["ctx_switches"]  # since boot against a fraction of a second
    expected = cpu["ctx_switches"] / cpu["time_since_update"]
    assert cpu["ctx_switches_rate_per_sec"] == pytest.approx(expected, rel=0.05, abs=1)
    counters = psutil.disk_io_counters(perdisk=True)
    for disk in source.sample()["diskio"]:
        assert disk["read_bytes_gauge"] <= counters[disk["disk_name"]].read_bytes + (64 << 20)
        assert 0 <= disk["read_bytes"] <= disk["read_bytes_gauge"]


@pytest.fixture
def busy_cpu():
    spin = "import time\nend = time.time() + 60\nwhile time.time() < end: pass"
    process = subprocess.Popen([sys.executable, "-c", spin])
    time.sleep(0.5)
    yield process
    process.kill()
    process.wait()


def test_the_first_sample_measures_a_real_interval(busy_cpu):
    result = run_memprof("sys", "--stdout-json", "cpu.total,processlist.cpu_percent", "--stop-after", "1")
    document = json.loads(result.stdout)
    # One core is spinning: whatever else the machine runs, the first figures are not the 0.0 of "no interval".
    assert document["cpu"]["total"] >= 5
    assert document["processlist"][str(busy_cpu.pid)]["cpu_percent"] >= 5


def test_processcount_counts_as_glances_does():
    count = LocalSource(["processcount"]).sample()["processcount"]
    statuses = [process.info["status"] for process in psutil.process_iter(["status"])]
    assert count["sleeping"] == pytest.approx(statuses.count(psutil.STATUS_SLEEPING), abs=5)
    assert count["total"] == pytest.approx(len(statuses), abs=5)
    assert count["running"] + count["sleeping"] <= count["total"]


def test_now_has_glances_iso_and_custom_forms(tmp_path):
    config = tmp_path / "memprof.conf"
    config.write_text("[now]\nstrftime_format=%Y/%m/%d %Hh\n")
    result = run_memprof("sys", "-C", str(config), "--stdout-json", "now", "--stop-after", "1")
    now = json.loads(result.stdout)["now"]
    assert now["iso"][:4].isdigit() and now["iso"][-6] in "+-"
    assert now["custom"] == time.strftime("%Y/%m/%d %Hh") or now["custom"].endswith("h")


def test_stdout_processlist_prints_every_process_with_status_letters():
    result = run_memprof("sys", "--stdout", "processlist.status", "--stop-after", "1")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert len(lines) >= len(psutil.pids()) - 10
    assert {line.rsplit(": ", 1)[1] for line in lines} <= set("RSDTtZXKWILP")
    assert f"processlist.{os.getpid()}.status: " in result.stdout


def test_lo_down_interfaces_and_loop_devices_are_hidden_by_default_and_shown_on_request(tmp_path):
    snapshot = LocalSource(["network", "diskio"]).sample()
    assert "lo" not in {entry["interface_name"] for entry in snapshot["network"]}
    assert not any(entry["disk_name"].startswith("loop") for entry in snapshot["diskio"])
    shown = LocalSource(["network"], SysConfig({"network": {"hide": "", "hide_no_up": "False"}})).sample()
    assert "lo" in {entry["interface_name"] for entry in shown["network"]}
    hidden = LocalSource(["network"], SysConfig({"network": {"hide": "e.*,lo"}})).sample()
    assert not any(entry["interface_name"].startswith("e") for entry in hidden["network"])


def test_programlist_adds_up_a_programs_processes():
    snapshot = LocalSource(["processlist", "programlist"]).sample()
    by_name: dict[str, list] = {}
    for process in snapshot["processlist"]:
        by_name.setdefault(process["name"], []).append(process)
    for program in snapshot["programlist"]:
        processes = by_name.get(program["name"], [])
        assert program["nprocs"] == len(processes) == len(program["childrens"])
        assert program["memory_info"]["rss"] == sum(p["memory_info"]["rss"] or 0 for p in processes if p["memory_info"])


def test_core_quicklook_and_version_plugins():
    snapshot = LocalSource(["core", "quicklook", "version", "psutilversion", "ip", "sensors", "wifi"]).sample()
    assert snapshot["core"] == {"phys": psutil.cpu_count(logical=False), "log": psutil.cpu_count()}
    quick = snapshot["quicklook"]
    assert len(quick["percpu"]) == psutil.cpu_count() and 0 <= quick["mem"] <= 100
    assert quick["percpu"][0]["key"] == "cpu_number"
    assert snapshot["psutilversion"] == psutil.__version__
    assert snapshot["ip"]["public_address"] is None  # never asked of a server outside
    assert isinstance(snapshot["sensors"], list) and isinstance(snapshot["wifi"], list)


def test_plugins_without_their_source_are_disabled_with_the_reason(start_server, monkeypatch):
    monkeypatch.setenv("DOCKER_HOST", "unix:///nonexistent/docker.sock")
    source = LocalSource(["gpu", "containers"])
    assert source.sample() == {"gpu": [], "containers": []}
    if not os.path.exists("/var/run/docker.sock"):
        assert "socket" in source.disabled["containers"]
    server = start_server("-s", "-t", "0.2")
    with __import__("urllib.request").request.urlopen(f"{server.url}/api/4/status", timeout=10) as response:
        status = json.load(response)
    assert status["plugin_errors"] == {}
    if not _has_nvidia():
        assert "gpu" in status["plugin_disabled"]


def _has_nvidia() -> bool:
    return os.path.exists("/dev/nvidia0")


class _FakeDocker(http.server.BaseHTTPRequestHandler):
    """Answers the two Docker API calls we make, from a Unix socket."""

    calls = 0

    def address_string(self) -> str:
        return "docker"

    def log_message(self, *args) -> None:
        pass

    def do_GET(self) -> None:
        _FakeDocker.calls += 1
        if self.path.startswith("/containers/json"):
            body = [{"Id": "abc123", "Names": ["/web"], "Image": "nginx:1", "State": "running", "Status": "Up 2 hours",
                     "Created": 1700000000, "Command": "nginx -g 'daemon off;'"}]
        else:
            tick = _FakeDocker.calls
            body = {"cpu_stats": {"cpu_usage": {"total_usage": 1_000_000 * tick}, "system_cpu_usage": 10_000_000 * tick,
                                  "online_cpus": 2},
                    "memory_stats": {"usage": 50 << 20, "limit": 1 << 30, "stats": {"inactive_file": 10 << 20}},
                    "networks": {"eth0": {"rx_bytes": 1000 * tick, "tx_bytes": 500 * tick}},
                    "blkio_stats": {"io_service_bytes_recursive": [{"op": "read", "value": 4096 * tick}]}}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def test_containers_are_read_from_the_engine_api_socket(tmp_path, monkeypatch):
    import socketserver

    path = str(tmp_path / "docker.sock")

    class UnixServer(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
        daemon_threads = True

    server = UnixServer(path, _FakeDocker)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        monkeypatch.setenv("DOCKER_HOST", f"unix://{path}")
        source = LocalSource(["containers"])
        assert "containers" not in source.disabled
        first = source.sample()["containers"]
        time.sleep(0.2)
        (web,) = source.sample()["containers"]
        assert first[0]["name"] == web["name"] == "web"
        assert web["image"] == "nginx:1" and web["status"] == "running" and web["engine"] == "docker"
        assert web["memory_usage"] == 40 << 20 and web["memory_limit"] == 1 << 30
        assert web["cpu_percent"] == pytest.approx(20.0)  # 2 CPUs x 1/10 of the system's time
        assert web["network_rx"] > 0 and web["key"] == "name"
    finally:
        server.shutdown()
        server.server_close()


def test_ports_folders_and_amps_come_from_the_config(tmp_path):
    listening = socket.create_server(("127.0.0.1", 0))
    closed = socket.create_server(("127.0.0.1", 0))
    closed_port = closed.getsockname()[1]
    closed.close()
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "a").write_bytes(b"x" * 3000)
    (folder / "sub").mkdir()
    (folder / "sub" / "b").write_bytes(b"y" * 1000)
    config = SysConfig({
        "ports": {"port_1_host": "127.0.0.1", "port_1_port": str(listening.getsockname()[1]),
                  "port_1_description": "up", "port_2_host": "127.0.0.1", "port_2_port": str(closed_port),
                  "port_2_timeout": "1"},
        "folders": {"folder_1_path": str(folder), "folder_1_careful": "1"},
        "amp_python": {"enable": "true", "regex": ".*python.*", "countmin": "1"},
    })
    try:
        snapshot = LocalSource(["ports", "folders", "amps"], config).sample()
    finally:
        listening.close()
    up, down = snapshot["ports"]
    assert up["indice"] == "port_1" and isinstance(up["status"], float) and up["status"] < 1
    assert down["status"] is False
    assert snapshot["folders"] == [{"path": str(folder), "size": 4000, "refresh": 60.0, "errno": 0, "careful": 1.0,
                                    "warning": None, "critical": None, "key": "path"}]
    (amp,) = snapshot["amps"]
    assert amp["name"] == "python" and amp["count"] >= 1 and amp["result"].endswith(("process", "processes"))


def test_process_names_are_escaped_on_the_terminal(tmp_path):
    hostile = "evil\x1b]0;pwned\x07\x1b[2J"
    process = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", hostile])
    try:
        time.sleep(0.3)
        result = run_memprof("sys", "--stdout", f"processlist.{process.pid}.cmdline,processlist.{process.pid}.name",
                             "--stop-after", "1")
    finally:
        process.kill()
        process.wait()
    assert result.returncode == 0, result.stderr
    assert "\x1b" not in result.stdout and "\\x1b]0;pwned\\x07" in result.stdout
