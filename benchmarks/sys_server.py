"""REST speed of ``memprof sys -w`` against ``glances -w``: requests a second on one keep-alive client.

Both servers run on 127.0.0.1 with a 1 s refresh; one client sends ``--requests`` GETs of each
path on one connection, the two servers alternately, ``--rounds`` times. The table gives medians
and the ratio ours/Glances (above 1.0 is faster). The machine is shared and noisy: differences
under 10% are noise. This used to be a unit test's assertion (500 a second); a time belongs here.

    python benchmarks/sys_server.py [--rounds 5] [--requests 500]
"""

from __future__ import annotations

import argparse
import http.client
import os
import re
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PATHS = ("/api/4/status", "/api/4/all", "/api/4/mem")


def free_port() -> int:
    """A port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for_port(process: subprocess.Popen, port: int) -> None:
    """Return once ``port`` accepts connections; fail if the server died first."""
    deadline = time.monotonic() + 60
    while True:
        if process.poll() is not None:
            raise SystemExit(f"the server exited at start: {process.args}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise SystemExit(f"the server did not listen within 60 s: {process.args}") from None
            time.sleep(0.2)


def start_memprof() -> tuple[subprocess.Popen, int]:
    """``memprof sys -w`` on a free port; the port it announces."""
    memprof = shutil.which("memprof", path=str(Path(sys.executable).parent)) or "memprof"
    process = subprocess.Popen([memprof, "sys", "-w", "-t", "1", "--port", "0"], stdout=subprocess.PIPE,
                               stderr=subprocess.DEVNULL, text=True)
    match = re.search(r"http://127\.0\.0\.1:(\d+)/", process.stdout.readline())
    if not match:
        process.kill()
        raise SystemExit("memprof sys -w announced no URL")
    return process, int(match.group(1))


def start_glances(home: Path) -> tuple[subprocess.Popen, int] | None:
    """``glances -w --disable-webui`` on a free port, or None when Glances is not installed."""
    script = Path(sys.executable).parent / "glances"
    if not script.exists():
        return None
    port = free_port()
    config = home / "glances.conf"
    config.write_text("[global]\ncheck_update=false\n")
    process = subprocess.Popen([str(script), "-w", "--disable-webui", "--disable-autodiscover", "--bind",
                                "127.0.0.1", "--port", str(port), "-C", str(config), "-t", "1"],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, stdin=subprocess.DEVNULL,
                               env={**os.environ, "HOME": str(home)})
    wait_for_port(process, port)
    return process, port


def rate(port: int, path: str, requests: int) -> float:
    """Requests a second for ``requests`` GETs of ``path`` on one connection (after one warm-up)."""
    connection = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
    connection.request("GET", path)
    connection.getresponse().read()
    started = time.perf_counter()
    for _ in range(requests):
        connection.request("GET", path)
        response = connection.getresponse()
        response.read()
        if response.status != 200:
            raise SystemExit(f"{path} on port {port} answered {response.status}")
    elapsed = time.perf_counter() - started
    connection.close()
    return requests / elapsed


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5, help="alternating rounds (default 5)")
    parser.add_argument("--requests", type=int, default=500, help="requests a path a round (default 500)")
    options = parser.parse_args()
    with tempfile.TemporaryDirectory() as home:
        servers = {"memprof": start_memprof()}
        glances = start_glances(Path(home))
        if glances:
            servers["glances"] = glances
        else:
            print("Glances is not installed beside this Python: memprof only", file=sys.stderr)
        try:
            results: dict[tuple[str, str], list[float]] = {}
            for _ in range(options.rounds):
                for path in PATHS:
                    for name, (_, port) in servers.items():
                        results.setdefault((name, path), []).append(rate(port, path, options.requests))
        finally:
            for process, _ in servers.values():
                process.terminate()
                process.wait(timeout=10)
    print(f"{options.rounds} rounds alternating, {options.requests} requests a path, one keep-alive client; "
          "medians in requests a second\n")
    print("| path | memprof | glances | ratio memprof/glances |")
    print("|---|---|---|---|")
    for path in PATHS:
        ours = statistics.median(results["memprof", path])
        theirs = statistics.median(results["glances", path]) if glances else None
        print(f"| {path} | {ours:.0f} | {theirs:.0f} | {ours / theirs:.2f} |" if theirs
              else f"| {path} | {ours:.0f} | - | - |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
