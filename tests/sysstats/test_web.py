"""``memprof sys -w``: the REST API and the page, served on a free port of 127.0.0.1 by a real subprocess."""

from __future__ import annotations

import base64
import json
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import psutil
import pytest

from pytest_memprof.sysstats.plugins import PLUGINS
from pytest_memprof.sysstats.registry import DICT, LIST

from .conftest import assert_one_line_error, run_memprof

HOSTILE = "<img src=x onerror=alert(1)>"


def get(url: str, authorization: str | None = None) -> tuple[int, dict, bytes]:
    request = urllib.request.Request(url, headers={"Authorization": authorization} if authorization else {})
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read()


def get_json(url: str, authorization: str | None = None):
    status, headers, body = get(url, authorization)
    assert headers["Content-Type"].startswith("application/json"), (url, headers)
    return status, json.loads(body)


def wait_until(page, condition, timeout: float = 15.0) -> None:
    """Poll from Python: the page's CSP forbids the eval that page.wait_for_function relies on."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "the page did not get there in time"
        page.wait_for_timeout(50)


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_every_api_route_answers_json(start_server):
    server = start_server("-w", "-t", "0.2")
    api = f"{server.url}/api/4"
    status, body = get_json(f"{api}/status")
    assert status == 200 and body["status"] == "ok" and body["schema_version"] == 1
    assert body["plugin_errors"] == {}
    status, plugins = get_json(f"{api}/pluginslist")
    assert status == 200 and plugins == list(PLUGINS)
    status, everything = get_json(f"{api}/all")
    assert status == 200 and set(everything) == set(PLUGINS)
    assert everything["mem"]["total"] == psutil.virtual_memory().total
    status, fields = get_json(f"{api}/fields")
    assert status == 200 and set(fields["mem"]["fields"]) == set(PLUGINS["mem"].field_names())
    for name, plugin in PLUGINS.items():
        status, value = get_json(f"{api}/{name}")
        assert status == 200, name
        if plugin.shape == DICT:
            assert list(value) == plugin.field_names(), name
        for field in plugin.field_names() if plugin.shape in (DICT, LIST) else ():
            status, picked = get_json(f"{api}/{name}/{field}")
            assert status == 200 and list(picked) == [field], (name, field)
            if plugin.shape == LIST:
                assert isinstance(picked[field], list)
    status, load = get_json(f"{api}/load/cpucore")
    assert load == {"cpucore": psutil.cpu_count()}
    status, loopback = get_json(f"{api}/network/interface_name/value/lo")
    assert status == 200 and [entry["interface_name"] for entry in loopback["lo"]] in ([], ["lo"])
    for missing in ("nosuchplugin", "mem/nosuchfield", "uptime/x", "mem/used/1"):
        status, body = get_json(f"{api}/{missing}")
        assert status == 404 and "error" in body, missing
    status, body = get_json(f"{server.url}/nothing-here")
    assert status == 404
    request = urllib.request.Request(f"{api}/all", data=b"{}", method="POST")
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 405 and "error" in json.loads(refused.value.read())


def test_a_server_started_with_s_serves_no_page(start_server):
    server = start_server("-s", "-t", "0.2")
    status, body = get_json(f"{server.url}/")
    assert status == 404 and body["api"] == "/api/4"
    assert get_json(f"{server.url}/api/4/mem/total")[1] == {"total": psutil.virtual_memory().total}


def test_with_a_password_every_route_needs_it(start_server, tmp_path):
    server = start_server("-w", "-t", "0.2", "--password", env={"MEMPROF_SYS_PASSWORD": "s3cret"})
    for path in ("/", "/static/sys.js", "/api/4/status", "/api/4/all", "/api/4/mem/used", "/nothing"):
        status, headers, _ = get(server.url + path)
        assert status == 401, path
        assert headers["WWW-Authenticate"].startswith("Basic realm="), path
        assert get(server.url + path, basic("memprof", "wrong"))[0] == 401, path
        assert get(server.url + path, basic("someone", "s3cret"))[0] == 401, path
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(urllib.request.Request(server.url + "/api/4/all", data=b"", method="POST"), timeout=10)
    assert refused.value.code == 401
    assert get(server.url + "/api/4/mem/used", basic("memprof", "s3cret"))[0] == 200
    assert get(server.url + "/", basic("memprof", "s3cret"))[0] == 200


def test_a_port_in_use_is_a_one_line_usage_error():
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        result = run_memprof("sys", "-w", "--port", str(port))
    assert_one_line_error(result, f"port {port} on 127.0.0.1 is in use")
    assert result.returncode == 2


@pytest.mark.parametrize(("args", "fragment"), [
    (("-w", "--port", "http"), "--port: expected a number, got 'http'"),
    (("-s", "--port", "70000"), "--port: expected 0 to 65535"),
    (("-w", "--bind", "256.1.1.1", "--port", "0"), "cannot listen on 256.1.1.1:0"),
    (("-w", "--password"), "--password: no terminal to ask on"),
    (("-w", "--password-file", "/nonexistent/pw"), "--password-file /nonexistent/pw"),
])
def test_bad_server_options_are_one_line_usage_errors(args, fragment):
    result = run_memprof("sys", *args, env={"MEMPROF_SYS_PASSWORD": ""})
    assert_one_line_error(result, fragment)
    assert result.returncode == 2


@pytest.fixture
def hungry_hostile_process():
    """A process in the top ten by memory whose command line is an HTML injection attempt."""
    process = subprocess.Popen([sys.executable, "-c", "import sys, time; data = b'x' * (400 << 20); "
                                "print('ready', flush=True); time.sleep(120)", HOSTILE],
                               stdout=subprocess.PIPE, text=True)
    assert process.stdout.readline().strip() == "ready"
    yield process
    process.kill()
    process.wait()


@pytest.mark.browser
def test_the_page_shows_memory_and_updates_it(start_server, page, hungry_hostile_process):
    dialogs = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    server = start_server("-w", "-t", "0.2")
    page.goto(server.url + "/")
    assert page.title() == "memprof sys"
    wait_until(page, lambda: page.text_content("#refreshes") != "0")
    used = page.text_content("#mem-used")
    assert used.endswith(("MiB", "GiB", "TiB")), used
    percent = page.text_content("#mem-percent")
    assert percent.endswith("%") and 0 <= float(percent[:-1]) <= 100
    assert page.text_content("#mem-total").endswith(("GiB", "MiB", "TiB"))
    # Blank the figure: the next refresh must write it again.
    page.evaluate("document.getElementById('mem-used').textContent = 'stale'")
    seen = int(page.text_content("#refreshes"))
    wait_until(page, lambda: int(page.text_content("#refreshes")) > seen)
    wait_until(page, lambda: page.text_content("#mem-used") != "stale")
    assert page.text_content("#mem-used").endswith(("MiB", "GiB", "TiB"))
    # The history chart grows a point per refresh.
    points = page.get_attribute("#history-mem", "points").split()
    assert len(points) >= 2 and all(0 <= float(point.split(",")[1]) <= 100 for point in points)
    # The hungry process is listed by the page, its command line shown as text.
    wait_until(page, lambda: HOSTILE in page.text_content("#processes tbody"))
    assert page.locator("#processes img").count() == 0
    assert page.locator("#processes tbody tr").count() >= 1
    assert not dialogs, dialogs
    assert not page.console_errors, page.console_errors


def test_the_page_is_served_with_a_content_security_policy(start_server):
    server = start_server("-w", "-t", "0.5")
    status, headers, body = get(server.url + "/")
    assert status == 200 and headers["Content-Type"].startswith("text/html")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert b'data-interval-ms="500"' in body
    assert get(server.url + "/static/sys.js")[0] == 200
    assert get(server.url + "/static/../web.py")[0] == 404


@pytest.mark.browser
def test_the_page_works_behind_the_password(start_server, browser):
    server = start_server("-w", "-t", "0.2", "--password", env={"MEMPROF_SYS_PASSWORD": "pw"})
    context = browser.new_context(http_credentials={"username": "memprof", "password": "pw"})
    try:
        page = context.new_page()
        errors: list[str] = []
        page.on("console", lambda message: errors.append(message.text) if message.type == "error" else None)
        page.goto(server.url + "/")
        wait_until(page, lambda: int(page.text_content("#refreshes")) >= 2)
        assert page.text_content("#mem-used").endswith(("MiB", "GiB", "TiB"))
        assert page.is_hidden("#problem")
        assert not errors, errors
    finally:
        context.close()


@pytest.mark.parametrize(("host", "loopback"), [("127.0.0.1", True), ("127.0.0.2", True), ("::1", True),
                                                ("localhost", True), ("0.0.0.0", False), ("::", False),
                                                ("192.168.1.10", False), ("build-box", False)])
def test_only_loopback_binds_go_without_a_warning(host, loopback):
    from pytest_memprof.sysstats.web import _is_loopback

    assert _is_loopback(host) is loopback


def test_a_loopback_server_without_password_gives_no_warning():
    result = run_memprof("sys", "-s", "--port", "0", "--stop-after", "1")
    assert result.returncode == 0 and result.stderr == ""
    assert result.stdout.startswith("memprof: sys API and Glances XML-RPC (/RPC2) on http://127.0.0.1:")


@pytest.mark.browser
def test_the_page_has_glances_panels_a_sortable_filterable_process_list_and_colours(start_server, page, tmp_path,
                                                                                   hungry_hostile_process):
    config = tmp_path / "memprof.conf"
    config.write_text("[mem]\ncareful=0\nwarning=0.001\ncritical=0.002\n")  # memory always critical here
    server = start_server("-w", "-t", "0.3", "-C", str(config))
    page.goto(server.url + "/")
    wait_until(page, lambda: int(page.text_content("#refreshes")) >= 2)
    for panel in ("#quicklook-card", "#cpu-card", "#mem-card", "#swap-card", "#load-card", "#network-card",
                  "#diskio-card", "#fs-card", "#sensors-card", "#alerts-card", "#history", "#processes"):
        assert page.locator(panel).is_visible(), panel
    assert page.text_content("#quicklook-mem").endswith("%")
    assert page.locator("#percpu span").count() == psutil.cpu_count()
    assert page.locator("#fs tbody tr").count() >= 1
    # Coloured by the thresholds of the config (through /api/4/all/views), and the alert log shows the event.
    assert page.get_attribute("#mem-percent", "class") == "deco-CRITICAL"
    wait_until(page, lambda: "MEM" in page.text_content("#alerts tbody"))
    # Every process, not ten; the history is drawn from /api/4/<plugin>/history.
    wait_until(page, lambda: page.locator("#processes tbody tr").count() >= len(psutil.pids()) - 15)
    wait_until(page, lambda: int(page.text_content("#history-length")) >= 2)
    assert len(page.get_attribute("#history-cpu", "points").split()) >= 2
    # Sorting: a click on RSS puts the 400 MiB process first; a second click reverses.
    page.click("#processes th[data-sort=rss]")
    first_pid = page.text_content("#processes tbody tr:first-child td:nth-child(4)")
    assert first_pid == str(hungry_hostile_process.pid)
    page.click("#processes th[data-sort=rss]")
    assert page.text_content("#processes tbody tr:first-child td:nth-child(4)") != first_pid
    # Filtering by a regular expression on the command line.
    page.fill("#process-filter", "onerror=al.rt")
    wait_until(page, lambda: page.locator("#processes tbody tr").count() == 1)
    assert HOSTILE in page.text_content("#processes tbody") and page.locator("#processes img").count() == 0
    page.fill("#process-filter", "[")
    assert page.is_visible("#filter-problem")
    assert not page.console_errors, page.console_errors
