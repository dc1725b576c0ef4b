"""``memprof sys -c HOST[:PORT]`` and ``--browser`` against servers started by the tests."""

from __future__ import annotations

import json
import subprocess
import threading

import psutil
import pytest

from .conftest import assert_one_line_error, free_port, memprof_command, run_memprof, subprocess_env


def test_a_client_prints_the_servers_stats_as_json(start_server):
    server = start_server("-s", "-t", "0.2")
    result = run_memprof("sys", "-c", f"127.0.0.1:{server.port}", "--stdout-json", "mem,load.cpucore",
                         "--stop-after", "2", "-t", "0.2")
    assert result.returncode == 0, result.stderr
    documents = [json.loads(line) for line in result.stdout.splitlines()]
    assert len(documents) == 2
    for document in documents:
        assert document["mem"]["total"] == psutil.virtual_memory().total
        assert document["load"] == {"cpucore": psutil.cpu_count()}


def test_a_client_also_reads_a_web_server_and_prints_csv(start_server):
    server = start_server("-w", "-t", "0.2")
    result = run_memprof("sys", "-c", "127.0.0.1", "--port", str(server.port), "--stdout-csv", "now.iso,mem.total",
                         "--stop-after", "2", "-t", "0.2")
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0] == "now.iso,mem.total" and len(lines) == 3
    assert all(line.endswith(f",{psutil.virtual_memory().total}") for line in lines[1:])


def test_a_client_of_a_closed_port_says_so_and_fails_when_told_to_stop():
    port = free_port()
    result = run_memprof("sys", "-c", f"127.0.0.1:{port}", "--stdout", "mem.used", "--stop-after", "3", "-t", "0.2")
    assert result.returncode == 1
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    lines = result.stderr.splitlines()
    assert lines[0].startswith(f"memprof: 127.0.0.1:{port} is not answering (connection refused); retrying")
    assert lines[-1] == f"memprof: error: no stats from 127.0.0.1:{port} after 3 tries: connection refused"
    assert len(lines) == 2


def test_a_client_told_to_try_once_prints_one_line():
    port = free_port()
    result = run_memprof("sys", "-c", f"127.0.0.1:{port}", "--stdout-json", "mem", "--stop-after", "1")
    assert_one_line_error(result, f"no stats from 127.0.0.1:{port} after 1 try")
    assert result.returncode == 1


def test_a_client_says_when_its_server_goes_away_and_comes_back(start_server):
    server = start_server("-s", "-t", "0.2")
    port = server.port
    env = subprocess_env()
    client = subprocess.Popen([*memprof_command(), "sys", "-c", f"127.0.0.1:{port}", "--stdout", "mem.total",
                               "-t", "0.2"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    errors: list[str] = []
    reader = threading.Thread(target=lambda: errors.extend(client.stderr), daemon=True)
    reader.start()
    try:
        assert client.stdout.readline().startswith("mem.total: ")
        assert server.stop() == 0
        for _ in range(200):  # until the client notices (it retries every 0.2 s)
            if any("is not answering" in line for line in errors):
                break
            threading.Event().wait(0.05)
        assert any(f"127.0.0.1:{port} is not answering" in line for line in errors), errors
        again = start_server("-s", "-t", "0.2", "--port", str(port))
        assert again.port == port
        for _ in range(200):
            if any("is back" in line for line in errors):
                break
            threading.Event().wait(0.05)
        assert any(f"127.0.0.1:{port} is back" in line for line in errors), errors
        assert client.stdout.readline().startswith("mem.total: ")
    finally:
        client.terminate()
        client.wait(timeout=10)
        client.stdout.close()
    assert not any("Traceback" in line for line in errors)


def test_a_client_sends_the_password_and_is_refused_without_it(start_server, tmp_path):
    server = start_server("-s", "-t", "0.2", "--password", env={"MEMPROF_SYS_PASSWORD": "open sesame"})
    secret = tmp_path / "password"
    secret.write_text("open sesame\n")
    ok = run_memprof("sys", "-c", f"127.0.0.1:{server.port}", "--password-file", str(secret), "--stdout",
                     "mem.total", "--stop-after", "1")
    assert ok.returncode == 0, ok.stderr
    assert ok.stdout == f"mem.total: {psutil.virtual_memory().total}\n"
    refused = run_memprof("sys", "-c", f"127.0.0.1:{server.port}", "--stdout", "mem.total", "--stop-after", "1")
    assert_one_line_error(refused, "the server needs a password: give it with --password or --password-file")
    wrong = run_memprof("sys", "-c", f"127.0.0.1:{server.port}", "--stdout", "mem.total", "--stop-after", "1",
                        "--password", env={"MEMPROF_SYS_PASSWORD": "guess"})
    assert_one_line_error(wrong, "the password was refused (HTTP 401)")


def test_browser_lists_the_configured_servers_with_their_status(start_server, tmp_path):
    online = start_server("-s", "-t", "0.2")
    protected = start_server("-s", "-t", "0.2", "--password", env={"MEMPROF_SYS_PASSWORD": "pw"})
    closed = free_port()
    config = tmp_path / "memprof.conf"
    config.write_text(f"""[serverlist]
server_1_name=127.0.0.1
server_1_port={online.port}
server_1_alias=Build box
server_2_name=127.0.0.1
server_2_port={closed}
server_2_alias=[red]gone[/red]
server_3_name=127.0.0.1
server_3_port={protected.port}
""")
    result = run_memprof("sys", "--browser", "-C", str(config))
    assert result.returncode == 0, result.stderr
    rows = {line.split("│")[1].strip(): line for line in result.stdout.splitlines() if line.count("│") >= 4}
    assert "ONLINE" in rows["Build box"] and f"127.0.0.1:{online.port}" in rows["Build box"]
    assert "OFFLINE" in rows["[red]gone[/red]"] and "connection refused" in rows["[red]gone[/red]"]
    assert "PROTECTED" in rows["127.0.0.1"]


def test_browser_finds_the_per_user_config(start_server, tmp_path):
    server = start_server("-s", "-t", "0.2")
    (tmp_path / "memprof").mkdir()
    (tmp_path / "memprof" / "memprof.conf").write_text(
        f"[serverlist]\nserver_1_name=127.0.0.1\nserver_1_port={server.port}\n")
    result = run_memprof("sys", "--browser", env={"XDG_CONFIG_HOME": str(tmp_path)})
    assert result.returncode == 0, result.stderr
    assert "ONLINE" in result.stdout


@pytest.mark.parametrize(("args", "fragment"), [
    (("--browser", "-C", "/nonexistent/memprof.conf"), "-C /nonexistent/memprof.conf: no such file"),
    (("-c", ":61209", "--stdout", "mem"), "no host in ':61209'"),
    (("-c", "localhost:port", "--stdout", "mem"), "bad port in 'localhost:port'"),
    (("-c", "localhost:0", "--stdout", "mem"), "bad port 0"),
])
def test_bad_client_and_browser_options_are_one_line_usage_errors(args, fragment):
    result = run_memprof("sys", *args)
    assert_one_line_error(result, fragment)
    assert result.returncode == 2


def test_browser_with_an_empty_serverlist_is_a_usage_error(tmp_path):
    config = tmp_path / "memprof.conf"
    config.write_text("[serverlist]\n")
    result = run_memprof("sys", "--browser", "-C", str(config))
    assert_one_line_error(result, "has no [serverlist] entries")


def test_browser_lists_servers_announced_by_zeroconf_on_loopback(start_server, tmp_path):
    pytest.importorskip("zeroconf", reason="zeroconf is not installed (it is in the test extras)")
    # Bound to 127.0.0.1, the server announces on loopback only, and the browser (--bind 127.0.0.1) looks there.
    server = start_server("-s", "-t", "0.2", "--announce")
    result = run_memprof("sys", "--browser", env={"XDG_CONFIG_HOME": str(tmp_path), "HOME": str(tmp_path),
                                                  "COLUMNS": "200"})
    assert result.returncode == 0, result.stderr
    row = next(line for line in result.stdout.splitlines() if f"127.0.0.1:{server.port}" in line)
    assert "(announced)" in row and "ONLINE" in row


def test_announce_goes_with_a_server_only():
    result = run_memprof("sys", "--announce", "--stdout", "mem", "--stop-after", "1")
    assert_one_line_error(result, "--announce goes with -s or -w")


def test_the_browser_is_interactive_in_a_terminal(start_server, tmp_path):
    import shlex
    import shutil
    import time

    if shutil.which("tmux") is None:
        pytest.skip("tmux is not installed (apt-get install tmux)")
    server = start_server("-s", "-t", "0.3")
    config = tmp_path / "memprof.conf"
    config.write_text(f"[serverlist]\nserver_1_name=127.0.0.1\nserver_1_port={server.port}\nserver_1_alias=Build box\n")
    tmux = ["tmux", "-S", str(tmp_path / "tmux.sock")]
    status = tmp_path / "status"
    env = " ".join(f"{name}={shlex.quote(value)}" for name, value in subprocess_env(TERM="xterm-256color").items()
                   if name in ("PYTHONPATH", "TERM", "PATH"))
    command = " ".join(shlex.quote(part) for part in [*memprof_command(), "sys", "--browser", "-C", str(config)])
    subprocess.run([*tmux, "new-session", "-d", "-s", "b", "-x", "120", "-y", "30",
                    f"env {env} {command}; echo $? > {status}; sleep 60"], check=True, timeout=10)

    def screen_until(condition, timeout=30):
        deadline = time.monotonic() + timeout
        while True:
            screen = subprocess.run([*tmux, "capture-pane", "-p", "-t", "b"], capture_output=True, text=True).stdout
            if condition(screen):
                return screen
            assert time.monotonic() < deadline, screen
            time.sleep(0.2)

    try:
        screen_until(lambda text: "Build box" in text and "ONLINE" in text)
        subprocess.run([*tmux, "send-keys", "-t", "b", "Enter"], check=True)
        screen_until(lambda text: f"127.0.0.1:{server.port}" in text and "TASKS" in text and "PID" in text)
        subprocess.run([*tmux, "send-keys", "-t", "b", "q"], check=True)
        screen_until(lambda text: "Build box" in text and "Enter opens" in text)  # back to the list
        subprocess.run([*tmux, "send-keys", "-t", "b", "q"], check=True)
        deadline = time.monotonic() + 30
        while not status.exists() or not status.read_text().strip():
            assert time.monotonic() < deadline
            time.sleep(0.2)
        assert status.read_text().strip() == "0"
    finally:
        subprocess.run([*tmux, "kill-server"], timeout=10)
