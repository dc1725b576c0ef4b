"""Glances's protocols both ways, against real Glances (a test extra) on 127.0.0.1."""

from __future__ import annotations

import json
import subprocess
import xmlrpc.client

import psutil
import pytest

from pytest_memprof.sysstats.plugins import PLUGINS

from .conftest import run_memprof


@pytest.mark.parametrize("mode", ["-s", "-w"])
def test_our_client_reads_a_glances_server(glances_server, mode):
    server = glances_server(mode)
    result = run_memprof("sys", "-c", f"127.0.0.1:{server.port}", "--stdout-json", "mem.total,load,cpu.total",
                         "--stop-after", "2", "-t", "0.5", timeout=90)
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 2
    for document in documents:
        assert document["mem"]["total"] == psutil.virtual_memory().total
        assert document["load"]["cpucore"] == psutil.cpu_count()
        assert 0 <= document["cpu"]["total"] <= 100


def test_our_server_speaks_glances_xmlrpc(start_server):
    server = start_server("-s", "-t", "0.2")
    proxy = xmlrpc.client.ServerProxy(f"{server.url}/RPC2")
    assert proxy.init().split(".")[0] == "4"  # the Glances major version its client insists on
    assert json.loads(proxy.getAllPlugins()) == list(PLUGINS)
    everything = json.loads(proxy.getAll())
    assert everything["mem"]["total"] == psutil.virtual_memory().total
    assert json.loads(proxy.getPlugin("load"))["cpucore"] == psutil.cpu_count()
    assert set(json.loads(proxy.getAllLimits())) == set(PLUGINS)
    assert "min1" in json.loads(proxy.getPluginView("load"))
    with pytest.raises(xmlrpc.client.Fault, match="methods are init, getAll"):
        proxy.system.listMethods()
    with pytest.raises(xmlrpc.client.Fault, match="one plugin name"):
        proxy.getPlugin("nosuch")


def test_our_xmlrpc_refuses_entities_and_big_bodies(start_server):
    import urllib.request

    server = start_server("-s", "-t", "0.2")
    bomb = (b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;">]>'
            b"<methodCall><methodName>&b;</methodName></methodCall>")
    with urllib.request.urlopen(urllib.request.Request(f"{server.url}/RPC2", data=bomb), timeout=10) as response:
        with pytest.raises(xmlrpc.client.Fault, match="document type declaration"):
            xmlrpc.client.loads(response.read())
    big = b"<methodCall><methodName>" + b"x" * (1 << 20) + b"</methodName></methodCall>"
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(f"{server.url}/RPC2", data=big), timeout=10)
    assert refused.value.code == 413


def test_glances_client_prints_our_server_on_stdout(start_server):
    import time

    from .conftest import glances_command

    server = start_server("-s", "-t", "0.5")
    # Glances's client ignores --stop-after: read what it prints, then stop it.
    client = subprocess.Popen([*glances_command(), "-c", "127.0.0.1", "-p", str(server.port), "--stdout",
                               "mem.total,load,processcount.total,now", "-t", "0.5"], stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, stdin=subprocess.DEVNULL)
    lines: list[str] = []
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and len(lines) < 8:
            line = client.stdout.readline()
            if not line:
                break
            lines.append(line.rstrip("\n"))
    finally:
        client.terminate()
        client.wait(timeout=10)
        client.stdout.close()
    assert f"mem.total: {psutil.virtual_memory().total}" in lines, lines
    assert any(line.startswith("load: {'min1': ") for line in lines)
    assert any(line.startswith("now: {'iso': ") for line in lines)
    assert not any("Critical error" in line for line in lines)


def test_glances_full_screen_client_shows_our_server(start_server, tmp_path):
    import shutil
    import time

    from .conftest import glances_command

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    server = start_server("-s", "-t", "0.5")
    session = f"memprof-glances-{server.port}"
    command = " ".join([*glances_command(), "-c", "127.0.0.1", "-p", str(server.port), "-t", "0.5"])
    socket_name = str(tmp_path / "tmux.sock")
    tmux = ["tmux", "-S", socket_name]
    subprocess.run([*tmux, "new-session", "-d", "-s", session, "-x", "160", "-y", "50",
                    f"TERM=xterm-256color {command}; sleep 30"], check=True, timeout=10)
    try:
        deadline = time.monotonic() + 60
        screen = ""
        while time.monotonic() < deadline:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", session], capture_output=True, text=True,
                                    timeout=10).stdout
            if "Connected to" in screen and "MEM" in screen and "LOAD" in screen and "PID" in screen:
                break
            time.sleep(0.5)
        assert "Connected to" in screen and "Critical error" not in screen, screen
        import socket as sockets

        assert sockets.gethostname() in screen and "TASKS" in screen
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10)


def _rss_idle_and_busy(command: list[str], port: int, requests: int = 300) -> tuple[float, float]:
    """RSS (MiB) of a server idle, then after ``requests`` rounds of the routes a page and a client read."""
    import time
    import urllib.request

    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                urllib.request.urlopen(f"http://127.0.0.1:{port}/api/4/status", timeout=5).read()
                break
            except OSError:
                assert time.monotonic() < deadline and process.poll() is None, command
                time.sleep(0.3)
        time.sleep(3)
        measured = psutil.Process(process.pid)
        idle = measured.memory_info().rss
        for _ in range(requests):
            for path in ("/api/4/all", "/api/4/cpu", "/api/4/processlist", "/api/4/mem/history"):
                urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=30).read()
        busy = measured.memory_info().rss
        return idle / 2**20, busy / 2**20
    finally:
        process.terminate()
        process.wait(timeout=20)


def test_our_web_server_needs_less_than_half_of_glances_memory():
    from .conftest import free_port, glances_command, memprof_command

    port = free_port()
    ours = _rss_idle_and_busy([*memprof_command(), "sys", "-w", "--port", str(port), "-t", "2"], port)
    port = free_port()
    theirs = _rss_idle_and_busy([*glances_command(), "-w", "--bind", "127.0.0.1", "--port", str(port), "-t", "2"],
                                port)
    # Measured: 34.5 and 36.3 MiB against Glances's 74.6 and 77.5 (the goal: under half).
    assert ours[0] < theirs[0] / 2 and ours[1] < theirs[1] / 2, (ours, theirs)


def test_our_view_of_a_glances_server_shows_its_time_and_labels_its_sort(glances_server):
    from pytest_memprof.sysstats.source import RemoteSource
    from pytest_memprof.sysstats.terminal import SysView
    from tests.live.conftest import run_pilot, wait_until

    server = glances_server("-s")

    async def body() -> None:
        app = SysView(RemoteSource("127.0.0.1", server.port), 0.5, can_kill=False)
        async with app.run_test(size=(120, 40)) as pilot:
            await wait_until(pilot, lambda: app.refreshes >= 1, "a first refresh", timeout=60)
            header = str(app.query_one("#header").render())
            assert app.snapshot["now"]["iso"] in header and "{" not in header  # not Glances's dict shown raw
            footer = str(app.query_one("#footer").render())
            assert "sorted automatically by CPU%" in footer
            cpu = [float(row[0]) for row in app.process_rows()]
            assert cpu == sorted(cpu, reverse=True) and len(cpu) > 10
            await pilot.press("m")
            await pilot.pause(0.1)
            assert "by MEM%" in str(app.query_one("#footer").render())
            await pilot.press("q")
    run_pilot(body())
