"""``memprof sys -w`` / ``-s`` hold up: idle and slow sockets closed, bodies consumed, bad requests answered, fast.

These are issue 17's item 12, against the real server (uvicorn) in a subprocess on 127.0.0.1.
"""

from __future__ import annotations

import http.client
import json
import socket
import time

import psutil
import pytest

from pytest_memprof.sysstats.web import IDLE_TIMEOUT


def _read_all(connection: socket.socket, timeout: float) -> bytes:
    connection.settimeout(timeout)
    data = b""
    try:
        while chunk := connection.recv(65536):
            data += chunk
    except socket.timeout:
        pass
    return data


def test_idle_and_slow_connections_are_closed_after_the_time_out_without_a_thread_each(start_server):
    server = start_server("-s", "-t", "0.5")
    process = psutil.Process(server.process.pid)
    threads_before = process.num_threads()
    idle = [socket.create_connection(("127.0.0.1", server.port), timeout=5) for _ in range(50)]
    slow = socket.create_connection(("127.0.0.1", server.port), timeout=5)
    slow.sendall(b"GET /api/4/status HTTP/1.1\r\nHost: x\r\n")  # headers never finished
    try:
        time.sleep(0.5)
        assert process.num_threads() <= threads_before + 2  # no thread per connection
        started = time.monotonic()
        for connection in [*idle, slow]:
            connection.settimeout(IDLE_TIMEOUT + 5)
            assert connection.recv(1) == b""  # closed by the server
        assert time.monotonic() - started < IDLE_TIMEOUT + 5
    finally:
        for connection in [*idle, slow]:
            connection.close()
    # The server still answers after all that.
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/api/4/status")
    assert connection.getresponse().status == 200


def test_a_post_body_is_consumed_not_read_as_a_second_request(start_server):
    server = start_server("-w", "-t", "0.5")
    hidden = b"GET /api/4/status HTTP/1.1\r\nHost: x\r\n\r\n"
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(b"POST /api/4/all HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n" % len(hidden) + hidden
                           + b"GET /api/4/load HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        replies = _read_all(connection, 10)
    assert replies.count(b"HTTP/1.1 ") == 2, replies
    assert replies.startswith(b"HTTP/1.1 405 ") and b"HTTP/1.1 200 " in replies
    assert b'"min1"' in replies and b'"refresh_seconds"' not in replies


@pytest.mark.parametrize(("request_bytes", "status"), [
    (b"GET /\r\n\r\n", b"400"),  # HTTP/0.9
    (b"\x16\x03\x01\x02\x00garbage\r\n\r\n", b"400"),  # a TLS hello, then noise
    (b"GET /api/4/all HTTP/9.9\r\nHost: x\r\n\r\n", b"505"),
])
def test_garbage_and_http_0_9_get_a_proper_error_and_the_connection_closed(start_server, request_bytes, status):
    server = start_server("-w", "-t", "0.5")
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
        connection.sendall(request_bytes)
        reply = _read_all(connection, 10)  # returns at the server's close, well before the 10 s
    head, _, _ = reply.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 " + status + b" "), reply
    assert b"content-type:" in head.lower() and b"<html" not in reply.lower()


def test_clients_that_disconnect_mid_answer_leave_no_traceback(start_server):
    server = start_server("-w", "-t", "0.5")
    for _ in range(30):
        with socket.create_connection(("127.0.0.1", server.port), timeout=10) as connection:
            connection.sendall(b"GET /api/4/all HTTP/1.1\r\nHost: x\r\n\r\n")
            connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.request("GET", "/api/4/status")
    assert connection.getresponse().status == 200
    server.process.terminate()
    _, errors = server.process.communicate(timeout=10)
    assert server.process.returncode == 0 and errors == ""


def test_keep_alive_serves_500_requests_on_one_connection_from_one_sample(start_server):
    # How fast it answers is benchmarks/sys_server.py's to say; here: the connection stays open
    # and /all within one interval is answered from one sample, which is what makes it fast.
    server = start_server("-s", "-t", "600")
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
    connection.connect()
    opened = connection.sock
    for path in ("/api/4/status", "/api/4/all"):
        for _ in range(500):
            connection.request("GET", path)
            response = connection.getresponse()
            response.read()
            assert response.status == 200
            assert connection.sock is opened, "the server closed a keep-alive connection"
    connection.request("GET", "/api/4/status")
    assert json.loads(connection.getresponse().read())["refreshes"] == 1


def test_a_server_samples_only_when_asked(start_server):
    import urllib.request

    server = start_server("-s", "-t", "0.2")
    process = psutil.Process(server.process.pid)
    time.sleep(0.5)
    cpu_before = sum(process.cpu_times()[:2])
    time.sleep(1.5)
    assert sum(process.cpu_times()[:2]) - cpu_before < 0.05  # idle: no sampling thread at work

    def refreshes() -> int:
        with urllib.request.urlopen(f"{server.url}/api/4/status", timeout=10) as response:
            return json.load(response)["refreshes"]

    assert refreshes() == 0
    for _ in range(3):  # three clients within one interval share one sample
        urllib.request.urlopen(f"{server.url}/api/4/all", timeout=10).read()
    assert refreshes() == 1
